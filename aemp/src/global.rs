//! Global: seed connectivity, the full mesh and port groups.
//!
//! On every new connection each side spawns an `AnyEvent::MP::Global::connect`
//! port on the other and tells it its listener addresses, the addresses it
//! knows and its group registrations. What those ports learn makes every
//! node dial every other (the mesh) and keeps a shared view of the groups.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::core::{Action, Core, Handler, Key, PortEntry, Shared};
use crate::error::Result;
use crate::id::{NodeId, PortId};
use crate::kernel::{GLOBAL_CONNECT, SPAWN};
use crate::net::{LinkEvents, Net, NetConfig};
use crate::node::Node;
use crate::port::boxed;
use crate::reason::Reason;
use crate::value::{Map, Msg, Value};

/// A change in a group's membership, for [`Node::mon_group`].
#[derive(Debug, Clone, PartialEq)]
pub enum GroupEvent {
    /// A port joined the group.
    Joined(PortId),
    /// A port left the group (it died, was unregistered, or its node went away).
    Left(PortId),
}

type Watcher = Arc<dyn Fn(&GroupEvent) + Send + Sync>;

/// A node's link coming up or going down, for [`Node::mon_nodes`].
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// A link to the node is up (also when a new link replaces an old one).
    Up(NodeId),
    /// The link to the node is gone, with the reason its monitors got.
    Down(NodeId, Reason),
}

type NodeWatcher = Arc<dyn Fn(&NodeEvent) + Send + Sync>;

#[derive(Default)]
struct State {
    /// Every known member of every group.
    groups: HashMap<String, Vec<PortId>>,
    /// The Global port we spawned on each connected peer.
    peer_ports: HashMap<NodeId, PortId>,
    /// The Global port each peer spawned on us (its name here).
    their_ports: HashMap<NodeId, String>,
    watchers: HashMap<String, Vec<Watching<Watcher>>>,
    node_watchers: Vec<Watching<NodeWatcher>>,
    /// The node found at each seed address.
    seed_nodes: BTreeMap<String, NodeId>,
    /// Nodes whose link went down and is not back: the other nodes are
    /// asked for them every round (see [`Global::keep_mesh`]), with the
    /// number of rounds in a row in which none answered.
    lost: HashMap<NodeId, u32>,
    /// The link (connection number) Global started over with each peer,
    /// while it lasts.
    sessions: HashMap<NodeId, u64>,
    /// The link to each peer that the node watchers were last told is up.
    told: HashMap<NodeId, u64>,
    /// Events not yet delivered to the watchers, in the order they
    /// happened, how many were ever queued, and whether a thread is
    /// delivering them.
    notices: VecDeque<Queued>,
    queued: u64,
    delivering: bool,
}

impl State {
    /// Queues an event for every watcher of its kind (see [`Watching`]).
    fn queue(&mut self, notice: Notice) {
        self.queue_to(None, notice);
    }

    /// Queues an event for the watcher `to` alone, or for all.
    fn queue_to(&mut self, to: Option<u64>, notice: Notice) {
        self.notices.push_back(Queued { seq: self.queued, to, notice });
        self.queued += 1;
    }
}

/// An event for the watchers, queued under Global's lock (so in the order
/// the state changed) and delivered outside it.
enum Notice {
    Node(NodeEvent),
    Group(String, GroupEvent),
}

struct Queued {
    /// Its place among all events ever queued.
    seq: u64,
    /// The one watcher it is for (a new watcher's view of the present).
    to: Option<u64>,
    notice: Notice,
}

/// A watcher, with its ID and the first event it is told of: events
/// queued before it came are part of the present it is shown on arrival.
struct Watching<F> {
    id: u64,
    since: u64,
    f: F,
}

impl<F: Clone> Watching<F> {
    /// The watcher, if it is to be told of event `seq` (meant for `to`).
    fn wants(&self, seq: u64, to: Option<u64>) -> Option<F> {
        (seq >= self.since && to.is_none_or(|to| to == self.id)).then(|| self.f.clone())
    }
}

/// Rounds in a row in which no node answers for a lost node before it is
/// no longer asked for (it is gone, not cut off from us alone).
const LOST_ROUNDS: u32 = 8;

/// Global's state and the network it runs on. The network tells it of
/// links coming up and going down through [`LinkEvents`].
pub(crate) struct Global {
    pub(crate) net: Arc<Net>,
    shared: Weak<Shared>,
    seeds: Vec<String>,
    st: Mutex<State>,
}

/// Starts a node's network and Global on it: binds the listeners, installs
/// both in the node, then accepts connections and dials the seeds.
pub(crate) async fn start_network(shared: &Arc<Shared>, cfg: NetConfig) -> Result<()> {
    let seeds = cfg.seeds.clone();
    let net = Net::bind(shared, cfg).await?;
    let global =
        Arc::new(Global { net: net.clone(), shared: Arc::downgrade(shared), seeds, st: Mutex::default() });
    let events: Weak<dyn LinkEvents> = Arc::downgrade(&global) as Weak<Global>;
    net.set_events(events);
    // Installed before anything can connect: a connection that comes up at
    // once must find the node's network (its Global port needs it).
    let _ = shared.global.set(global.clone());
    let _ = shared.remote.set(net.clone());
    net.listen();
    global.start_seeds(shared);
    shared.spawn_tracked(Global::keep_mesh(Arc::downgrade(&global)));
    Ok(())
}

impl Global {
    /// Starts the seed tasks: each seed is dialled at start and again whenever
    /// its node is not connected.
    fn start_seeds(self: &Arc<Global>, shared: &Shared) {
        for seed in self.seeds.clone() {
            shared.spawn_tracked(self.clone().run_seed(seed));
        }
    }

    /// Mends the mesh after a partial partition: a link between two nodes
    /// that both kept other links (so neither lost its seeds) comes back
    /// only if one of them dials the other again. Every round this node
    /// asks the nodes it is linked to for each node it lost; one that is
    /// still linked to it answers with its addresses, and this node dials
    /// them. A lost node that no one answers for, round after round, is gone
    /// and no longer asked for.
    async fn keep_mesh(global: Weak<Global>) {
        let round = {
            let Some(g) = global.upgrade() else { return };
            Duration::from_secs_f64(g.net.cfg().connect_interval.max(0.5) * 2.0)
        };
        loop {
            tokio::time::sleep(round).await;
            let Some(g) = global.upgrade() else { return };
            // A peer's lock is never taken under Global's (lock order).
            let lost: Vec<NodeId> = g.st.lock().lost.keys().cloned().collect();
            let back: Vec<NodeId> = lost.into_iter().filter(|id| g.net.is_up(id)).collect();
            let (ask, others) = {
                let mut st = g.st.lock();
                st.lost.retain(|id, rounds| {
                    *rounds += 1;
                    !back.contains(id) && *rounds <= LOST_ROUNDS
                });
                let ask: Vec<NodeId> = st.lost.keys().cloned().collect();
                (ask, st.peer_ports.values().cloned().collect::<Vec<PortId>>())
            };
            for id in &ask {
                g.find_node(id, &others);
            }
        }
    }

    /// Asks the Global ports `others` where node `id` is.
    fn find_node(&self, id: &NodeId, others: &[PortId]) {
        for p in others {
            self.net.send_raw(
                &p.node(),
                Msg::from_array([Value::from(p.name()), Value::from("find_node"), Value::from(id)]),
            );
        }
    }

    /// Keeps this node linked to one of the nodes a seed stands for. A seed
    /// given as a host name may stand for several nodes: each of its
    /// addresses is tried in turn, our own skipped, and the name is looked
    /// up again whenever all have failed or the link has ended, so a seed
    /// that comes back on a new address is found.
    async fn run_seed(self: Arc<Global>, seed: String) {
        let net = self.net.clone();
        let literal = seed.parse::<std::net::SocketAddr>().is_ok();
        let mut known: Option<NodeId> = None;
        let mut own = std::collections::HashSet::new();
        let mut delay = Duration::from_millis(200);
        loop {
            if known.as_ref().is_some_and(|id| net.is_up(id)) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let addrs = match net.seed_addrs(&seed).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(seed = %seed, "seed not found: {e}");
                    Vec::new()
                }
            };
            let others: Vec<_> = addrs.iter().filter(|a| !own.contains(*a)).collect();
            if others.is_empty() && !addrs.is_empty() && literal {
                tracing::info!(seed = %seed, "seed is this node itself: dropped");
                return;
            }
            for addr in others {
                match self.dial_seed_addr(&seed, *addr).await {
                    SeedTry::Linked(id) => {
                        known = Some(id);
                        delay = Duration::from_millis(200);
                        break;
                    }
                    SeedTry::Ourselves => {
                        own.insert(*addr);
                    }
                    SeedTry::Failed => {}
                }
            }
            if known.as_ref().is_some_and(|id| net.is_up(id)) {
                continue;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs_f64(net.cfg().connect_interval.max(0.2) * 4.0));
        }
    }

    /// One attempt at one of a seed's addresses; a link that comes up is
    /// run to its end.
    async fn dial_seed_addr(&self, seed: &str, addr: std::net::SocketAddr) -> SeedTry {
        let mut named = None;
        let found = |id: &NodeId| {
            self.st.lock().seed_nodes.insert(seed.to_owned(), id.clone());
        };
        let e = match self.net.clone().dial_seed(&addr.to_string(), found, &mut named).await {
            Ok(id) => return SeedTry::Linked(id),
            Err(e) => e,
        };
        if matches!(e, crate::Error::SelfConnection(_)) {
            tracing::debug!(seed, %addr, "seed address is this node itself: skipped");
            return SeedTry::Ourselves;
        }
        // The seed may have reached us first: then the greeting named it,
        // and its link is up already.
        match named {
            Some(id) if self.net.is_up(&id) => {
                tracing::info!(seed, %addr, node = %id, "seed is already connected");
                self.st.lock().seed_nodes.insert(seed.to_owned(), id.clone());
                return SeedTry::Linked(id);
            }
            _ if e.is_refusal() => tracing::warn!(seed, %addr, "seed connection refused: {e}"),
            _ => tracing::debug!(seed, %addr, "seed connection failed: {e}"),
        }
        SeedTry::Failed
    }
}

/// How one attempt at a seed's address went.
enum SeedTry {
    /// A link to this node came up (and has ended since, or is up).
    Linked(NodeId),
    /// The address is this node's own.
    Ourselves,
    /// Nothing answered, or the connection failed.
    Failed,
}

fn local_groups(me: &NodeId, st: &State) -> Map {
    let mut m = Map::new();
    for (g, members) in &st.groups {
        let local: Vec<Value> =
            members.iter().filter(|p| p.node_str() == me.as_str()).map(Value::from).collect();
        if !local.is_empty() {
            m.insert(g.clone(), Value::Array(local));
        }
    }
    m
}

impl LinkEvents for Global {
    /// The messages that open Global on a new connection. A session
    /// with the peer still open from an earlier link ends first (its end
    /// may be told later, or was not told because the link was replaced):
    /// this link's messages must go out whatever the order of the two.
    fn opening_messages(&self, peer: &NodeId, conn: u64) -> Vec<Msg> {
        let Some(shared) = self.shared.upgrade() else { return Vec::new() };
        let net = &self.net;
        let mut st = self.st.lock();
        match st.sessions.get(peer) {
            Some(&c) if c == conn => {
                tracing::debug!(node = %peer, me = %net.me(), "global already started on this link");
                return Vec::new();
            }
            Some(_) => end_session(&shared, &mut st, peer),
            None => {}
        }
        st.sessions.insert(peer.clone(), conn);
        let name = shared.num_port_name(shared.next_port());
        let Ok(port) = peer.port(&name) else { return Vec::new() };
        st.peer_ports.insert(peer.clone(), port);
        let mut out = vec![
            Msg::from_array([
                Value::from(""),
                Value::from(SPAWN),
                Value::from(name.as_str()),
                Value::from(GLOBAL_CONNECT),
                Value::from(0),
                Value::from(net.me()),
            ]),
            Msg::from_array([Value::from(""), Value::from("mon1"), Value::from(name.as_str())]),
            Msg::from_array([
                Value::from(name.as_str()),
                Value::from("addr"),
                Value::from(net.listen_addrs().to_vec()),
            ]),
        ];
        let mut table = Map::new();
        for id in net.known_nodes() {
            if id != *peer {
                table.insert(id.as_str().to_owned(), Value::from(net.addrs_of(&id)));
            }
        }
        if !table.is_empty() {
            out.push(Msg::from_array([
                Value::from(name.as_str()),
                Value::from("connect_nodes"),
                Value::Map(table),
            ]));
        }
        let mine = local_groups(&shared.id, &st);
        if !mine.is_empty() {
            out.push(Msg::from_array([Value::from(name.as_str()), Value::from("set"), Value::Map(mine)]));
        }
        out
    }

    /// A connection came up: the watchers hear of the end of the link it
    /// replaced (unless they did), then of this one, unless it is gone
    /// already.
    fn link_up(&self, peer: &NodeId, conn: u64) {
        {
            let mut st = self.st.lock();
            st.lost.remove(peer);
            if st.told.get(peer).is_some_and(|&c| c != conn) {
                st.told.remove(peer);
                let reason = Reason::transport_error(peer.as_str(), "link replaced");
                st.queue(Notice::Node(NodeEvent::Down(peer.clone(), reason)));
            }
            if st.sessions.get(peer) == Some(&conn) {
                st.told.insert(peer.clone(), conn);
                st.queue(Notice::Node(NodeEvent::Up(peer.clone())));
            }
        }
        self.deliver();
    }

    /// A connection went down: unless a newer link started over already,
    /// forget the node's members and ports and ask the others where it is.
    fn link_down(&self, peer: &NodeId, conn: u64, reason: &Reason) {
        let others = {
            let mut st = self.st.lock();
            if st.told.get(peer) == Some(&conn) {
                st.told.remove(peer);
                st.queue(Notice::Node(NodeEvent::Down(peer.clone(), reason.clone())));
            }
            if st.sessions.get(peer) == Some(&conn) {
                if let Some(shared) = self.shared.upgrade() {
                    end_session(&shared, &mut st, peer);
                }
                if !self.net.addrs_of(peer).is_empty() {
                    st.lost.insert(peer.clone(), 0);
                }
                Some(st.peer_ports.values().cloned().collect::<Vec<PortId>>())
            } else {
                None
            }
        };
        self.deliver();
        if let Some(others) = others {
            self.find_node(peer, &others);
        }
    }
}

/// Ends Global's session with `peer` (its lock held): forgets the Global
/// port we spawned there and the members on that node (queueing their
/// departures for the watchers), and kills the port it spawned here.
fn end_session(shared: &Shared, st: &mut State, peer: &NodeId) {
    st.sessions.remove(peer);
    st.peer_ports.remove(peer);
    let mut left = Vec::new();
    for (g, members) in st.groups.iter_mut() {
        members.retain(|p| {
            let gone = p.node_str() == peer.as_str();
            if gone {
                left.push(Notice::Group(g.clone(), GroupEvent::Left(p.clone())));
            }
            !gone
        });
    }
    st.groups.retain(|_, m| !m.is_empty());
    for n in left {
        st.queue(n);
    }
    if let Some(name) = st.their_ports.remove(peer) {
        let reason = Reason::transport_error(peer.as_str(), "node down");
        shared.call(move |core: &mut Core| core.kill(&Key::Name(name.into()), reason));
    }
}

impl Global {
    /// Delivers the queued events to the watchers, in order, unless
    /// another thread is at it (it delivers these too). A watcher that
    /// causes an event (it unregisters a port, say) has it delivered after
    /// its own returns.
    fn deliver(&self) {
        /// Lets another thread deliver should a watcher panic.
        struct OnUnwind<'a>(&'a Global);
        impl Drop for OnUnwind<'_> {
            fn drop(&mut self) {
                self.0.st.lock().delivering = false;
            }
        }
        {
            let mut st = self.st.lock();
            if st.delivering || st.notices.is_empty() {
                return;
            }
            st.delivering = true;
        }
        let unwind = OnUnwind(self);
        loop {
            let mut st = self.st.lock();
            let Some(q) = st.notices.pop_front() else {
                // Under the lock that found the queue empty: an event
                // queued after it finds no one delivering.
                st.delivering = false;
                drop(st);
                std::mem::forget(unwind);
                return;
            };
            match q.notice {
                Notice::Node(ev) => {
                    let ws: Vec<NodeWatcher> =
                        st.node_watchers.iter().filter_map(|w| w.wants(q.seq, q.to)).collect();
                    drop(st);
                    ws.iter().for_each(|w| w(&ev));
                }
                Notice::Group(g, ev) => {
                    let ws: Vec<Watcher> = st
                        .watchers
                        .get(&g)
                        .into_iter()
                        .flatten()
                        .filter_map(|w| w.wants(q.seq, q.to))
                        .collect();
                    drop(st);
                    ws.iter().for_each(|w| w(&ev));
                }
            }
        }
    }

    fn add_member(&self, group: &str, port: PortId) {
        {
            // A member heard of twice (from its own node and again through
            // another, or after a reconnection) is one member.
            let mut st = self.st.lock();
            let members = st.groups.entry(group.to_owned()).or_default();
            if members.contains(&port) {
                return;
            }
            members.push(port.clone());
            st.queue(Notice::Group(group.to_owned(), GroupEvent::Joined(port)));
        }
        self.deliver();
    }

    fn remove_member(&self, group: &str, port: &PortId) {
        {
            let mut st = self.st.lock();
            let Some(m) = st.groups.get_mut(group) else { return };
            let before = m.len();
            m.retain(|p| p != port);
            let removed = m.len() != before;
            if m.is_empty() {
                st.groups.remove(group);
            }
            if removed {
                st.queue(Notice::Group(group.to_owned(), GroupEvent::Left(port.clone())));
            }
        }
        self.deliver();
    }

    fn handle(&self, from: &NodeId, m: Msg) {
        let net = &self.net;
        tracing::debug!(node = %from, me = %net.me(), msg = %m, "global message");
        match m.tag() {
            Some("addr") => {
                let addrs: Vec<String> = m.get(1).unwrap_or_default();
                net.learn_addrs(from, addrs.clone());
                if !addrs.is_empty() {
                    // Tell the private nodes we are connected to.
                    let ports: Vec<PortId> = {
                        let st = self.st.lock();
                        st.peer_ports
                            .iter()
                            .filter(|(id, _)| *id != from && net.addrs_of(id).is_empty())
                            .map(|(_, p)| p.clone())
                            .collect()
                    };
                    let mut table = Map::new();
                    table.insert(from.as_str().to_owned(), Value::from(addrs));
                    for p in ports {
                        net.send_raw(
                            &p.node(),
                            Msg::from_array([
                                Value::from(p.name()),
                                Value::from("connect_nodes"),
                                Value::Map(table.clone()),
                            ]),
                        );
                    }
                }
            }
            Some("connect_nodes") => {
                let table: BTreeMap<String, Vec<String>> = m.get(1).unwrap_or_default();
                for (id, addrs) in table {
                    let Ok(id) = NodeId::new(&id) else { continue };
                    if id == *net.me() {
                        continue;
                    }
                    let reachable = !addrs.is_empty();
                    if let Some(rounds) = self.st.lock().lost.get_mut(&id) {
                        // Someone is still linked to it.
                        *rounds = 0;
                    }
                    net.learn_addrs(&id, addrs);
                    if reachable && !net.is_up(&id) {
                        // An empty message is a keepalive: it makes the node dial.
                        net.send_raw(&id, Msg::from_array([]));
                    }
                }
            }
            Some("find_node") => {
                let Ok(id) = m.str(1).and_then(NodeId::new) else { return };
                // Only a node linked to it vouches for its addresses (0.9
                // forgets them when the link goes down).
                let addrs = net.addrs_of(&id);
                if addrs.is_empty() || !net.is_up(&id) {
                    return;
                }
                let port = self.st.lock().peer_ports.get(from).cloned();
                if let Some(p) = port {
                    let mut table = Map::new();
                    table.insert(id.as_str().to_owned(), Value::from(addrs));
                    net.send_raw(
                        &p.node(),
                        Msg::from_array([
                            Value::from(p.name()),
                            Value::from("connect_nodes"),
                            Value::Map(table),
                        ]),
                    );
                }
            }
            Some("set") => {
                let table: BTreeMap<String, Vec<String>> = m.get(1).unwrap_or_default();
                for (g, ports) in table {
                    for p in ports {
                        if let Ok(p) = PortId::new(&p) {
                            self.add_member(&g, p);
                        }
                    }
                }
            }
            Some("reg1") | Some("reg0") => {
                let (Ok(p), Ok(g)) = (m.port(1), m.str(2)) else { return };
                if m.tag() == Some("reg1") {
                    self.add_member(g, p);
                } else {
                    self.remove_member(g, &p);
                }
            }
            other => tracing::debug!(node = %from, tag = ?other, "unknown Global message ignored"),
        }
    }

    fn broadcast(&self, tag: &str, port: &PortId, group: &str) {
        let ports: Vec<PortId> = self.st.lock().peer_ports.values().cloned().collect();
        for p in ports {
            self.net.send_raw(
                &p.node(),
                Msg::from_array([
                    Value::from(p.name()),
                    Value::from(tag),
                    Value::from(port),
                    Value::from(group),
                ]),
            );
        }
    }
}

/// Runs `AnyEvent::MP::Global::connect` for a peer: a port that takes the
/// peer's Global messages.
pub(crate) fn connect_port(core: &mut Core, from: Option<&NodeId>, key: Key, _args: Msg) {
    let (Some(from), Some(global)) = (from.cloned(), core.shared.global().cloned()) else { return };
    let Key::Name(name) = &key else { return };
    global.st.lock().their_ports.insert(from.clone(), name.to_string());
    let peer = from.clone();
    let cb = boxed(move |_ctx, m: Msg| -> crate::Result<()> {
        global.handle(&peer, m);
        Ok(())
    });
    core.insert(key, PortEntry::new(Handler::Cb(cb)));
}

impl Node {
    /// Registers a local port in a Global group (the original's
    /// `AnyEvent::MP::Global::register`): every node of the network learns
    /// it, and it leaves the group when it dies.
    ///
    /// # Errors
    /// [`Error::NoSuchPort`](crate::Error::NoSuchPort) for a port of another
    /// node; [`Error::Config`](crate::Error::Config) when the node has no network.
    pub fn register_group(&self, port: &PortId, group: &str) -> crate::Result<()> {
        let shared = self.shared();
        if !shared.is_local(port) {
            return Err(crate::Error::NoSuchPort(format!("{port} is not a port of this node")));
        }
        let Some(global) = shared.global().cloned() else {
            return Err(crate::Error::Config("groups need a node with a network (binds or seeds)".into()));
        };
        global.add_member(group, port.clone());
        global.broadcast("reg1", port, group);
        let (g, p2, g2) = (global, port.clone(), group.to_owned());
        let id = shared.next_mon();
        let key = shared.key_of(port.name());
        let action = Action::Call(Box::new(move |_r: Reason| {
            g.remove_member(&g2, &p2);
            g.broadcast("reg0", &p2, &g2);
        }));
        shared.call(move |core: &mut Core| core.mon_local(&key, id, action));
        Ok(())
    }

    /// The ports registered in a Global group, as far as this node knows.
    pub fn find_group(&self, group: &str) -> Vec<PortId> {
        self.shared()
            .global()
            .map(|g| g.st.lock().groups.get(group).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Every Global group this node knows of, with its members, by name.
    pub fn groups(&self) -> BTreeMap<String, Vec<PortId>> {
        let Some(global) = self.shared().global().cloned() else { return BTreeMap::new() };
        let st = global.st.lock();
        st.groups.iter().filter(|(_, m)| !m.is_empty()).map(|(g, m)| (g.clone(), m.clone())).collect()
    }

    /// Calls `f` for every change of a group's membership (joins and
    /// leaves), starting with a `Joined` for each current member. `f` runs
    /// one event at a time, in the order the group changed, on the task
    /// that changed it or on one delivering events before it: keep it
    /// short. Returns an ID for [`Node::unmon_group`].
    pub fn mon_group(&self, group: &str, f: impl Fn(&GroupEvent) + Send + Sync + 'static) -> u64 {
        let shared = self.shared();
        let Some(global) = shared.global().cloned() else { return 0 };
        let id = shared.next_mon();
        {
            let mut st = global.st.lock();
            let since = st.queued;
            st.watchers.entry(group.to_owned()).or_default().push(Watching { id, since, f: Arc::new(f) });
            for p in st.groups.get(group).cloned().unwrap_or_default() {
                st.queue_to(Some(id), Notice::Group(group.to_owned(), GroupEvent::Joined(p)));
            }
        }
        global.deliver();
        id
    }

    /// Stops a group monitor made by [`Node::mon_group`].
    pub fn unmon_group(&self, group: &str, id: u64) {
        if let Some(global) = self.shared().global() {
            if let Some(v) = global.st.lock().watchers.get_mut(group) {
                v.retain(|w| w.id != id);
            }
        }
    }

    /// Calls `f` whenever a link to another node comes up or goes down
    /// (as Erlang's `monitor_node`, for every node at once), starting with
    /// an `Up` for each node linked now. `f` runs on one of the node's
    /// network tasks, one event at a time, in the order the links changed:
    /// keep it short (send to a port or a channel). Returns an ID for
    /// [`Node::unmon_nodes`].
    pub fn mon_nodes(&self, f: impl Fn(&NodeEvent) + Send + Sync + 'static) -> u64 {
        let shared = self.shared();
        let Some(global) = shared.global().cloned() else { return 0 };
        let id = shared.next_mon();
        {
            let mut st = global.st.lock();
            let since = st.queued;
            st.node_watchers.push(Watching { id, since, f: Arc::new(f) });
            let up: Vec<NodeId> = st.told.keys().cloned().collect();
            for n in up {
                st.queue_to(Some(id), Notice::Node(NodeEvent::Up(n)));
            }
        }
        global.deliver();
        id
    }

    /// Stops a node monitor made by [`Node::mon_nodes`].
    pub fn unmon_nodes(&self, id: u64) {
        if let Some(global) = self.shared().global() {
            global.st.lock().node_watchers.retain(|w| w.id != id);
        }
    }

    /// The nodes this node knows of (not itself).
    pub fn known_nodes(&self) -> Vec<NodeId> {
        self.shared().remote().known_nodes()
    }

    /// Waits until this node has a live connection to `node` (returns at
    /// once if it has). It does not dial: send something, or let Global's
    /// mesh connect.
    pub async fn wait_up(&self, node: &NodeId) {
        let Some(net) = self.shared().global().map(|g| g.net.clone()) else {
            return std::future::pending().await;
        };
        loop {
            let notified = net.up_event.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if net.is_up(node) {
                return;
            }
            notified.await;
        }
    }

    /// Connects to `node` if there is no live link yet, and waits until
    /// there is one (as Erlang's `net_kernel:connect_node`). Messages and
    /// monitors connect by themselves; this is for code that wants the link
    /// up before it starts, or wants to know the node is reachable.
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout) when no link comes up
    /// within `timeout` (no known address, refused, wrong secret: the log
    /// says which).
    pub async fn connect(&self, node: &NodeId, timeout: std::time::Duration) -> crate::Result<()> {
        let Some(net) = self.shared().global().map(|g| g.net.clone()) else {
            return Err(crate::Error::Config("this node was built without networking".into()));
        };
        if *node == *self.id() || net.is_up(node) {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = |_| self.timed_out(format!("no connection to {node}"), node);
        // Dialled from this task, the link is up as soon as its handshake is.
        if tokio::time::timeout_at(deadline, net.dial_here(node)).await.map_err(timed_out)? {
            return Ok(());
        }
        // Someone else is dialling, or this attempt failed: an empty message
        // (a keepalive, which the peer ignores) makes the node dial, with
        // retries, and the link is awaited.
        let up = self.wait_up(node);
        net.send_raw(node, Msg::new());
        tokio::time::timeout_at(deadline, up).await.map_err(timed_out)
    }

    /// The nodes found at this node's seed addresses so far, in the order
    /// of the addresses.
    pub fn seed_nodes(&self) -> Vec<NodeId> {
        self.shared().global().map(|g| g.st.lock().seed_nodes.values().cloned().collect()).unwrap_or_default()
    }

    /// The nodes this node has a live connection to.
    pub fn up_nodes(&self) -> Vec<NodeId> {
        self.shared().remote().up_nodes()
    }

    /// The addresses this node listens on (actual ports, also for binds with port 0).
    pub fn listen_addrs(&self) -> Vec<String> {
        self.shared().global().map(|g| g.net.listen_addrs().to_vec()).unwrap_or_default()
    }

    /// Tells this node where another node listens, so that messages to it
    /// can be delivered without Global.
    pub fn add_node_addr(&self, node: &NodeId, addr: impl Into<String>) {
        if let Some(n) = self.shared().global().map(|g| &g.net) {
            n.give_addr(node, addr.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{msg, Node};

    async fn node(id: &str) -> (Node, Arc<Global>) {
        let c = NetConfig {
            binds: vec!["127.0.0.1:0".into()],
            secret: Some("made-up".into()),
            connect_timeout: 0.2,
            connect_interval: 0.05,
            ..NetConfig::default()
        };
        let n = Node::builder().id(id).net_config(c).build().await.unwrap();
        let g = n.shared().global().unwrap().clone();
        (n, g)
    }

    /// Waits until the node has no entry and no address for any node.
    async fn tables_empty(g: &Global) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while g.net.table_sizes() != (0, 0) {
            assert!(tokio::time::Instant::now() < deadline, "still {:?}", g.net.table_sizes());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn connect_nodes(ids: impl Iterator<Item = String>, addrs: &[&str]) -> Msg {
        let addrs = Value::from(addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        let table: Map = ids.map(|id| (id, addrs.clone())).collect();
        Msg::from_array([Value::from("connect_nodes"), Value::Map(table)])
    }

    /// The end of a peer's old link may be told after its next link came
    /// up (the old link's failure releases the peer's lock before it tells
    /// Global). Global must still open the new link, keep what came over
    /// it, and tell the node watchers of the old link's end first.
    #[tokio::test]
    async fn a_link_end_told_after_the_next_link_came_up_ends_only_the_old_link() {
        let (n, g) = node("told-late").await;
        let peer = NodeId::new("peer").unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        n.mon_nodes(move |ev| s.lock().push(ev.clone()));
        let set = |member: &str| {
            let mut table = Map::new();
            table.insert("grp".to_owned(), Value::from(vec![member.to_owned()]));
            Msg::from_array([Value::from("set"), Value::Map(table)])
        };

        assert!(!g.opening_messages(&peer, 1).is_empty());
        g.link_up(&peer, 1);
        g.handle(&peer, set("peer#old"));
        // Link 1 fails, link 2 comes up before link 1's end is told.
        assert!(!g.opening_messages(&peer, 2).is_empty(), "the new link must open Global again");
        g.link_up(&peer, 2);
        g.handle(&peer, set("peer#new"));
        g.link_down(&peer, 1, &Reason::transport_error("peer", "connection closed by peer"));

        assert_eq!(n.find_group("grp"), vec![PortId::new("peer#new").unwrap()]);
        let seen: Vec<&'static str> = seen
            .lock()
            .iter()
            .map(|e| match e {
                NodeEvent::Up(_) => "up",
                NodeEvent::Down(..) => "down",
            })
            .collect();
        assert_eq!(seen, ["up", "down", "up"]);
        assert!(g.st.lock().lost.is_empty(), "a node linked again is not lost");

        // The end of link 2 is told: now the node is gone.
        g.link_down(&peer, 2, &Reason::transport_error("peer", "connection closed by peer"));
        assert!(n.find_group("grp").is_empty());
        assert!(n.groups().is_empty());
    }

    /// A watcher added while events are still to be delivered is shown the
    /// present once: an event queued before it came is not told again.
    #[tokio::test]
    async fn a_watcher_added_while_events_are_queued_sees_each_member_once() {
        let (n, g) = node("watched").await;
        let member = PortId::new("watched#m").unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (n2, g2, m2, seen2) = (n.clone(), g.clone(), member.clone(), seen.clone());
        // A watcher of "x" that, on its first event, makes a member of "y"
        // (an event queued behind the one being delivered) and watches "y".
        n.mon_group("x", move |_| {
            g2.add_member("y", m2.clone());
            let s = seen2.clone();
            n2.mon_group("y", move |ev| s.lock().push(ev.clone()));
        });
        g.add_member("x", PortId::new("watched#x").unwrap());
        assert_eq!(*seen.lock(), vec![GroupEvent::Joined(member)]);
    }

    #[tokio::test]
    async fn node_ids_a_peer_names_leave_nothing_behind() {
        let (_n, g) = node("named-to").await;
        let from = NodeId::new("namer").unwrap();
        // 100,000 made-up IDs without an address: nothing to dial, nothing kept.
        g.handle(&from, connect_nodes((0..100_000).map(|i| format!("made-up-{i}")), &[]));
        assert_eq!(g.net.table_sizes(), (0, 0));
        // With an address nobody answers on: dialled, and forgotten once
        // the dial has failed.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        g.handle(&from, connect_nodes((0..1_000).map(|i| format!("nowhere-{i}")), &[&dead]));
        tables_empty(&g).await;
        assert!(g.net.known_nodes().is_empty());
    }

    #[tokio::test]
    async fn sends_to_made_up_nodes_fail_and_leave_nothing_behind() {
        let (n, g) = node("sender").await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..100_000 {
            let ghost = PortId::new(format!("ghost-{i}#x")).unwrap();
            let tx = tx.clone();
            n.mon(&ghost, move |r: Reason| {
                let _ = tx.send(r);
            })
            .keep();
            n.snd(&ghost, msg!["hello"]);
        }
        for _ in 0..100_000 {
            let r = rx.recv().await.unwrap();
            assert!(r.to_string().contains("unable to connect"), "{r}");
        }
        tables_empty(&g).await;
        assert!(n.known_nodes().is_empty());
    }
}

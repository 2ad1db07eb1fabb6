//! The network layer: listeners, connections, the handshake, per-node send
//! queues, remote monitors (SPEC A.2-A.9, Part B, C.1-C.3).
//!
//! One [`Peer`] per remote node holds everything about it: the state of its
//! connection, the messages queued while connecting, the encoded bytes
//! waiting for the writer, and the local monitors on its ports. Its mutex
//! is what keeps the loss guarantee (P25): a monitor registered before a
//! message was queued is in the table when that connection fails.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::core::{Action, Cmd, Core, Shared};
use crate::error::{Error, Result};
use crate::id::{NodeId, PortId};
use crate::node::Node;
use crate::reason::Reason;
use crate::value::{Msg, Value};
use crate::wire::auth::{self, AuthLine, AuthMethod};
use crate::wire::codec::{self, FrameReader, JsonReader, Limits, MsgpackReader};
use crate::wire::greeting::{self, Greeting, LineReader};

/// Network settings of a node. The defaults are the original's where it
/// had one (SPEC A.9, A.11) and SPEC C.3's limits.
#[derive(Clone)]
#[non_exhaustive]
pub struct NetConfig {
    /// Listener addresses (`ip:port`; port 0 picks a free one). None: a
    /// private node, which can talk to public nodes only.
    pub binds: Vec<String>,
    /// Seed addresses (`host:port`).
    pub seeds: Vec<String>,
    /// The shared secret; without one (and without TLS) no connection
    /// can be authenticated.
    pub secret: Option<String>,
    /// PEM with our private key and certificate chain; enables TLS. Its
    /// certificates are also the only ones trusted for peers (SPEC A.5).
    pub cert_pem: Option<String>,
    /// Accept the `cleartext` auth method from peers (off by default).
    pub allow_cleartext: bool,
    /// Accept and send `tls_anon` (off by default).
    pub allow_tls_anon: bool,
    /// Seconds of silence after which a peer is considered dead (we
    /// advertise `monitor_timeout - network_latency`, SPEC A.9).
    pub monitor_timeout: f64,
    /// Expected network latency in seconds.
    pub network_latency: f64,
    /// Seconds between connection attempts to a node.
    pub connect_interval: f64,
    /// Seconds after the first queued message before `unable to connect`.
    pub connect_timeout: f64,
    /// Seconds for the whole handshake, from connect or accept to auth.
    pub handshake_timeout: f64,
    /// Longest handshake line, in bytes.
    pub max_line: usize,
    /// Largest message, in bytes.
    pub max_message: usize,
    /// Deepest nesting of a message.
    pub max_depth: usize,
    /// Most bytes queued for one node before its connection is treated as
    /// failed (backpressure: `snd` never blocks).
    pub send_queue_limit: usize,
    /// Most connections open at once (in handshake or established).
    pub max_connections: usize,
    /// Most incoming connections from one IP address that may be in their
    /// handshake at once, so that one host's silent sockets cannot take
    /// every connection slot from the others.
    pub max_handshakes_per_ip: usize,
    /// The framings this node accepts and sends, in order of preference
    /// (`msgpack`, `json`); the default offers both, msgpack first.
    pub framings: Vec<String>,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            binds: Vec::new(),
            seeds: Vec::new(),
            secret: None,
            cert_pem: None,
            allow_cleartext: false,
            allow_tls_anon: false,
            monitor_timeout: 15.0,
            network_latency: 3.0,
            connect_interval: 2.0,
            connect_timeout: 15.0,
            handshake_timeout: 10.0,
            max_line: greeting::MAX_LINE,
            max_message: 16 << 20,
            max_depth: 128,
            send_queue_limit: 64 << 20,
            max_connections: 1024,
            max_handshakes_per_ip: 64,
            framings: greeting::OUR_FRAMINGS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfig")
            .field("binds", &self.binds)
            .field("seeds", &self.seeds)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("cert_pem", &self.cert_pem.as_ref().map(|_| "<pem>"))
            .field("allow_cleartext", &self.allow_cleartext)
            .field("allow_tls_anon", &self.allow_tls_anon)
            .field("monitor_timeout", &self.monitor_timeout)
            .field("send_queue_limit", &self.send_queue_limit)
            .finish_non_exhaustive()
    }
}

impl NetConfig {
    pub(crate) fn is_active(&self) -> bool {
        !self.binds.is_empty() || !self.seeds.is_empty() || self.secret.is_some() || self.cert_pem.is_some()
    }

    /// The timeout we advertise: `max(monitor_timeout - network_latency, 1 + network_latency)`.
    fn advertised_timeout(&self) -> u64 {
        (self.monitor_timeout - self.network_latency).max(1.0 + self.network_latency).round().max(1.0) as u64
    }

    fn limits(&self) -> Limits {
        Limits { max_message: self.max_message, max_depth: self.max_depth }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.001, 1.0e9))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Framing {
    Json,
    Msgpack,
}

impl Framing {
    fn from_name(s: &str) -> Option<Framing> {
        match s {
            "json" => Some(Framing::Json),
            "msgpack" => Some(Framing::Msgpack),
            _ => None,
        }
    }

    fn encode(self, msg: &[Value], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Framing::Json => codec::encode_json(msg, out),
            Framing::Msgpack => codec::encode_msgpack(msg, out),
        }
    }

    fn encode_dest(self, dest: &str, payload: &[Value], out: &mut Vec<u8>) -> Result<()> {
        match self {
            Framing::Json => codec::encode_json_dest(dest, payload, out),
            Framing::Msgpack => codec::encode_msgpack_dest(dest, payload, out),
        }
    }

    fn reader(self, limits: Limits) -> Box<dyn FrameReader + Send> {
        match self {
            Framing::Json => Box::new(JsonReader::new(limits)),
            Framing::Msgpack => Box::new(MsgpackReader::new(limits)),
        }
    }
}

/// The established link to a peer.
struct Up {
    conn: u64,
    /// Wakes this link's writer (each link has its own, so that a link on
    /// its way out cannot take the wake-up meant for its successor).
    wake: Arc<Notify>,
    /// Ends this link's connection task (and closes its socket) at once:
    /// when the link fails, is replaced, or the node shuts down.
    closed: tokio_util::sync::CancellationToken,
    framing: Framing,
    aemp: bool,
    incarnation: Option<String>,
    /// Who dialled this connection.
    dialer: NodeId,
}

#[derive(Default)]
struct PeerState {
    up: Option<Up>,
    /// Messages queued while not connected (SPEC A.9.3).
    pending: Vec<Msg>,
    pending_bytes: usize,
    /// When the first pending message was queued (the connect deadline runs from it).
    pending_since: Option<Instant>,
    /// Encoded bytes for the writer.
    out: Vec<u8>,
    /// The socket of a plain TCP link, for writes without a task switch.
    sock: Option<Arc<tokio::net::tcp::OwnedWriteHalf>>,
    /// The writer task has taken bytes out of `out` and is writing them.
    writing: bool,
    /// A dialling task is running.
    dialing: bool,
    /// The connection that currently may become the link (past its greeting).
    claim: Option<(u64, NodeId)>,
    /// One of our dials to this node is under way and has not yet read the
    /// peer's greeting.
    attempting: bool,
    /// Local monitors on this node's ports: port name -> actions.
    monitors: HashMap<Box<str>, Vec<(u64, Action)>>,
    /// Removed from the peers' map (a node that left): whoever still holds
    /// this entry must take the node's current one instead.
    forgotten: bool,
}

pub(crate) struct Peer {
    id: NodeId,
    st: Mutex<PeerState>,
    /// Wakes a dial waiting to retry: the node has new addresses.
    new_addrs: Notify,
}

/// The network state of a node.
pub(crate) struct Net {
    shared: Weak<Shared>,
    me: NodeId,
    cfg: NetConfig,
    incarnation: String,
    tls: Option<crate::tls::TlsSetup>,
    listen: Vec<String>,
    peers: Mutex<crate::util::FastMap<NodeId, Arc<Peer>>>,
    /// The address book: listener addresses of other nodes (kept apart from
    /// the peers' states so that Global can read it while one is locked).
    addrs: Mutex<HashMap<NodeId, Vec<String>>>,
    next_conn: AtomicU64,
    open_conns: AtomicUsize,
    /// Incoming handshakes in progress, per remote address.
    handshaking: Mutex<HashMap<std::net::IpAddr, usize>>,
    pub(crate) global: crate::global::Global,
    /// Woken whenever a connection comes up (for [`Node::wait_up`]).
    pub(crate) up_event: Notify,
}

impl Net {
    /// Binds the listeners and starts accepting, and dials the seeds.
    pub(crate) async fn start(node: &Node, cfg: NetConfig) -> Result<Arc<Net>> {
        if cfg.framings.is_empty() {
            return Err(Error::Config("framings: at least one of msgpack, json is needed".into()));
        }
        if let Some(f) = cfg.framings.iter().find(|f| Framing::from_name(f).is_none()) {
            return Err(Error::Config(format!("framings: {f:?} is not one aemp speaks (msgpack, json)")));
        }
        let tls = match &cfg.cert_pem {
            Some(pem) => Some(crate::tls::TlsSetup::from_pem(pem)?),
            None => None,
        };
        let mut listeners = Vec::new();
        let mut listen = Vec::new();
        for b in &cfg.binds {
            let l = TcpListener::bind(b.as_str())
                .await
                .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("cannot bind {b}: {e}"))))?;
            let addr = l.local_addr()?;
            listen.push(addr.to_string());
            listeners.push(l);
        }
        let net = Arc::new(Net {
            shared: Arc::downgrade(node.shared()),
            me: node.id().clone(),
            incarnation: greeting::new_incarnation(),
            tls,
            listen,
            peers: Mutex::default(),
            addrs: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            open_conns: AtomicUsize::new(0),
            handshaking: Mutex::new(HashMap::new()),
            global: crate::global::Global::new(cfg.seeds.clone()),
            up_event: Notify::new(),
            cfg,
        });
        // Installed before anything can connect: a connection that comes up
        // at once must find the node's network (its Global port needs it).
        let _ = node.shared().net.set(net.clone());
        for l in listeners {
            let net2 = net.clone();
            crate::node::spawn_tracked(node.shared(), async move { net2.accept_loop(l).await });
        }
        crate::global::start(&net, node);
        Ok(net)
    }

    /// The addresses the listeners are bound to.
    pub(crate) fn listen_addrs(&self) -> &[String] {
        &self.listen
    }

    pub(crate) fn cfg(&self) -> &NetConfig {
        &self.cfg
    }

    pub(crate) fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }

    pub(crate) fn me(&self) -> &NodeId {
        &self.me
    }

    /// The peer of a node given by its ID string, made if new.
    fn peer_str(&self, id: &str) -> Option<Arc<Peer>> {
        if let Some(p) = self.peers.lock().get(id) {
            return Some(p.clone());
        }
        NodeId::new(id).ok().map(|id| self.peer(&id))
    }

    fn peer(&self, id: &NodeId) -> Arc<Peer> {
        self.peers
            .lock()
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(Peer { id: id.clone(), st: Mutex::default(), new_addrs: Notify::new() })
            })
            .clone()
    }

    fn existing_peer(&self, id: &NodeId) -> Option<Arc<Peer>> {
        self.peers.lock().get(id).cloned()
    }

    /// Records listener addresses of a node (from Global).
    pub(crate) fn learn_addrs(&self, id: &NodeId, addrs: Vec<String>) {
        if *id == self.me {
            return;
        }
        let peer = self.peer(id);
        if !addrs.is_empty() {
            let mut book = self.addrs.lock();
            let new = book.get(id).is_none_or(|old| addrs.iter().any(|a| !old.contains(a)));
            book.insert(id.clone(), addrs);
            if new {
                peer.new_addrs.notify_one();
            }
        }
    }

    /// The known addresses of a node.
    pub(crate) fn addrs_of(&self, id: &NodeId) -> Vec<String> {
        self.addrs.lock().get(id).cloned().unwrap_or_default()
    }

    /// Every node we know of (not ourselves).
    pub(crate) fn known_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.peers.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// The nodes with a live connection.
    pub(crate) fn up_nodes(&self) -> Vec<NodeId> {
        // Never hold the map's lock while taking a peer's (lock order: a
        // peer's state may be held while the map is consulted).
        let peers: Vec<Arc<Peer>> = self.peers.lock().values().cloned().collect();
        let mut v: Vec<NodeId> =
            peers.iter().filter(|p| p.st.lock().up.is_some()).map(|p| p.id.clone()).collect();
        v.sort();
        v
    }

    /// Whether a node has a live connection.
    pub(crate) fn is_up(&self, id: &NodeId) -> bool {
        self.existing_peer(id).is_some_and(|p| p.st.lock().up.is_some())
    }

    /// Sends a raw protocol message (first element = destination port name) to a node.
    pub(crate) fn send_raw(self: &Arc<Net>, node: &NodeId, msg: Msg) {
        if *node == self.me {
            return;
        }
        let peer = self.peer(node);
        self.enqueue(&peer, msg);
    }

    /// Sends a notification (a `kil` for a remote monitor) if the node's link
    /// is up. When it is down the node's side has already fired its
    /// monitors with `transport_error`, so there is no one to tell; and a
    /// node gone for good is not brought back into the tables by it.
    pub(crate) fn notify_if_up(self: &Arc<Net>, node: &NodeId, msg: Msg) {
        match self.existing_peer(node) {
            Some(peer) if peer.st.lock().up.is_some() => self.enqueue(&peer, msg),
            _ => tracing::debug!(%node, "notification for a node that is down dropped"),
        }
    }

    /// Sends `payload` to port `dest` of `peer` (`snd` of a remote port).
    fn enqueue_to(self: &Arc<Net>, peer: &Arc<Peer>, dest: &str, payload: Msg) {
        let st = peer.st.lock();
        if st.up.is_some() {
            self.write_locked_to(
                peer,
                st,
                Some(dest),
                |framing, out| framing.encode_dest(dest, &payload.0, out),
                None,
            );
            return;
        }
        drop(st);
        let mut full = Vec::with_capacity(payload.0.len() + 1);
        full.push(Value::from(dest));
        full.extend(payload.0);
        self.enqueue(peer, Msg::from(full));
    }

    /// Encodes into the live connection's buffer (the lock is held); the
    /// writer task is woken, or, with `dirty`, the caller flushes later.
    fn write_locked_to(
        self: &Arc<Net>,
        peer: &Arc<Peer>,
        mut st: parking_lot::MutexGuard<'_, PeerState>,
        dest: Option<&str>,
        encode: impl FnOnce(Framing, &mut Vec<u8>) -> Result<()>,
        dirty: Option<&mut Vec<Arc<Peer>>>,
    ) {
        let Some(up) = &st.up else { return };
        let (framing, conn, link_wake) = (up.framing, up.conn, up.wake.clone());
        let was_empty = st.out.is_empty();
        if let Err(e) = encode(framing, &mut st.out) {
            let (fire, reason) = unsendable(&peer.id, &mut st, dest, &e);
            drop(st);
            self.fire_monitors(peer, fire, reason);
            return;
        }
        if st.out.len() > self.cfg.send_queue_limit {
            drop(st);
            self.fail(peer, conn, "send queue limit exceeded");
            return;
        }
        drop(st);
        match dirty {
            Some(d) => {
                if !d.last().is_some_and(|p| Arc::ptr_eq(p, peer)) {
                    d.push(peer.clone());
                }
            }
            None => {
                if was_empty {
                    link_wake.notify_one();
                }
            }
        }
    }

    /// Writes what is buffered for `peer` now, from the calling task, when
    /// the link is plain TCP and the writer task is idle; else wakes it.
    pub(crate) fn flush(self: &Arc<Net>, peer: &Arc<Peer>) {
        let mut st = peer.st.lock();
        if st.out.is_empty() || st.writing {
            return;
        }
        let link_wake = st.up.as_ref().map(|u| u.wake.clone());
        let Some(sock) = st.sock.clone() else {
            drop(st);
            if let Some(w) = link_wake {
                w.notify_one();
            }
            return;
        };
        let mut written = 0;
        let failure = loop {
            match sock.try_write(&st.out[written..]) {
                Ok(n) => {
                    written += n;
                    if written == st.out.len() {
                        break None;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break None,
                Err(e) => break Some(e),
            }
        };
        st.out.drain(..written);
        let rest = !st.out.is_empty();
        let conn = st.up.as_ref().map(|u| u.conn);
        drop(st);
        if let (Some(e), Some(c)) = (failure, conn) {
            self.fail(peer, c, &format!("write error: {e}"));
        } else if let (true, Some(w)) = (rest, link_wake) {
            w.notify_one();
        }
    }

    fn enqueue(self: &Arc<Net>, peer: &Arc<Peer>, msg: Msg) {
        let mut st = peer.st.lock();
        if st.forgotten {
            drop(st);
            return self.enqueue(&self.peer(&peer.id), msg);
        }
        if st.up.is_some() {
            // `msg` carries its destination first.
            let dest = msg.0.first().and_then(Value::as_str).map(str::to_owned);
            self.write_locked_to(peer, st, dest.as_deref(), |framing, out| framing.encode(&msg.0, out), None);
            return;
        }
        st.pending_bytes += estimate(&msg);
        st.pending.push(msg);
        if st.pending_since.is_none() {
            st.pending_since = Some(Instant::now());
            let net = self.clone();
            let p = peer.clone();
            let timeout = secs(self.cfg.connect_timeout);
            if let Some(shared) = self.shared() {
                crate::node::spawn_tracked(&shared, async move {
                    tokio::time::sleep(timeout).await;
                    net.connect_deadline(&p);
                });
            }
        }
        if st.pending_bytes > self.cfg.send_queue_limit {
            let pending = std::mem::take(&mut st.pending);
            st.pending_bytes = 0;
            st.pending_since = None;
            let mons = std::mem::take(&mut st.monitors);
            drop(st);
            drop(pending);
            tracing::warn!(node = %peer.id, "send queue limit exceeded while connecting");
            self.fire_monitors(
                peer,
                mons,
                Reason::transport_error(peer.id.as_str(), "send queue limit exceeded"),
            );
            return;
        }
        let dial = !st.dialing;
        st.dialing = true;
        drop(st);
        if dial {
            self.start_dial(peer.clone());
        }
    }

    /// No connection came up in time for the queued messages.
    fn connect_deadline(self: &Arc<Net>, peer: &Arc<Peer>) {
        let mut st = peer.st.lock();
        if st.up.is_some() || st.pending_since.is_none() {
            return;
        }
        if st
            .pending_since
            .is_some_and(|t| t.elapsed() + Duration::from_millis(5) < secs(self.cfg.connect_timeout))
        {
            return;
        }
        st.pending.clear();
        st.pending_bytes = 0;
        st.pending_since = None;
        let mons = std::mem::take(&mut st.monitors);
        drop(st);
        tracing::warn!(node = %peer.id, "unable to connect");
        self.fire_monitors(peer, mons, Reason::transport_error(peer.id.as_str(), "unable to connect"));
    }

    fn fire_monitors(&self, peer: &Peer, mons: HashMap<Box<str>, Vec<(u64, Action)>>, reason: Reason) {
        if mons.is_empty() {
            return;
        }
        let Some(shared) = self.shared() else { return };
        let _ = peer;
        shared.call(move |core: &mut Core| {
            for (name, actions) in mons {
                for (_, a) in actions {
                    core.fire(&name, a, reason.clone());
                }
            }
        });
    }

    /// The connection `conn` to `peer` failed: drop what was not written,
    /// fire every monitor on the node's ports (SPEC A.9.2).
    pub(crate) fn fail(self: &Arc<Net>, peer: &Arc<Peer>, conn: u64, text: &str) {
        let mut st = peer.st.lock();
        if st.up.as_ref().map(|u| u.conn) != Some(conn) {
            return;
        }
        if let Some(up) = st.up.take() {
            up.closed.cancel();
        }
        st.sock = None;
        st.writing = false;
        st.out = Vec::new();
        st.pending.clear();
        st.pending_bytes = 0;
        st.pending_since = None;
        let mons = std::mem::take(&mut st.monitors);
        drop(st);
        tracing::info!(node = %peer.id, "connection lost: {text}");
        if let Some(shared) = self.shared() {
            let id = peer.id.clone();
            shared.call(move |core: &mut Core| core.drop_remote_monitors(&id));
        }
        let reason = Reason::transport_error(peer.id.as_str(), text);
        self.fire_monitors(peer, mons, reason.clone());
        crate::global::node_down(self, &peer.id, &reason);
        self.forget_if_unreachable(peer);
    }

    /// Forgets a node that is gone and cannot be dialled (no known address,
    /// nothing queued or monitored): a private node that disconnected.
    /// Without this every client that ever connected would stay in the
    /// address table sent to each new connection.
    fn forget_if_unreachable(&self, peer: &Arc<Peer>) {
        if !self.addrs_of(&peer.id).is_empty() {
            return;
        }
        let mut peers = self.peers.lock();
        // Only try the peer's lock: blocking on it while holding the map
        // would break the lock order (a busy peer is simply kept). The
        // lock is held while the entry goes, and the entry is marked, so
        // that no one adds to an entry that is no longer in the map.
        let Some(mut st) = peer.st.try_lock() else { return };
        let idle = st.up.is_none()
            && st.claim.is_none()
            && st.pending.is_empty()
            && st.monitors.is_empty()
            && !st.dialing;
        if idle && peers.get(&peer.id).is_some_and(|p| Arc::ptr_eq(p, peer)) {
            peers.remove(&peer.id);
            st.forgotten = true;
        }
    }

    /// Closes every connection (shutdown).
    pub(crate) fn shutdown(self: &Arc<Net>) {
        let peers: Vec<Arc<Peer>> = self.peers.lock().values().cloned().collect();
        for p in peers {
            let conn = p.st.lock().up.as_ref().map(|u| u.conn);
            if let Some(c) = conn {
                let mut st = p.st.lock();
                if st.up.as_ref().map(|u| u.conn) == Some(c) {
                    if let Some(up) = st.up.take() {
                        up.closed.cancel();
                    }
                    // What is queued goes if the socket takes it now (a last
                    // message, or our auth line when the link came up a
                    // moment ago): at best effort, never waiting.
                    if let (Some(sock), false) = (&st.sock, st.writing) {
                        let _ = sock.try_write(&st.out);
                    }
                    st.sock = None;
                    st.out.clear();
                }
                drop(st);
            }
        }
    }

    /// Local monitors on a remote node's port died: the node told us with `kil`.
    pub(crate) fn remote_port_died(&self, node: &NodeId, name: &str, _reason: &Reason) -> Vec<Action> {
        let Some(p) = self.existing_peer(node) else { return Vec::new() };
        let mut st = p.st.lock();
        st.monitors.remove(name).map(|v| v.into_iter().map(|(_, a)| a).collect()).unwrap_or_default()
    }

    async fn accept_loop(self: Arc<Net>, l: TcpListener) {
        loop {
            let (sock, addr) = match l.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Take the slot here, before the next accept, so that a burst
            // of connections cannot pass the check all at once.
            let Some(slot) = ConnSlot::try_take(&self) else {
                tracing::warn!(%addr, "connection refused: {} connections open", self.cfg.max_connections);
                drop(sock);
                continue;
            };
            let Some(hs_slot) = HandshakeSlot::try_take(&self, addr.ip()) else {
                tracing::warn!(
                    %addr,
                    "connection refused: {} handshakes from {} in progress",
                    self.cfg.max_handshakes_per_ip,
                    addr.ip()
                );
                continue;
            };
            let net = self.clone();
            // Greet at once, before the connection's task starts: the peer
            // waits for our lines before it can authenticate (see greet_now).
            let greeted = self.greet_now(&sock, Some(addr), false);
            if let Some(shared) = self.shared() {
                crate::node::spawn_tracked(&shared, async move {
                    let _slot = slot;
                    if let Err(e) =
                        net.clone().run_connection_reporting(sock, false, greeted, Some(hs_slot), None).await
                    {
                        tracing::warn!(%addr, "incoming connection closed: {e}");
                    }
                });
            }
        }
    }

    fn start_dial(self: &Arc<Net>, peer: Arc<Peer>) {
        let Some(shared) = self.shared() else { return };
        let net = self.clone();
        crate::node::spawn_tracked(&shared, async move { net.dial_loop(peer).await });
    }

    /// Tries the node's addresses until a connection is up, nothing is
    /// pending any more, or the node is unknown.
    async fn dial_loop(self: Arc<Net>, peer: Arc<Peer>) {
        // The original waits a random 0-1 s before the first attempt; we go at once.
        loop {
            let (addrs, wanted) = {
                let st = peer.st.lock();
                (
                    self.addrs_of(&peer.id),
                    st.up.is_none() && (!st.pending.is_empty() || !st.monitors.is_empty()),
                )
            };
            if !wanted {
                break;
            }
            // A connection from that node is in its handshake: let it finish
            // rather than race it.
            if peer.st.lock().claim.is_some() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            for a in addrs {
                if let Some(link) = self.dial_addr(&peer, &a).await {
                    self.clone().run_link(link).await;
                }
                if peer.st.lock().up.is_some() {
                    break;
                }
            }
            if peer.st.lock().up.is_some() {
                break;
            }
            // Addresses learned meanwhile (from Global, say, for a node
            // that had none) end the wait at once.
            tokio::select! {
                _ = tokio::time::sleep(secs(self.cfg.connect_interval)) => {}
                _ = peer.new_addrs.notified() => {}
            }
        }
        peer.st.lock().dialing = false;
    }

    /// One attempt to make a link to `peer` at `addr`: TCP connect and
    /// handshake (failures are logged).
    async fn dial_addr(self: &Arc<Net>, peer: &Arc<Peer>, addr: &str) -> Option<LiveLink> {
        peer.st.lock().attempting = true;
        tracing::trace!(node = %peer.id, addr, "dialling");
        let link = match connect_addr(addr, secs(self.cfg.network_latency.max(1.0))).await {
            Some(Ok(sock)) => {
                let greeted = self.greet_now(&sock, addr.parse().ok(), true);
                match self.establish(sock, true, greeted, None, None).await {
                    Ok(link) => Some(link),
                    Err(e) => {
                        if e.is_refusal() {
                            // Worth seeing without debug logging: a wrong
                            // secret or certificate never heals by itself.
                            tracing::warn!(node = %peer.id, addr, "connection refused: {e}");
                        } else {
                            tracing::debug!(node = %peer.id, addr, "connection ended: {e}");
                        }
                        None
                    }
                }
            }
            Some(Err(e)) => {
                tracing::debug!(node = %peer.id, addr, "connect failed: {e}");
                None
            }
            None => {
                tracing::debug!(node = %peer.id, addr, "connect timed out");
                None
            }
        };
        peer.st.lock().attempting = false;
        link
    }

    /// Dials `node` from the calling task when nothing else is dialling it
    /// or connecting from it: once the handshake is done the link is up,
    /// with no hand-off to a dialling task and back (for `Node::connect`).
    /// Returns whether the link is up; when not, the usual dialling (with
    /// its retries) is left to take over.
    pub(crate) async fn dial_here(self: &Arc<Net>, node: &NodeId) -> bool {
        let addrs = self.addrs_of(node);
        if addrs.is_empty() {
            return false;
        }
        let peer = self.peer(node);
        {
            let mut st = peer.st.lock();
            if st.dialing || st.up.is_some() || st.claim.is_some() || st.forgotten {
                return false;
            }
            st.dialing = true;
        }
        let _dialing = DialingHere { net: self.clone(), peer: peer.clone() };
        for a in addrs {
            if let Some(link) = self.dial_addr(&peer, &a).await {
                if let Some(shared) = self.shared() {
                    crate::node::spawn_tracked(&shared, self.clone().run_link(link));
                }
                return true;
            }
        }
        false
    }

    /// Dials an address whose node is not known yet (a seed); returns the
    /// node's ID once the connection has ended.
    ///
    /// When the handshake fails, `named` receives the node ID the peer's
    /// greeting gave, if it got that far (a seed that is already connected
    /// to us is refused as a duplicate, and is known by that ID).
    pub(crate) async fn dial_seed(
        self: Arc<Net>,
        addr: &str,
        found: impl FnOnce(&NodeId),
        named: &mut Option<NodeId>,
    ) -> Result<NodeId> {
        let sock = connect_addr(addr, secs(self.cfg.network_latency.max(1.0)))
            .await
            .ok_or_else(|| Error::Timeout(format!("connect to {addr}")))??;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        // We dialled this connection, though we learn the node's ID only
        // from its greeting.
        let (tx_named, rx_named) = tokio::sync::oneshot::channel();
        let greeted = self.greet_now(&sock, addr.parse().ok(), true);
        let conn = self.run_connection_reporting(sock, true, greeted, None, Some((tx, tx_named)));
        tokio::pin!(conn);
        // Report the node as soon as the handshake names it, then run the
        // connection to its end.
        let r = tokio::select! {
            r = &mut conn => r,
            id = &mut rx => {
                let id = id.map_err(|_| Error::Protocol("no peer".into()))?;
                found(&id);
                conn.await?;
                return Ok(id);
            }
        };
        if let Err(e) = r {
            *named = rx_named.await.ok();
            return Err(e);
        }
        let id = rx.try_recv().map_err(|_| Error::Protocol("no peer".into()))?;
        found(&id);
        Ok(id)
    }

    /// Runs one connection to its end: handshake, then the data phase
    /// (returns when the connection is closed).
    async fn run_connection_reporting(
        self: Arc<Net>,
        sock: TcpStream,
        we_dialed: bool,
        greeted: Greeted,
        hs_slot: Option<HandshakeSlot>,
        report: Option<(tokio::sync::oneshot::Sender<NodeId>, tokio::sync::oneshot::Sender<NodeId>)>,
    ) -> Result<()> {
        let link = self.establish(sock, we_dialed, greeted, hs_slot, report).await?;
        self.run_link(link).await;
        Ok(())
    }

    /// One connection's handshake, up to its becoming the link to its node.
    async fn establish(
        self: &Arc<Net>,
        sock: TcpStream,
        we_dialed: bool,
        greeted: Greeted,
        hs_slot: Option<HandshakeSlot>,
        report: Option<(tokio::sync::oneshot::Sender<NodeId>, tokio::sync::oneshot::Sender<NodeId>)>,
    ) -> Result<LiveLink> {
        // Accepted connections hold their slot already (see accept_loop).
        let slot = we_dialed.then(|| ConnSlot::take(self));
        let mut greeted = greeted;
        let conn = greeted.conn;
        let deadline = Instant::now() + secs(self.cfg.handshake_timeout);
        let mut claimed = Claimed { net: self.clone(), conn, peer: greeted.claimed.take() };
        let hs =
            tokio::time::timeout_at(deadline, self.handshake(sock, greeted, we_dialed, &mut claimed.peer))
                .await;
        drop(hs_slot);
        let hs = match hs {
            Ok(r) => r,
            Err(_) => Err(Error::Protocol("handshake did not finish in time".into())),
        };
        let (hs, peer) = match hs {
            Ok(x) => x,
            Err(e) => {
                if let (Some((_, named)), Some(p)) = (report, &claimed.peer) {
                    let _ = named.send(p.id.clone());
                }
                return Err(e);
            }
        };
        if let Some((r, _)) = report {
            let _ = r.send(peer.id.clone());
        }
        let mut link = self.become_link(hs, peer, conn)?;
        claimed.peer = None;
        link.slot = slot;
        Ok(link)
    }

    /// Our two greeting lines for a new connection.
    ///
    /// A dialler writes them at once (a new socket's send buffer is empty,
    /// so it takes them whole): the peer needs them before it can
    /// authenticate, so they go out before the connection's task is even
    /// scheduled. An acceptor first takes what the dialler has sent so far.
    /// When that is its whole greeting, the acceptor decides on the
    /// connection right here and sends its greeting and auth line in one
    /// write, which needs one wake-up of the dialler instead of two.
    /// Neither side ever waits for the other's greeting before sending its
    /// own (SPEC A.2). `peer_addr` is the peer's address when the caller
    /// knows it already (the socket is asked otherwise).
    fn greet_now(
        self: &Arc<Net>,
        sock: &TcpStream,
        peer_addr: Option<SocketAddr>,
        we_dialed: bool,
    ) -> Greeted {
        let _ = sock.set_nodelay(true);
        let peer_addr = peer_addr.or_else(|| sock.peer_addr().ok()).map(|a| a.to_string());
        let mut ours = greeting::our_greeting(
            self.me.as_str(),
            self.cfg.allow_cleartext,
            self.cfg.allow_tls_anon,
            self.tls.is_some(),
            self.cfg.advertised_timeout(),
            peer_addr.as_deref(),
            &self.incarnation,
            greeting::PROVIDER,
        );
        ours.framings = self.cfg.framings.clone();
        let l1 = ours.to_line();
        let l2 = greeting::new_nonce();
        let mut out = format!("{l1}\n{l2}\n").into_bytes();
        let mut g = Greeted {
            l1,
            l2,
            unsent: Vec::new(),
            lines: Lines::new(self.cfg.max_line),
            conn: self.next_conn.fetch_add(1, Ordering::Relaxed),
            claimed: None,
            decided: None,
        };
        if !we_dialed {
            g.lines.buf.reserve(1024);
            let _ = sock.try_read_buf(&mut g.lines.buf);
            g.decided = match g.lines.ready_pair() {
                Ok(Some((r1, r2))) => {
                    let d = self.decide([&g.l1, &g.l2], [&r1, &r2], g.conn, false, &mut g.claimed);
                    // Under TLS the auth line waits for the TLS handshake.
                    if let Ok(d) = &d {
                        if !d.tls_on {
                            out.extend_from_slice(d.auth_line.as_bytes());
                        }
                    }
                    Some(d.map(|d| (r1, r2, d)))
                }
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            };
        }
        let written = sock.try_write(&out).unwrap_or(0);
        out.drain(..written);
        g.unsent = out;
        g
    }

    async fn handshake(
        self: &Arc<Net>,
        sock: TcpStream,
        greeted: Greeted,
        we_dialed: bool,
        claimed: &mut Option<Arc<Peer>>,
    ) -> Result<(Handshaken, Arc<Peer>)> {
        let Greeted { l1, l2, mut unsent, mut lines, conn, decided, .. } = greeted;
        let mut stream = Link::Plain(sock);
        let decided_early = decided.is_some();
        let decided = match decided {
            // An acceptor decided when it saw the dialler's greeting.
            Some(d) => d,
            None => {
                if !unsent.is_empty() {
                    stream.write_all(&unsent).await?;
                    unsent.clear();
                }
                let r1 = lines.next(&mut stream).await?;
                tracing::trace!(conn, "greeting received");
                let r2 = lines.next(&mut stream).await?;
                self.decide([&l1, &l2], [&r1, &r2], conn, we_dialed, claimed).map(|d| (r1, r2, d))
            }
        };
        let (r1, r2, d) = match decided {
            Ok(x) => x,
            Err(e) => {
                // Refused: the peer still learns who refused it (a seed
                // dialled twice is known by the ID it gave).
                if !unsent.is_empty() {
                    let _ = stream.write_all(&unsent).await;
                }
                return Err(e);
            }
        };
        // An acceptor's auth line may have gone with its greeting already.
        let auth_queued = decided_early && !d.tls_on;
        let peer_id = &d.peer.id;
        if d.tls_on {
            // TLS starts after both greetings, before the auth lines.
            if !unsent.is_empty() {
                stream.write_all(&unsent).await?;
                unsent.clear();
            }
            let tls = self.tls.as_ref().ok_or_else(|| Error::Tls("no certificate".into()))?;
            let leftover = lines.take_rest();
            let inner = Prefixed { pre: leftover, pos: 0, inner: Box::new(stream) };
            stream = if greeting::we_are_tls_client(&l2, &r2) {
                let c = tokio_rustls::TlsConnector::from(tls.client_config());
                let name = crate::tls::server_name();
                // Boxed: the TLS handshake's state is large, and a plain
                // connection should not carry (and move) room for it.
                Link::Tls(Box::new(
                    Box::pin(c.connect(name, inner))
                        .await
                        .map_err(|e| Error::Tls(format!("handshake with {peer_id}: {e}")))?,
                ))
            } else {
                let a = tokio_rustls::TlsAcceptor::from(tls.server_config());
                Link::Tls(Box::new(
                    Box::pin(a.accept(inner))
                        .await
                        .map_err(|e| Error::Tls(format!("handshake with {peer_id}: {e}")))?,
                ))
            };
        }
        // Our auth line. When theirs is in already (it came with their
        // greeting), it is checked first, and ours leaves with the link's
        // first messages: one write, one wake-up of the peer.
        if !auth_queued {
            unsent.extend_from_slice(d.auth_line.as_bytes());
        }
        let ra = match lines.ready()? {
            Some(line) => line,
            None => {
                stream.write_all(&unsent).await?;
                stream.flush().await?;
                unsent.clear();
                tracing::trace!(conn, "auth line sent");
                lines.next(&mut stream).await?
            }
        };
        tracing::trace!(conn, "auth line received");
        let theirs = AuthLine::parse(&ra)?;
        let m = auth::accept_peer_method(
            &theirs.method,
            self.cfg.allow_cleartext,
            self.cfg.allow_tls_anon,
            d.tls_on,
        )?;
        let secret = self.cfg.secret.as_deref().filter(|s| !s.is_empty());
        auth::verify(m, secret, (&l1, &l2), (&r1, &r2), &theirs.token).map_err(|e| match e {
            Error::Auth(text) => Error::Auth(format!("{peer_id}: {text}")),
            other => Error::Auth(format!("{peer_id}: {other}")),
        })?;
        greeting::accept_peer_framing(&theirs.framing)?;
        if !self.cfg.framings.contains(&theirs.framing) {
            return Err(Error::Protocol(format!(
                "peer wants to send {}, which this node does not accept",
                theirs.framing
            )));
        }
        let recv_framing = Framing::from_name(&theirs.framing)
            .ok_or_else(|| Error::Protocol(format!("unsupported framing {}", theirs.framing)))?;
        Ok((
            Handshaken {
                stream,
                leftover: lines.take_rest(),
                send_framing: d.send_framing,
                recv_framing,
                peer_timeout: d.greeting.timeout(),
                aemp: d.greeting.is_aemp_ext(),
                incarnation: d.greeting.incarnation().map(str::to_owned),
                dialer: d.dialer,
                first: unsent,
            },
            d.peer,
        ))
    }

    /// Everything the two greetings decide, before a byte more is sent:
    /// whether the connection may go on (and to which node's entry, which
    /// it then claims), TLS, and our auth line.
    fn decide(
        self: &Arc<Net>,
        [l1, l2]: [&str; 2],
        [r1, r2]: [&str; 2],
        conn: u64,
        we_dialed: bool,
        claimed: &mut Option<Arc<Peer>>,
    ) -> Result<Decided> {
        let peer_g = greeting::parse(r1)?;
        greeting::check_nonce(r2)?;
        if r1 == l1 && r2 == l2 {
            return Err(Error::Protocol("the peer echoed our greeting".into()));
        }
        let peer_id = NodeId::new(&peer_g.node_id)?;
        if peer_id == self.me {
            return Err(Error::Protocol(format!("the peer claims our own node ID {}", self.me)));
        }
        let dialer = if we_dialed { self.me.clone() } else { peer_id.clone() };
        let peer = loop {
            let peer = self.peer(&peer_id);
            *claimed = Some(peer.clone());
            if self.claim(&peer, conn, &dialer, &peer_g)? {
                break peer;
            }
            // That entry was forgotten in between: claim the node's new one.
        };
        let tls_on = greeting::tls_on(self.tls.is_some(), &peer_g);
        let secret = self.cfg.secret.as_deref().filter(|s| !s.is_empty());
        let sendable = greeting::sendable_auths(secret.is_some(), self.cfg.allow_tls_anon);
        let method = greeting::choose_auth(&peer_g.auths, &sendable, tls_on).ok_or_else(|| {
            Error::Auth(format!(
                "no auth method in common with {peer_id} (it accepts {})",
                peer_g.auths.join(",")
            ))
        })?;
        let method =
            AuthMethod::from_name(&method).ok_or_else(|| Error::Auth(format!("unknown method {method}")))?;
        let framing =
            greeting::choose_framing(&peer_g.framings, &greeting::OUR_FRAMINGS).ok_or_else(|| {
                Error::Protocol(format!(
                    "no framing in common with {peer_id} (it accepts {}; aemp speaks msgpack and json)",
                    peer_g.framings.join(",")
                ))
            })?;
        let send_framing = Framing::from_name(&framing)
            .ok_or_else(|| Error::Protocol(format!("unsupported framing {framing}")))?;
        let token = auth::token(method, secret, (l1, l2), (r1, r2))?;
        let line = AuthLine { method: method.name().to_owned(), token, framing };
        Ok(Decided {
            auth_line: format!("{}\n", line.to_line()),
            greeting: peer_g,
            peer,
            tls_on,
            send_framing,
            dialer,
        })
    }

    /// Past the greeting: decides whether this connection may become the
    /// link to `peer` (one connection per node pair, SPEC A.2, Part B).
    ///
    /// Between aemp nodes, two rules keep both sides on the same connection
    /// when both dial at once, before either carries a message: a node whose
    /// own dial is under way refuses an incoming connection from a higher
    /// node ID (its dial will win there), and of two connections past their
    /// greetings the one dialled by the lower node ID wins.
    /// Returns `Ok(false)` when `peer` is no longer the node's entry.
    fn claim(&self, peer: &Arc<Peer>, conn: u64, dialer: &NodeId, g: &Greeting) -> Result<bool> {
        let aemp = g.is_aemp_ext();
        let we_dialed = *dialer == self.me;
        let mut st = peer.st.lock();
        if st.forgotten {
            return Ok(false);
        }
        if we_dialed {
            st.attempting = false;
        } else if aemp && st.attempting && self.me < peer.id && st.up.is_none() {
            return Err(Error::Protocol(format!("simultaneous connection with {}: ours wins", peer.id)));
        }
        if let Some(up) = &st.up {
            let same_life = up.incarnation.is_some() && up.incarnation.as_deref() == g.incarnation();
            if aemp && up.aemp && same_life {
                // A duplicate of a live connection between aemp nodes: the
                // one dialled by the lower node ID wins on both sides.
                if up.dialer <= *dialer {
                    return Err(Error::Protocol(format!("duplicate connection with {} refused", peer.id)));
                }
            } else if !aemp && !up.aemp {
                // 0.9 closes a new connection when one is established.
                return Err(Error::Protocol(format!("already connected to {}", peer.id)));
            }
        }
        if let Some((other, other_dialer)) = &st.claim {
            if *other != conn && aemp && other_dialer < dialer {
                return Err(Error::Protocol(format!("simultaneous connection with {} refused", peer.id)));
            }
        }
        st.claim = Some((conn, dialer.clone()));
        Ok(true)
    }

    /// Makes a connection past its handshake the link to its node: Global's
    /// opening messages and what was queued go out first.
    fn become_link(self: &Arc<Net>, hs: Handshaken, peer: Arc<Peer>, conn: u64) -> Result<LiveLink> {
        let Handshaken {
            stream,
            leftover,
            send_framing,
            recv_framing,
            peer_timeout,
            aemp,
            incarnation,
            dialer,
            first,
        } = hs;
        // Become the link.
        if peer.st.lock().up.is_some() {
            // This connection replaces a live one (the peer restarted, or a
            // 0.9 peer switched connections): Global starts over with it.
            crate::global::node_down(
                self,
                &peer.id,
                &Reason::transport_error(peer.id.as_str(), "link replaced"),
            );
        }
        let closed = tokio_util::sync::CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let replaced = {
            let mut st = peer.st.lock();
            if st.claim.as_ref().map(|c| c.0) != Some(conn) {
                return Err(Error::Protocol(format!("connection to {} superseded by another", peer.id)));
            }
            // Global's opening messages, made only once this connection is
            // sure to be the link (lock order: a peer's state, then Global's,
            // then the address book or the peers' map; never another peer's).
            let opening = crate::global::node_up_messages(self, &peer.id);
            st.claim = None;
            let old = st.up.take();
            if let Some(old) = &old {
                old.closed.cancel();
            }
            st.sock = None;
            st.writing = false;
            st.up = Some(Up {
                wake: wake.clone(),
                closed: closed.clone(),
                conn,
                framing: send_framing,
                aemp,
                incarnation: incarnation.clone(),
                dialer,
            });
            st.out.clear();
            st.out.extend_from_slice(&first);
            let mons = if let Some(old) = &old {
                // The old connection is gone: what it carried may be lost.
                let restarted = old.incarnation.is_some() && old.incarnation != incarnation;
                let reason = if restarted {
                    Reason::transport_error(peer.id.as_str(), "peer restarted")
                } else {
                    Reason(vec![Value::from("transport_error"), Value::from("switched connections")])
                };
                Some((std::mem::take(&mut st.monitors), reason))
            } else {
                None
            };
            // Global's node-up messages first, then what was queued (SPEC A.9.3).
            for m in opening {
                if let Err(e) = send_framing.encode(&m.0, &mut st.out) {
                    tracing::error!("global message not encodable: {e}");
                }
            }
            let pending = std::mem::take(&mut st.pending);
            st.pending_bytes = 0;
            st.pending_since = None;
            for m in pending {
                if let Err(e) = send_framing.encode(&m.0, &mut st.out) {
                    let dest = m.0.first().and_then(Value::as_str);
                    let (fire, reason) = unsendable(&peer.id, &mut st, dest, &e);
                    self.fire_monitors(&peer, fire, reason);
                }
            }
            mons
        };
        if let Some((mons, reason)) = replaced {
            tracing::info!(node = %peer.id, %reason, "connection replaced");
            self.fire_monitors(&peer, mons, reason);
        }
        tracing::info!(node = %peer.id, ?send_framing, ?recv_framing, "connection up");
        crate::global::node_up(self, &peer.id);
        self.up_event.notify_waiters();
        let (rd, wr): (Box<dyn AsyncRead + Unpin + Send>, WriteSide) = match stream {
            Link::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                let w = Arc::new(w);
                peer.st.lock().sock = Some(w.clone());
                (Box::new(r), WriteSide::Plain(w))
            }
            Link::Tls(b) => {
                let (r, w) = tokio::io::split(b);
                (Box::new(r), WriteSide::Tls(w))
            }
        };
        Ok(LiveLink {
            peer,
            conn,
            rd,
            wr,
            leftover,
            send_framing,
            recv_framing,
            peer_timeout,
            wake,
            closed,
            slot: None,
        })
    }

    /// Carries a link's messages both ways until it closes or fails.
    async fn run_link(self: Arc<Net>, link: LiveLink) {
        let _slot = link.slot;
        let (peer, conn) = (link.peer, link.conn);
        let wtimeout = secs((self.cfg.advertised_timeout() as f64 - self.cfg.network_latency).max(1.0));
        let writer = {
            let net = self.clone();
            let peer = peer.clone();
            let (wake, wr, framing) = (link.wake, link.wr, link.send_framing);
            async move { net.writer(peer, conn, wake, wr, wtimeout, framing).await }
        };
        let reader = self.clone().reader(
            peer.clone(),
            conn,
            link.rd,
            link.leftover,
            link.recv_framing,
            link.peer_timeout,
        );
        let text = tokio::select! {
            r = reader => r,
            r = writer => r,
            _ = link.closed.cancelled() => "connection closed".to_owned(),
        };
        self.fail(&peer, conn, &text);
    }

    async fn writer(
        self: Arc<Net>,
        peer: Arc<Peer>,
        conn: u64,
        wake: Arc<Notify>,
        mut wr: WriteSide,
        keepalive: Duration,
        framing: Framing,
    ) -> String {
        let mut buf = Vec::new();
        // One keepalive timer for the link, moved on only when it fires
        // (as the reader's): a keepalive goes after `keepalive` without a
        // write by this task.
        let mut quiet = Box::pin(tokio::time::sleep(keepalive));
        let mut last_write = Instant::now();
        loop {
            let (live, idle) = {
                let mut st = peer.st.lock();
                let live = st.up.as_ref().map(|u| u.conn) == Some(conn);
                if live && !st.out.is_empty() {
                    std::mem::swap(&mut st.out, &mut buf);
                    st.writing = true;
                }
                (live, buf.is_empty())
            };
            if !live {
                wr.shutdown().await;
                return "connection closed".into();
            }
            if idle {
                tokio::select! {
                    biased;
                    () = wake.notified() => {}
                    () = quiet.as_mut() => {
                        let due = last_write + keepalive;
                        if Instant::now() >= due {
                            let _ = framing.encode(&[], &mut peer.st.lock().out);
                            quiet.as_mut().reset(Instant::now() + keepalive);
                        } else {
                            quiet.as_mut().reset(due);
                        }
                    }
                }
                continue;
            }
            let r = wr.write_all(&buf).await;
            last_write = Instant::now();
            peer.st.lock().writing = false;
            if let Err(e) = r {
                return format!("write error: {e}");
            }
            buf.clear();
            if buf.capacity() > 1 << 20 {
                buf = Vec::new();
            }
        }
    }

    async fn reader(
        self: Arc<Net>,
        peer: Arc<Peer>,
        conn: u64,
        mut rd: impl AsyncRead + Unpin,
        leftover: Vec<u8>,
        framing: Framing,
        peer_timeout: Option<f64>,
    ) -> String {
        let Some(shared) = self.shared() else { return "node gone".into() };
        let mut dec = framing.reader(self.cfg.limits());
        let mut buf = leftover;
        let mut start = 0usize;
        let mut cmds: Vec<Cmd> = Vec::new();
        // One timer for the whole connection, moved on only when it fires:
        // a timer set up and torn down for every read would cost each
        // message a trip through the runtime's timer wheel.
        let mut silence = peer_timeout.map(secs).map(|t| (t, Box::pin(tokio::time::sleep(t))));
        let mut last_read = Instant::now();
        // Bytes handed to the node since the node last caught up with us.
        let mut ahead = 0usize;
        loop {
            // Decode what we have.
            loop {
                match dec.decode(&buf[start..]) {
                    Ok(Some((msg, used))) => {
                        start += used;
                        ahead += used;
                        if let Some(c) = route(&shared, &peer.id, msg) {
                            cmds.push(c);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        shared.push_batch(&mut cmds);
                        tracing::warn!(node = %peer.id, "closing connection: {e}");
                        return format!("protocol error: {e}");
                    }
                }
            }
            shared.push_and_run(&mut cmds);
            if ahead > RECV_AHEAD {
                // The node is behind: wait until it has handled what this
                // connection gave it before reading more, so that a peer
                // sending faster than the node's callbacks run is held back
                // by TCP instead of filling this node's memory.
                let (tx, rx) = tokio::sync::oneshot::channel();
                shared.call(move |_| {
                    let _ = tx.send(());
                });
                if rx.await.is_err() {
                    return "node gone".into();
                }
                ahead = 0;
            }
            if start > 0 {
                buf.drain(..start);
                start = 0;
            }
            if buf.capacity() - buf.len() < 16 * 1024 {
                buf.reserve(64 * 1024);
            }
            let read = rd.read_buf(&mut buf);
            let n = match &mut silence {
                Some((t, timer)) => {
                    tokio::pin!(read);
                    loop {
                        tokio::select! {
                            biased;
                            r = &mut read => break r,
                            () = timer.as_mut() => {
                                let due = last_read + *t;
                                if Instant::now() >= due {
                                    return "read timeout".into();
                                }
                                timer.as_mut().reset(due);
                            }
                        }
                    }
                }
                None => read.await,
            };
            last_read = Instant::now();
            match n {
                Ok(0) => return "connection closed by peer".into(),
                Ok(_) => {}
                Err(e) => return format!("read error: {e}"),
            }
            if peer.st.lock().up.as_ref().map(|u| u.conn) != Some(conn) {
                return "connection replaced".into();
            }
        }
    }
}

/// How many bytes of messages a connection hands to its node before it
/// waits for the node to catch up (receive-side backpressure).
const RECV_AHEAD: usize = 4 << 20;

/// A message that the link's framing cannot carry (bytes over json, say)
/// is lost: it is logged, and the monitors of its destination port are
/// taken, to fire with `("transport_error", node, "message not sent: ...")`
/// so that the loss is not silent (P25).
type Lost = (HashMap<Box<str>, Vec<(u64, Action)>>, Reason);

fn unsendable(node: &NodeId, st: &mut PeerState, dest: Option<&str>, e: &Error) -> Lost {
    tracing::error!(%node, port = ?dest, "message not sent: {e}");
    let mut fire = HashMap::new();
    if let Some(d) = dest.filter(|d| !d.is_empty()) {
        if let Some(list) = st.monitors.remove(d) {
            fire.insert(Box::from(d), list);
        }
    }
    (fire, Reason::transport_error(node.as_str(), format!("message not sent: {e}")))
}

/// Routes one decoded message as a connection's reader does (the node
/// port's requests included), as if it had come from node `from`.
pub(crate) fn route_incoming(shared: &Arc<Shared>, from: &NodeId, msg: Vec<Value>) {
    if let Some(c) = route(shared, from, msg) {
        shared.push(c);
    }
}

/// Connects to `host:port` within `limit` (`None` when it timed out); a
/// literal IP address skips the resolver (which runs on a blocking thread).
///
/// A connect on loopback or a fast LAN is done by the next turn of the
/// reactor, so it gets that turn before the timer is armed: arming a timer
/// on an idle runtime wakes its parked I/O driver, which costs a set-up
/// more than the connect itself.
async fn connect_addr(addr: &str, limit: Duration) -> Option<std::io::Result<TcpStream>> {
    let connect = async {
        match addr.parse::<SocketAddr>() {
            Ok(a) => TcpStream::connect(a).await,
            Err(_) => TcpStream::connect(addr).await,
        }
    };
    let mut connect = std::pin::pin!(connect);
    if let Some(r) = poll_once(connect.as_mut()).await {
        return Some(r);
    }
    tokio::task::yield_now().await;
    if let Some(r) = poll_once(connect.as_mut()).await {
        return Some(r);
    }
    tokio::time::timeout(limit, connect).await.ok()
}

/// Polls `f` once: its output if it is ready.
async fn poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
    let mut f = f;
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// A new connection past `Net::greet_now`.
struct Greeted {
    /// Our greeting lines.
    l1: String,
    l2: String,
    /// What the socket did not take of ours at once.
    unsent: Vec<u8>,
    /// What the peer sent so far.
    lines: Lines,
    conn: u64,
    /// The node entry the connection claimed, if it got that far.
    claimed: Option<Arc<Peer>>,
    /// An acceptor that had the dialler's greeting: its lines and what
    /// they decided.
    decided: Option<Result<(String, String, Decided)>>,
}

/// What a connection's two greetings decided (see `Net::decide`).
struct Decided {
    greeting: Greeting,
    peer: Arc<Peer>,
    tls_on: bool,
    send_framing: Framing,
    dialer: NodeId,
    /// Our auth line, line end included.
    auth_line: String,
}

/// A message from a peer: `[portname, payload...]`.
fn route(shared: &Arc<Shared>, from: &NodeId, msg: Vec<Value>) -> Option<Cmd> {
    let mut values = msg.into_iter();
    let name = match values.next() {
        None => return None, // keepalive
        Some(Value::Str(s)) => s,
        Some(other) => {
            tracing::warn!(node = %from, "message whose destination is a {} dropped", other.kind());
            return None;
        }
    };
    // The payload without its destination (inline when it is short).
    let msg: Msg = values.collect();
    if name.is_empty() {
        let from = from.clone();
        return Some(Cmd::Call(Box::new(move |core: &mut Core| {
            crate::kernel::handle(core, Some(&from), msg)
        })));
    }
    Some(Cmd::Deliver(shared.key_of(&name), msg))
}

fn estimate(m: &Msg) -> usize {
    fn size(v: &Value) -> usize {
        match v {
            Value::Str(s) => s.len() + 3,
            Value::Bytes(b) => b.len() + 5,
            Value::Array(a) => 2 + a.iter().map(size).sum::<usize>(),
            Value::Map(m) => 2 + m.iter().map(|(k, v)| k.len() + 3 + size(v)).sum::<usize>(),
            _ => 9,
        }
    }
    2 + m.0.iter().map(size).sum::<usize>()
}

/// One of the [`NetConfig::max_handshakes_per_ip`] handshakes one address
/// may have in progress; given back when the handshake ends.
struct HandshakeSlot(Arc<Net>, std::net::IpAddr);

impl HandshakeSlot {
    fn try_take(net: &Arc<Net>, ip: std::net::IpAddr) -> Option<HandshakeSlot> {
        let mut m = net.handshaking.lock();
        let n = m.entry(ip).or_insert(0);
        if *n >= net.cfg.max_handshakes_per_ip {
            return None;
        }
        *n += 1;
        Some(HandshakeSlot(net.clone(), ip))
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut m = self.0.handshaking.lock();
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// One of the [`NetConfig::max_connections`] connections a node may have
/// open; given back when dropped.
struct ConnSlot(Arc<Net>);

/// A node entry a handshake has claimed; the claim is let go (for another
/// connection or a later dial) unless the connection became the link, also
/// when the handshake is dropped half-way.
struct Claimed {
    net: Arc<Net>,
    conn: u64,
    peer: Option<Arc<Peer>>,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        let Some(p) = self.peer.take() else { return };
        let mut st = p.st.lock();
        if st.claim.as_ref().map(|c| c.0) == Some(self.conn) {
            st.claim = None;
        }
        drop(st);
        // A node ID heard only in a greeting that never authenticated is
        // not a known node.
        self.net.forget_if_unreachable(&p);
    }
}

/// A dial made by `Net::dial_here`: when it ends (also when the caller
/// gave up on it half-way), the node may be dialled again, and is at once
/// when something waits for it.
struct DialingHere {
    net: Arc<Net>,
    peer: Arc<Peer>,
}

impl Drop for DialingHere {
    fn drop(&mut self) {
        let mut st = self.peer.st.lock();
        st.attempting = false;
        st.dialing = st.up.is_none() && (!st.pending.is_empty() || !st.monitors.is_empty());
        let redial = st.dialing;
        drop(st);
        if redial {
            self.net.start_dial(self.peer.clone());
        }
    }
}

/// A connection that has become the link to its node (see `Net::run_link`).
struct LiveLink {
    peer: Arc<Peer>,
    conn: u64,
    rd: Box<dyn AsyncRead + Unpin + Send>,
    wr: WriteSide,
    leftover: Vec<u8>,
    send_framing: Framing,
    recv_framing: Framing,
    peer_timeout: Option<f64>,
    wake: Arc<Notify>,
    closed: tokio_util::sync::CancellationToken,
    /// Counts the connection while it lives (see `ConnSlot`).
    slot: Option<ConnSlot>,
}

impl ConnSlot {
    /// A slot for a connection we dial (counted, never refused).
    fn take(net: &Arc<Net>) -> ConnSlot {
        net.open_conns.fetch_add(1, Ordering::AcqRel);
        ConnSlot(net.clone())
    }

    /// A slot for an accepted connection, unless all are taken.
    fn try_take(net: &Arc<Net>) -> Option<ConnSlot> {
        let max = net.cfg.max_connections;
        net.open_conns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| ConnSlot(net.clone()))
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open_conns.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Handshaken {
    stream: Link,
    leftover: Vec<u8>,
    send_framing: Framing,
    recv_framing: Framing,
    peer_timeout: Option<f64>,
    aemp: bool,
    incarnation: Option<String>,
    dialer: NodeId,
    /// Handshake bytes still to go out ahead of any message (our auth line,
    /// when it waited for the peer's to be checked).
    first: Vec<u8>,
}

/// A byte stream: plain TCP or TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
type BoxStream = Box<dyn Stream>;

/// Reads handshake lines, keeping what follows them.
struct Lines {
    buf: Vec<u8>,
    reader: LineReader,
}

impl Lines {
    fn new(max: usize) -> Lines {
        Lines { buf: Vec::with_capacity(512), reader: LineReader::with_max_line(max) }
    }

    async fn next<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> Result<String> {
        loop {
            if let Some(line) = self.ready()? {
                return Ok(line);
            }
            // Straight into the buffer: no chunk on the stack (it would
            // live in the connection's future, moved and zeroed).
            self.buf.reserve(1024);
            let n = s.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(Error::Protocol("connection closed during the handshake".into()));
            }
        }
    }

    /// The next two lines when both have arrived already.
    fn ready_pair(&mut self) -> Result<Option<(String, String)>> {
        if self.buf.iter().filter(|&&b| b == b'\n').count() < 2 {
            return Ok(None);
        }
        let first = self.ready()?;
        Ok(first.zip(self.ready()?))
    }

    /// The next line when it has arrived already.
    fn ready(&mut self) -> Result<Option<String>> {
        Ok(self.reader.next_line(&self.buf)?.map(|(line, used)| {
            self.buf.drain(..used);
            line
        }))
    }

    fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// The writing end of a connection.
enum WriteSide {
    Plain(Arc<tokio::net::tcp::OwnedWriteHalf>),
    Tls(tokio::io::WriteHalf<BoxStream>),
}

impl WriteSide {
    async fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        match self {
            WriteSide::Plain(w) => {
                while !buf.is_empty() {
                    w.writable().await?;
                    match w.try_write(buf) {
                        Ok(n) => buf = &buf[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            WriteSide::Tls(w) => {
                w.write_all(buf).await?;
                w.flush().await
            }
        }
    }

    async fn shutdown(&mut self) {
        if let WriteSide::Tls(w) = self {
            let _ = w.shutdown().await;
        }
    }
}

/// A connection's byte stream: plain TCP (split without locks, written to
/// directly) or anything else (TLS).
enum Link {
    Plain(TcpStream),
    Tls(BoxStream),
}

impl AsyncRead for Link {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Link::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Link {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Link::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_flush(cx),
            Link::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Link::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A stream that first yields bytes already read (for TLS after the greeting).
struct Prefixed {
    pre: Vec<u8>,
    pos: usize,
    inner: BoxStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.pre.len() {
            let n = buf.remaining().min(self.pre.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.pre[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ---- entry points used by the core -------------------------------------------------

/// `snd` to a port of another node.
pub(crate) fn send(shared: &Arc<Shared>, port: &PortId, msg: Msg) {
    let Some(net) = shared.net() else {
        tracing::warn!(%port, "message to another node dropped: this node has no network configured");
        return;
    };
    if port.node_str() == net.me.as_str() {
        return;
    }
    if let Some(peer) = net.peer_str(port.node_str()) {
        net.enqueue_to(&peer, port.name(), msg);
    }
}

/// `snd` to a port of another node from inside the dispatcher: the write
/// happens when the current step ends ([`Net::flush`]).
pub(crate) fn send_deferred(shared: &Arc<Shared>, port: &PortId, msg: Msg, dirty: &mut Vec<Arc<Peer>>) {
    let Some(net) = shared.net() else {
        tracing::warn!(%port, "message to another node dropped: this node has no network configured");
        return;
    };
    if port.node_str() == net.me.as_str() {
        return;
    }
    let Some(peer) = net.peer_str(port.node_str()) else { return };
    let st = peer.st.lock();
    if st.up.is_some() {
        net.write_locked_to(
            &peer,
            st,
            Some(port.name()),
            |framing, out| framing.encode_dest(port.name(), &msg.0, out),
            Some(dirty),
        );
        return;
    }
    drop(st);
    net.enqueue_to(&peer, port.name(), msg);
}

/// `kil` of a remote port (`kil1`, aemp peers only).
pub(crate) fn kil(shared: &Arc<Shared>, port: &PortId, reason: Reason) {
    let Some(net) = shared.net() else { return };
    let node = port.node();
    if let Some(p) = net.existing_peer(&node) {
        if p.st.lock().up.as_ref().is_some_and(|u| !u.aemp) {
            tracing::warn!(%port, "cannot kill a port of an AnyEvent::MP 0.9 node");
            return;
        }
    }
    let mut m = vec![Value::from(""), Value::from("kil1"), Value::from(port.name())];
    m.extend(reason.0);
    net.send_raw(&node, Msg::from(m));
}

/// Registers a monitor on a remote port; `Some` means fire it now.
pub(crate) fn mon(
    shared: &Arc<Shared>,
    port: &PortId,
    id: u64,
    action: Action,
) -> Option<(String, Action, Reason)> {
    let Some(net) = shared.net() else {
        return Some((
            port.name().to_owned(),
            action,
            Reason::transport_error(port.node_str(), "this node has no network configured"),
        ));
    };
    let node = port.node();
    let first = loop {
        let peer = net.peer(&node);
        let mut st = peer.st.lock();
        if st.forgotten {
            continue;
        }
        let list = st.monitors.entry(port.name().into()).or_default();
        list.push((id, action));
        break list.len() == 1;
    };
    if first && !port.is_node_port() {
        net.send_raw(
            &node,
            Msg::from_array([Value::from(""), Value::from("mon1"), Value::from(port.name())]),
        );
    } else if port.is_node_port() && !net.is_up(&node) {
        // Monitoring a whole node: make sure we try to reach it.
        net.send_raw(&node, Msg::from_array([]));
    }
    None
}

/// Removes a monitor on a remote port (`mon0` when it was the last).
pub(crate) fn unmon(shared: &Arc<Shared>, port: &PortId, id: u64) {
    let Some(net) = shared.net() else { return };
    let node = port.node();
    let Some(peer) = net.existing_peer(&node) else { return };
    let last = {
        let mut st = peer.st.lock();
        let Some(list) = st.monitors.get_mut(port.name()) else { return };
        let before = list.len();
        list.retain(|(i, _)| *i != id);
        let removed = list.len() != before;
        let empty = list.is_empty();
        if empty {
            st.monitors.remove(port.name());
        }
        removed && empty
    };
    if last && !port.is_node_port() && net.is_up(&node) {
        net.send_raw(
            &node,
            Msg::from_array([Value::from(""), Value::from("mon0"), Value::from(port.name())]),
        );
    }
}

/// `spawn` on another node: the name is ours, the port is theirs.
pub(crate) fn spawn(shared: &Arc<Shared>, node: &NodeId, name: &str, init: &str, args: Msg) -> PortId {
    let port = node.port(name).unwrap_or_else(|_| node.node_port());
    let Some(net) = shared.net() else {
        tracing::warn!(%node, init, "spawn on another node dropped: this node has no network configured");
        return port;
    };
    let mut m =
        vec![Value::from(""), Value::from(crate::kernel::SPAWN), Value::from(name), Value::from(init)];
    m.extend(args.0);
    net.send_raw(node, Msg::from(m));
    port
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::NetConfig;

    const SECRET: &str = "held-greeting";

    async fn node(id: &str) -> (Node, Arc<Net>) {
        let c = NetConfig { secret: Some(SECRET.into()), ..NetConfig::default() };
        let node = Node::builder().id(id).net_config(c).build().await.unwrap();
        let net = node.shared().net().unwrap().clone();
        (node, net)
    }

    /// A socket pair on loopback: (the dialler's end, the acceptor's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (client, server)
    }

    /// Sends a dialler's greeting and waits until the acceptor's socket
    /// holds all of it.
    async fn greet_first(client: &mut TcpStream, server: &TcpStream, id: &str) -> (String, String) {
        let l1 = format!("aemp;0;{id};hmac_blake3_256;msgpack;timeout=30");
        let l2 = greeting::new_nonce();
        let bytes = format!("{l1}\n{l2}\n");
        client.write_all(bytes.as_bytes()).await.unwrap();
        let mut peek = vec![0u8; bytes.len()];
        while server.peek(&mut peek).await.unwrap() < bytes.len() {
            tokio::task::yield_now().await;
        }
        (l1, l2)
    }

    /// The next line, `None` at the end; a line that never comes fails
    /// the test instead of hanging it.
    async fn read_line(r: &mut BufReader<TcpStream>) -> Option<String> {
        let mut s = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut s)).await;
        (n.expect("a line within 10 s").unwrap() > 0).then(|| s.trim_end().to_owned())
    }

    #[tokio::test]
    async fn an_acceptor_greeted_first_sends_its_greeting_with_its_auth_line() {
        let (_node, net) = node("held-acceptor").await;
        let (mut client, server) = pair().await;
        let (l1, l2) = greet_first(&mut client, &server, "held-dialler").await;
        let greeted = net.greet_now(&server, None, false);
        assert!(greeted.decided.is_some(), "the dialler's greeting was in");
        // Greeting and auth line are out before the connection's task runs.
        let mut r = BufReader::new(client);
        let r1 = read_line(&mut r).await.unwrap();
        let r2 = read_line(&mut r).await.unwrap();
        assert!(r1.starts_with("aemp;0;held-acceptor;"), "{r1}");
        let a = AuthLine::parse(&read_line(&mut r).await.unwrap()).unwrap();
        let m = AuthMethod::from_name(&a.method).unwrap();
        auth::verify(m, Some(SECRET), (&l1, &l2), (&r1, &r2), &a.token).unwrap();
        let hs = tokio::spawn({
            let net = net.clone();
            async move { net.establish(server, false, greeted, None, None).await.map(|_| ()) }
        });
        // Ours, and the acceptor takes the link.
        let tok = auth::token(AuthMethod::HmacBlake3, Some(SECRET), (&l1, &l2), (&r1, &r2)).unwrap();
        r.get_mut().write_all(format!("hmac_blake3_256;{tok};msgpack\n").as_bytes()).await.unwrap();
        hs.await.unwrap().unwrap();
        assert!(net.is_up(&NodeId::new("held-dialler").unwrap()));
    }

    #[tokio::test]
    async fn a_dialler_with_the_acceptors_auth_line_in_hand_checks_it_before_sending_its_own() {
        let (_node, net) = node("fast-dialler").await;
        let (client, server) = pair().await;
        let greeted = net.greet_now(&client, None, true);
        // The acceptor reads that greeting and answers with greeting and
        // auth line at once.
        let mut r = BufReader::new(server);
        let (l1, l2) = (read_line(&mut r).await.unwrap(), read_line(&mut r).await.unwrap());
        let a1 = "aemp;0;fast-acceptor;hmac_blake3_256;msgpack;timeout=30".to_owned();
        let a2 = greeting::new_nonce();
        let tok = auth::token(AuthMethod::HmacBlake3, Some(SECRET), (&a1, &a2), (&l1, &l2)).unwrap();
        r.get_mut()
            .write_all(format!("{a1}\n{a2}\nhmac_blake3_256;{tok};msgpack\n").as_bytes())
            .await
            .unwrap();
        let link = net.establish(client, true, greeted, None, None).await.unwrap();
        // The link is up, and the dialler's auth line is the first thing
        // it will write.
        assert!(net.is_up(&link.peer.id));
        assert!(link.peer.st.lock().out.starts_with(b"hmac_blake3_256;"));
        tokio::spawn(net.clone().run_link(link));
        let a = AuthLine::parse(&read_line(&mut r).await.unwrap()).unwrap();
        let m = AuthMethod::from_name(&a.method).unwrap();
        auth::verify(m, Some(SECRET), (&a1, &a2), (&l1, &l2), &a.token).unwrap();
    }

    #[tokio::test]
    async fn an_acceptor_greets_a_silent_dialler_at_once() {
        let (_node, net) = node("quick-acceptor").await;
        let (client, server) = pair().await;
        let greeted = net.greet_now(&server, None, false);
        assert!(greeted.decided.is_none() && greeted.unsent.is_empty());
        let mut r = BufReader::new(client);
        assert!(read_line(&mut r).await.unwrap().starts_with("aemp;0;quick-acceptor;"));
        greeting::check_nonce(&read_line(&mut r).await.unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_refused_dialler_still_learns_who_refused_it() {
        let (_node, net) = node("refuser").await;
        let (mut client, server) = pair().await;
        // A greeting that claims the acceptor's own ID is refused.
        greet_first(&mut client, &server, "refuser").await;
        let greeted = net.greet_now(&server, None, false);
        assert!(greeted.decided.is_some());
        let e = net.establish(server, false, greeted, None, None).await.err().unwrap();
        assert!(e.to_string().contains("our own node ID"), "{e}");
        let mut r = BufReader::new(client);
        assert!(read_line(&mut r).await.unwrap().starts_with("aemp;0;refuser;"));
        greeting::check_nonce(&read_line(&mut r).await.unwrap()).unwrap();
        assert_eq!(read_line(&mut r).await, None, "closed with no auth line");
    }
}

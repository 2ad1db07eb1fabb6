//! The checker: pure code over a merged history (no I/O). It finds silent
//! holes and late arrivals (P25), reorderings (P17), measures fault
//! detection and convergence after heals (liveness), and checks
//! supervision (exactly one child once the network is quiet).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::history::{Event, Record};

/// What kind of violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A message of a stream was lost while a later one arrived (P25).
    Hole,
    /// Messages of a stream were lost with no monitor firing (P25).
    SilentLoss,
    /// A message of a stream arrived after its monitor had fired (P25).
    LateArrival,
    /// Arrivals of a stream were out of the order sent (P17).
    Reorder,
    /// A message of a stream arrived twice.
    Duplicate,
    /// After everything healed, the network did not converge in time:
    /// links, Global's group views, messages flowing, one supervised child.
    NotConverged,
    /// A supervised child cut off from its supervisor was not restarted
    /// elsewhere, or the orphan did not die, while the fault lasted.
    NoFailover,
}

impl Kind {
    /// The name used on the command line (`--expect hole,late`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hole => "hole",
            Kind::SilentLoss => "silent-loss",
            Kind::LateArrival => "late",
            Kind::Reorder => "reorder",
            Kind::Duplicate => "duplicate",
            Kind::NotConverged => "not-converged",
            Kind::NoFailover => "no-failover",
        }
    }

    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Hole,
        Kind::SilentLoss,
        Kind::LateArrival,
        Kind::Reorder,
        Kind::Duplicate,
        Kind::NotConverged,
        Kind::NoFailover,
    ];

    /// The kind of a name given by [`Kind::name`].
    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One violation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Its kind.
    pub kind: Kind,
    /// When (CLOCK_MONOTONIC ns) it shows.
    pub t: u64,
    /// What exactly.
    pub text: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.text)
    }
}

/// Settings of the checker.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long after its monitor fired a message sent before may still
    /// arrive (it was on the wire), in ns.
    pub late_grace_ns: u64,
    /// A fault shorter than this need not cause a fail-over, in ns.
    pub failover_min_hold_ns: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options { late_grace_ns: 500_000_000, failover_min_hold_ns: 5_500_000_000 }
    }
}

/// How long one fault took to be noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The fault's kind.
    pub kind: String,
    /// The fault's number.
    pub id: u32,
    /// Until the first node saw a link of the fault go down, ns.
    pub first_ns: Option<u64>,
    /// Until every node that should see it did, ns.
    pub all_ns: Option<u64>,
}

/// What the checker found and measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every violation.
    pub violations: Vec<Violation>,
    /// Arrivals checked.
    pub messages: u64,
    /// Streams checked.
    pub streams: u64,
    /// Streams whose monitor fired.
    pub monitors_fired: u64,
    /// Per fault, the detection times.
    pub detections: Vec<Detection>,
    /// Per quiet point, the time to converge (ns), `None` when it did not.
    pub convergences: Vec<Option<u64>>,
    /// Fail-overs of the supervised child: fault start to the new child's start, ns.
    pub failovers: Vec<u64>,
    /// Links that went down during faults that should not cause one (blips).
    pub blip_downs: u64,
    /// Per `degrade` fault, what the traffic between its hosts went through.
    pub degradations: Vec<Degradation>,
    /// What the relays did, summed over every degraded direction.
    pub relayed: Relayed,
}

/// What one degradation (delay, loss, reordering by the relay) did to the
/// traffic between its two hosts, while it lasted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Degradation {
    /// The fault's number.
    pub id: u32,
    /// When it started (CLOCK_MONOTONIC ns).
    pub t: u64,
    /// Messages between the two hosts that arrived.
    pub delivered: u64,
    /// Their times from sent to received, ns.
    pub latencies_ns: Vec<u64>,
    /// Links between the two hosts seen going down (by either side)
    /// while no other fault touched either host: the degradation's doing.
    pub link_downs: u64,
    /// Monitors of streams between the two hosts that fired, likewise.
    pub monitors_fired: u64,
    /// Links between them that went down while another fault touched one
    /// of the two hosts (that fault's doing, or both).
    pub link_downs_other: u64,
    /// Why the links of `link_downs` went down (`observer->peer: reason`).
    pub reasons: Vec<String>,
}

/// Packet counts of the relays (their `relayed` records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relayed {
    /// Packets through a relay.
    pub packets: u64,
    /// Dropped by one.
    pub dropped: u64,
    /// Held back for later packets to overtake.
    pub reordered: u64,
    /// The most held at once by one relay.
    pub max_held: u64,
}

impl Report {
    /// The violations whose kind is not in `expected`.
    pub fn unexpected(&self, expected: &BTreeSet<Kind>) -> Vec<&Violation> {
        self.violations.iter().filter(|v| !expected.contains(&v.kind)).collect()
    }

    /// How many violations of a kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.violations.iter().filter(|v| v.kind == kind).count()
    }
}

#[derive(Default)]
struct Stream {
    sender: String,
    /// The sender's incarnation (process ID).
    sender_pid: u32,
    receiver: String,
    start: u64,
    sent: BTreeMap<u64, u64>,
    recv: Vec<(u64, u64)>,
    fired: Option<u64>,
}

/// The node part of a port ID.
pub fn node_of(port: &str) -> &str {
    port.split_once('#').map_or(port, |(n, _)| n)
}

/// Checks a merged history (ordered by time).
pub fn check(history: &[Record], opts: &Options) -> Report {
    let mut report = Report::default();
    check_streams(history, opts, &mut report);
    replay(history, opts, &mut report);
    degradations(history, &mut report);
    report.violations.sort_by_key(|v| v.t);
    report
}

fn check_streams(history: &[Record], opts: &Options, report: &mut Report) {
    // Incarnation of each node at a time: pid from its last Start.
    let mut pid_of: HashMap<&str, u32> = HashMap::new();
    // Incarnations that stopped sending in an orderly way.
    let mut stopped: BTreeSet<(String, u32)> = BTreeSet::new();
    let mut streams: BTreeMap<&str, Stream> = BTreeMap::new();
    for r in history {
        match &r.ev {
            Event::Start { pid } => {
                pid_of.insert(&r.by, *pid);
            }
            Event::StopSending => {
                if let Some(pid) = pid_of.get(r.by.as_str()) {
                    stopped.insert((r.by.clone(), *pid));
                }
            }
            Event::StreamStart { stream, sender: _, receiver } => {
                streams.insert(
                    stream,
                    Stream {
                        sender: r.by.clone(),
                        sender_pid: pid_of.get(r.by.as_str()).copied().unwrap_or(0),
                        receiver: receiver.clone(),
                        start: r.t,
                        ..Stream::default()
                    },
                );
            }
            Event::Sent { stream, seq } => {
                if let Some(s) = streams.get_mut(stream.as_str()) {
                    s.sent.insert(*seq, r.t);
                }
            }
            Event::Recv { stream, seq } => {
                report.messages += 1;
                if let Some(s) = streams.get_mut(stream.as_str()) {
                    s.recv.push((*seq, r.t));
                }
            }
            Event::MonFired { stream, .. } => {
                if let Some(s) = streams.get_mut(stream.as_str()) {
                    s.fired.get_or_insert(r.t);
                }
            }
            _ => {}
        }
    }
    for (id, s) in &mut streams {
        report.streams += 1;
        if let Some(tf) = s.fired {
            report.monitors_fired += 1;
            // A message sent once the monitor had fired (the sender raced
            // the firing) may take the next link: its sender was told.
            let after: BTreeSet<u64> = s.sent.iter().filter(|(_, t)| **t > tf).map(|(q, _)| *q).collect();
            s.sent.retain(|q, _| !after.contains(q));
            s.recv.retain(|(q, _)| !after.contains(q));
        }
        let s = &*s;
        let mut got = BTreeSet::new();
        let mut last = 0;
        let mut late = Vec::new();
        for &(seq, t) in &s.recv {
            if !got.insert(seq) {
                report.violations.push(Violation {
                    kind: Kind::Duplicate,
                    t,
                    text: format!("stream {id} ({} -> {}): seq {seq} arrived twice", s.sender, s.receiver),
                });
            } else if seq < last {
                report.violations.push(Violation {
                    kind: Kind::Reorder,
                    t,
                    text: format!(
                        "stream {id} ({} -> {}): seq {seq} arrived after seq {last}",
                        s.sender, s.receiver
                    ),
                });
            }
            last = last.max(seq);
            if let Some(tf) = s.fired {
                if t > tf + opts.late_grace_ns {
                    late.push((seq, t, s.sent.get(&seq).copied().unwrap_or(0)));
                }
            }
        }
        if let (Some(&(first, t, sent)), Some(tf)) = (late.first(), s.fired) {
            let last = late[late.len() - 1].0;
            report.violations.push(Violation {
                kind: Kind::LateArrival,
                t,
                text: format!(
                    "stream {id} ({} -> {}): {} message(s) (seq {first}..{last}, the first sent {:.3}s before the monitor fired) arrived from {:.3}s after it fired",
                    s.sender,
                    s.receiver,
                    late.len(),
                    secs(tf.saturating_sub(sent)),
                    secs(t - tf)
                ),
            });
        }
        let max_got = got.iter().next_back().copied().unwrap_or(0);
        let missing: Vec<u64> = s.sent.keys().copied().filter(|q| *q < max_got && !got.contains(q)).collect();
        if let Some(first) = missing.first() {
            let t = s.recv.iter().find(|(q, _)| *q > *first).map_or(s.start, |x| x.1);
            report.violations.push(Violation {
                kind: Kind::Hole,
                t,
                text: format!(
                    "stream {id} ({} -> {}): {} message(s) lost (seq {}..{}) while seq {max_got} arrived{}",
                    s.sender,
                    s.receiver,
                    missing.len(),
                    first,
                    missing.last().unwrap_or(first),
                    match s.fired {
                        Some(_) => ", the monitor fired",
                        None => ", the monitor never fired",
                    }
                ),
            });
        }
        let tail: Vec<u64> = s.sent.keys().copied().filter(|q| *q > max_got).collect();
        let orderly = stopped.contains(&(s.sender.clone(), s.sender_pid));
        if !tail.is_empty() && s.fired.is_none() && orderly {
            report.violations.push(Violation {
                kind: Kind::SilentLoss,
                t: s.sent.get(&tail[0]).copied().unwrap_or(s.start),
                text: format!(
                    "stream {id} ({} -> {}): seq {}..{} never arrived and the monitor never fired",
                    s.sender,
                    s.receiver,
                    tail[0],
                    tail[tail.len() - 1]
                ),
            });
        }
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The state of the network as the history tells it, replayed event by
/// event; also usable online by the lab to see when the network is quiet.
#[derive(Debug, Default, Clone)]
pub struct Replay {
    /// Live incarnations: node -> receiver port, once registered.
    live: BTreeMap<String, Option<String>>,
    links: BTreeSet<(String, String)>,
    views: BTreeMap<String, BTreeMap<String, i64>>,
    children: BTreeMap<String, String>,
    supervised: bool,
    stream_sender: HashMap<String, String>,
    sent_at: HashMap<(String, u64), u64>,
    /// Pairs (from, to) with a message sent after `since` that arrived.
    flows: BTreeSet<(String, String)>,
    since: u64,
}

impl Replay {
    /// Applies one record.
    pub fn apply(&mut self, r: &Record) {
        let by = &r.by;
        match &r.ev {
            Event::Start { .. } => {
                self.forget(by);
                self.live.insert(by.clone(), None);
            }
            Event::Exit => self.forget(by),
            Event::Killed { node, .. } => self.forget(node),
            Event::Registered { port } => {
                if let Some(p) = self.live.get_mut(by) {
                    *p = Some(port.clone());
                }
            }
            Event::LinkUp { peer } => {
                self.links.insert((by.clone(), peer.clone()));
            }
            Event::LinkDown { peer, .. } => {
                self.links.remove(&(by.clone(), peer.clone()));
            }
            Event::GroupJoin { port } => {
                *self.views.entry(by.clone()).or_default().entry(port.clone()).or_default() += 1;
            }
            Event::GroupLeave { port } => {
                let v = self.views.entry(by.clone()).or_default();
                let c = v.entry(port.clone()).or_default();
                *c -= 1;
                if *c == 0 {
                    v.remove(port);
                }
            }
            Event::ChildStart { port } => {
                self.supervised = true;
                self.children.insert(port.clone(), by.clone());
            }
            Event::ChildStop { port, .. } => {
                self.children.remove(port);
            }
            Event::StreamStart { stream, .. } => {
                self.stream_sender.insert(stream.clone(), by.clone());
            }
            Event::Sent { stream, seq } if r.t >= self.since => {
                self.sent_at.insert((stream.clone(), *seq), r.t);
            }
            Event::Recv { stream, seq } if self.sent_at.remove(&(stream.clone(), *seq)).is_some() => {
                if let Some(from) = self.stream_sender.get(stream) {
                    self.flows.insert((from.clone(), by.clone()));
                }
            }
            _ => {}
        }
    }

    fn forget(&mut self, node: &str) {
        self.live.remove(node);
        self.links.retain(|(a, _)| a != node);
        self.views.remove(node);
        self.children.retain(|_, n| n != node);
    }

    /// From now on, only messages sent after `t` count as flowing.
    pub fn reset_flows(&mut self, t: u64) {
        self.since = t;
        self.flows.clear();
        self.sent_at.clear();
    }

    /// The node hosting the one live supervised child, if there is exactly one.
    pub fn child_host(&self) -> Option<&str> {
        let mut hosts = self.children.values();
        match (hosts.next(), hosts.next()) {
            (Some(h), None) => Some(h),
            _ => None,
        }
    }

    /// Whether every pair of `nodes` has its links up.
    pub fn links_complete(&self, nodes: &[String]) -> bool {
        self.missing_links(nodes).is_empty()
    }

    /// The links (`a->b`) among `nodes` that are not up.
    pub fn missing_links(&self, nodes: &[String]) -> Vec<String> {
        let mut v = Vec::new();
        for a in nodes {
            for b in nodes {
                if a != b && !self.links.contains(&(a.clone(), b.clone())) {
                    v.push(format!("{a}->{b}"));
                }
            }
        }
        v
    }

    /// Whether no node has a link up.
    pub fn links_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The live nodes.
    pub fn live_nodes(&self) -> Vec<String> {
        self.live.keys().cloned().collect()
    }

    /// What keeps the network from being converged (empty: converged), given
    /// the nodes that should be live.
    pub fn unconverged(&self, expected_nodes: &[String]) -> Vec<String> {
        let mut why = Vec::new();
        let mut want = BTreeMap::new();
        for n in expected_nodes {
            match self.live.get(n) {
                Some(Some(p)) => {
                    want.insert(p.clone(), 1i64);
                }
                Some(None) => why.push(format!("{n} has not registered")),
                None => why.push(format!("{n} is not running")),
            }
        }
        for a in expected_nodes {
            for b in expected_nodes {
                if a != b && !self.links.contains(&(a.clone(), b.clone())) {
                    why.push(format!("{a} has no link to {b}"));
                }
                if a != b && !self.flows.contains(&(a.clone(), b.clone())) {
                    why.push(format!("no new message {a} -> {b}"));
                }
            }
            let empty = BTreeMap::new();
            let view = self.views.get(a).unwrap_or(&empty);
            if *view != want {
                why.push(format!("{a}'s group view {:?} is not {:?}", view, want.keys().collect::<Vec<_>>()));
            }
        }
        if self.supervised && self.children.len() != 1 {
            why.push(format!("{} supervised children run: {:?}", self.children.len(), self.children));
        }
        why
    }
}

struct PendingFault {
    id: u32,
    kind: String,
    t0: u64,
    /// (observer, peer) links expected to go down.
    pairs: BTreeSet<(String, String)>,
    seen: BTreeSet<(String, String)>,
    first: Option<u64>,
    all: Option<u64>,
    child_host: Option<String>,
    new_child: Option<u64>,
    orphan_stopped: bool,
    /// The supervisor's host when the fault began.
    sup: Option<String>,
    /// Hosts this fault separates from the supervisor's host.
    isolates: BTreeSet<String>,
    /// For a fault that cut the child's host off: every host some fault
    /// separated from the supervisor while it lasted (no place to restart
    /// the child there).
    blocked: BTreeSet<String>,
}

/// The hosts a fault separates from the supervisor's host `sup`.
fn isolated_from(sup: Option<&String>, kind: &str, hosts: &[String], all: &[String]) -> BTreeSet<String> {
    let Some(sup) = sup else { return BTreeSet::new() };
    let h = |i: usize| hosts.get(i).cloned().unwrap_or_default();
    match kind {
        "partition" | "oneway" if h(0) == *sup => BTreeSet::from([h(1)]),
        "partition" | "oneway" if h(1) == *sup => BTreeSet::from([h(0)]),
        // The supervisor's own host gone: nowhere can the child be restarted.
        "vanish" | "kill" | "pause" if h(0) == *sup => all.iter().cloned().collect(),
        "vanish" | "kill" | "pause" => BTreeSet::from([h(0)]),
        _ => BTreeSet::new(),
    }
}

fn replay(history: &[Record], opts: &Options, report: &mut Report) {
    let mut st = Replay::default();
    let mut nodes: BTreeSet<String> = BTreeSet::new();
    let mut faults: Vec<PendingFault> = Vec::new();
    let mut quiet: Option<(u64, u64)> = None;
    let mut done_faults: Vec<PendingFault> = Vec::new();
    for r in history {
        if matches!(r.ev, Event::Start { .. }) {
            nodes.insert(r.by.clone());
        }
        let child_before = st.child_host().map(str::to_owned);
        st.apply(r);
        match &r.ev {
            Event::Fault { id, kind, hosts } => {
                if let Some((t0, bound)) = quiet.take() {
                    let why = st.unconverged(&nodes.iter().cloned().collect::<Vec<_>>());
                    not_converged(report, r.t, t0, bound, &why);
                }
                let all: Vec<String> = st.live_nodes();
                let mut pairs = BTreeSet::new();
                let h = |i: usize| hosts.get(i).cloned().unwrap_or_default();
                match kind.as_str() {
                    "partition" | "oneway" => {
                        pairs.insert((h(0), h(1)));
                        pairs.insert((h(1), h(0)));
                    }
                    "vanish" => {
                        for o in all.iter().filter(|o| **o != h(0)) {
                            pairs.insert((o.clone(), h(0)));
                            pairs.insert((h(0), o.clone()));
                        }
                    }
                    "kill" | "pause" => {
                        for o in all.iter().filter(|o| **o != h(0)) {
                            pairs.insert((o.clone(), h(0)));
                        }
                    }
                    _ => {}
                }
                // Links an earlier fault still holds down are not this one's to detect.
                for f in &faults {
                    for p in &f.pairs {
                        pairs.remove(p);
                    }
                }
                let sup = all.first().cloned();
                let cut_off = match (kind.as_str(), &child_before, &sup) {
                    ("vanish", Some(c), _) => hosts.contains(c),
                    ("partition", Some(c), Some(s)) => hosts.contains(c) && hosts.contains(s) && c != s,
                    _ => false,
                };
                let isolates = isolated_from(sup.as_ref(), kind, hosts, &all);
                let mut blocked: BTreeSet<String> = isolates.clone();
                for f in &mut faults {
                    blocked.extend(f.isolates.iter().cloned());
                    f.blocked.extend(isolates.iter().cloned());
                }
                faults.push(PendingFault {
                    id: *id,
                    kind: kind.clone(),
                    t0: r.t,
                    pairs,
                    seen: BTreeSet::new(),
                    first: None,
                    all: None,
                    child_host: if cut_off { child_before.clone() } else { None },
                    new_child: None,
                    orphan_stopped: false,
                    sup: sup.clone(),
                    isolates,
                    blocked,
                });
            }
            Event::LinkDown { peer, .. } => {
                for f in &mut faults {
                    if f.kind == "blip" && f.pairs.is_empty() {
                        report.blip_downs += 1;
                        // Counted once per blip.
                        f.pairs.insert((String::new(), String::new()));
                    }
                    let key = (r.by.clone(), peer.clone());
                    if f.pairs.contains(&key) && f.seen.insert(key) {
                        f.first.get_or_insert(r.t - f.t0);
                        if f.seen.len() == f.pairs.len() {
                            f.all.get_or_insert(r.t - f.t0);
                        }
                    }
                }
            }
            Event::ChildStart { .. } => {
                for f in &mut faults {
                    if f.child_host.as_deref().is_some_and(|c| c != r.by) {
                        f.new_child.get_or_insert(r.t - f.t0);
                    }
                }
            }
            Event::ChildStop { .. } => {
                for f in &mut faults {
                    if f.child_host.as_deref() == Some(r.by.as_str()) {
                        f.orphan_stopped = true;
                    }
                }
            }
            Event::Heal { id } => {
                if let Some(i) = faults.iter().position(|f| f.id == *id) {
                    let f = faults.remove(i);
                    if let Some(c) = &f.child_host {
                        let held = r.t - f.t0;
                        // Fail-over is owed only when some worker stayed
                        // reachable from the supervisor throughout.
                        let reachable = nodes
                            .iter()
                            .any(|n| Some(n) != f.sup.as_ref() && n != c && !f.blocked.contains(n));
                        let no_new_child = reachable && f.new_child.is_none();
                        if held >= opts.failover_min_hold_ns && (no_new_child || !f.orphan_stopped) {
                            report.violations.push(Violation {
                                kind: Kind::NoFailover,
                                t: r.t,
                                text: format!(
                                    "fault {} ({}) cut the child's host {c} off for {:.1}s: {}{}",
                                    f.id,
                                    f.kind,
                                    secs(held),
                                    if no_new_child { "no new child elsewhere" } else { "" },
                                    if f.orphan_stopped { "" } else { "; the orphan did not die" }
                                ),
                            });
                        }
                        if let Some(t) = f.new_child {
                            report.failovers.push(t);
                        }
                    }
                    done_faults.push(f);
                }
            }
            Event::Quiet { bound_ms } => {
                if let Some((t0, bound)) = quiet.take() {
                    let why = st.unconverged(&nodes.iter().cloned().collect::<Vec<_>>());
                    not_converged(report, r.t, t0, bound, &why);
                }
                st.reset_flows(r.t);
                quiet = Some((r.t, bound_ms * 1_000_000));
            }
            _ => {}
        }
        if let Some((t0, bound)) = quiet {
            if r.t > t0 + bound {
                let why = st.unconverged(&nodes.iter().cloned().collect::<Vec<_>>());
                not_converged(report, r.t, t0, bound, &why);
                quiet = None;
            } else if st.unconverged(&nodes.iter().cloned().collect::<Vec<_>>()).is_empty() {
                report.convergences.push(Some(r.t - t0));
                quiet = None;
            }
        }
    }
    if let Some((t0, bound)) = quiet {
        let end = history.last().map_or(t0, |r| r.t);
        let why = st.unconverged(&nodes.iter().cloned().collect::<Vec<_>>());
        not_converged(report, end, t0, bound, &why);
    }
    done_faults.extend(faults);
    done_faults.sort_by_key(|f| f.id);
    for f in done_faults.into_iter().filter(|f| !f.pairs.is_empty() && f.kind != "blip") {
        report.detections.push(Detection { kind: f.kind, id: f.id, first_ns: f.first, all_ns: f.all });
    }
}

/// A degradation's hosts and time span (to the end when it never healed).
struct Window {
    id: u32,
    pair: (String, String),
    t0: u64,
    t1: u64,
}

impl Window {
    /// Whether it is between `a` and `b`.
    fn joins(&self, a: &str, b: &str) -> bool {
        let (x, y) = (&self.pair.0, &self.pair.1);
        (x == a && y == b) || (x == b && y == a)
    }

    /// Whether it is between `a` and `b` and under way at `t`.
    fn covers(&self, a: &str, b: &str, t: u64) -> bool {
        self.joins(a, b) && (self.t0..=self.t1).contains(&t)
    }
}

/// Measures what each `degrade` fault did to the traffic between its hosts.
fn degradations(history: &[Record], report: &mut Report) {
    let mut windows: Vec<Window> = Vec::new();
    for r in history {
        match &r.ev {
            Event::Fault { id, kind, hosts } if kind == "degrade" && hosts.len() == 2 => windows
                .push(Window { id: *id, pair: (hosts[0].clone(), hosts[1].clone()), t0: r.t, t1: u64::MAX }),
            Event::Heal { id } => {
                for w in windows.iter_mut().filter(|w| w.id == *id) {
                    w.t1 = r.t;
                }
            }
            Event::Relayed { packets, dropped, reordered, max_held, .. } => {
                let t = &mut report.relayed;
                t.packets += packets;
                t.dropped += dropped;
                t.reordered += reordered;
                t.max_held = t.max_held.max(*max_held);
            }
            _ => {}
        }
    }
    if windows.is_empty() {
        return;
    }
    let mut found: Vec<Degradation> =
        windows.iter().map(|w| Degradation { id: w.id, t: w.t0, ..Degradation::default() }).collect();
    let degraded = |a: &str, b: &str| windows.iter().any(|w| w.joins(a, b));
    // Streams between degraded hosts: (sender node, receiver node).
    let mut pairs: HashMap<&str, (&str, &str)> = HashMap::new();
    let mut sent: HashMap<(&str, u64), u64> = HashMap::new();
    // Other faults under way: their number and hosts.
    let mut others: Vec<(u32, &[String])> = Vec::new();
    let touched = |others: &[(u32, &[String])], a: &str, b: &str| {
        others.iter().any(|(_, hosts)| hosts.iter().any(|h| h == a || h == b))
    };
    for r in history {
        match &r.ev {
            Event::Fault { id, kind, hosts } if kind != "degrade" => others.push((*id, hosts)),
            Event::Heal { id } => others.retain(|(o, _)| o != id),
            Event::StreamStart { stream, receiver, .. } if degraded(&r.by, node_of(receiver)) => {
                pairs.insert(stream, (&r.by, node_of(receiver)));
            }
            Event::Sent { stream, seq } if pairs.contains_key(stream.as_str()) => {
                sent.insert((stream, *seq), r.t);
            }
            Event::Recv { stream, seq } => {
                let Some((a, b)) = pairs.get(stream.as_str()) else { continue };
                let at = sent.remove(&(stream.as_str(), *seq));
                each_covering(&windows, &mut found, a, b, r.t, |d| {
                    d.delivered += 1;
                    d.latencies_ns.extend(at.map(|at| r.t.saturating_sub(at)));
                });
            }
            Event::MonFired { stream, .. } => {
                let Some((a, b)) = pairs.get(stream.as_str()) else { continue };
                if !touched(&others, a, b) {
                    each_covering(&windows, &mut found, a, b, r.t, |d| d.monitors_fired += 1);
                }
            }
            Event::LinkDown { peer, reason } => {
                let other = touched(&others, &r.by, peer);
                each_covering(&windows, &mut found, &r.by, peer, r.t, |d| {
                    if other {
                        d.link_downs_other += 1;
                    } else {
                        d.link_downs += 1;
                        d.reasons.push(format!("{}->{peer}: {reason}", r.by));
                    }
                });
            }
            _ => {}
        }
    }
    report.degradations = found;
}

/// Applies `f` to the figures of every degradation of `a` and `b` under way at `t`.
fn each_covering(
    windows: &[Window],
    found: &mut [Degradation],
    a: &str,
    b: &str,
    t: u64,
    mut f: impl FnMut(&mut Degradation),
) {
    for (_, d) in windows.iter().zip(found.iter_mut()).filter(|(w, _)| w.covers(a, b, t)) {
        f(d);
    }
}

fn not_converged(report: &mut Report, t: u64, t0: u64, bound: u64, why: &[String]) {
    report.convergences.push(None);
    report.violations.push(Violation {
        kind: Kind::NotConverged,
        t,
        text: format!(
            "not converged {:.1}s after everything healed (bound {:.1}s): {}",
            secs(t - t0),
            secs(bound),
            why.join("; ")
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    struct H(Vec<Record>);

    impl H {
        fn new() -> H {
            H(Vec::new())
        }
        fn at(&mut self, t_ms: u64, by: &str, ev: Event) -> &mut H {
            self.0.push(Record { t: t_ms * 1_000_000, by: by.into(), ev });
            self
        }
        fn stream(&mut self, t: u64, by: &str, id: &str, to: &str) -> &mut H {
            self.at(
                t,
                by,
                Event::StreamStart { stream: id.into(), sender: format!("{by}#s"), receiver: to.into() },
            )
        }
        fn sent(&mut self, t: u64, by: &str, id: &str, seq: u64) -> &mut H {
            self.at(t, by, Event::Sent { stream: id.into(), seq })
        }
        fn recv(&mut self, t: u64, by: &str, id: &str, seq: u64) -> &mut H {
            self.at(t, by, Event::Recv { stream: id.into(), seq })
        }
        fn fired(&mut self, t: u64, by: &str, id: &str) -> &mut H {
            self.at(t, by, Event::MonFired { stream: id.into(), reason: "transport_error".into() })
        }
        fn check(&mut self) -> Report {
            self.0.sort_by_key(|r| r.t);
            check(&self.0, &Options::default())
        }
    }

    fn two_nodes() -> H {
        let mut h = H::new();
        h.at(0, "a", Event::Start { pid: 1 }).at(0, "b", Event::Start { pid: 2 });
        h.stream(10, "a", "s1", "b#rx");
        h
    }

    fn kinds(r: &Report) -> Vec<Kind> {
        r.violations.iter().map(|v| v.kind).collect()
    }

    #[test]
    fn a_complete_stream_passes() {
        let mut h = two_nodes();
        for i in 1..=5 {
            h.sent(10 + i, "a", "s1", i).recv(20 + i, "b", "s1", i);
        }
        h.at(100, "a", Event::StopSending);
        let r = h.check();
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.messages, r.streams), (5, 1));
    }

    #[test]
    fn a_hole_without_a_monitor_fails() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).sent(12, "a", "s1", 2).sent(13, "a", "s1", 3);
        h.recv(21, "b", "s1", 1).recv(23, "b", "s1", 3);
        let r = h.check();
        assert_eq!(kinds(&r), vec![Kind::Hole], "{:?}", r.violations);
        assert!(r.violations[0].text.contains("seq 2..2"), "{}", r.violations[0]);
    }

    #[test]
    fn a_hole_is_a_violation_even_when_the_monitor_fired_later() {
        // P25: after the first lost message no further message may arrive.
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).sent(12, "a", "s1", 2).sent(13, "a", "s1", 3);
        h.recv(21, "b", "s1", 1).recv(23, "b", "s1", 3).fired(30, "a", "s1");
        assert_eq!(kinds(&h.check()), vec![Kind::Hole]);
    }

    #[test]
    fn a_lost_tail_covered_by_the_monitor_passes() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).sent(12, "a", "s1", 2).sent(13, "a", "s1", 3);
        h.recv(21, "b", "s1", 1).fired(3000, "a", "s1").at(5000, "a", Event::StopSending);
        let r = h.check();
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.monitors_fired, 1);
    }

    #[test]
    fn a_lost_tail_without_a_monitor_fails_when_the_sender_stopped_in_order() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).sent(12, "a", "s1", 2).recv(21, "b", "s1", 1);
        h.at(5000, "a", Event::StopSending);
        assert_eq!(kinds(&h.check()), vec![Kind::SilentLoss]);
    }

    #[test]
    fn a_lost_tail_of_a_killed_sender_is_no_violation() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).sent(12, "a", "s1", 2).recv(21, "b", "s1", 1);
        h.at(100, "lab", Event::Killed { node: "a".into(), pid: 1 });
        h.at(200, "a", Event::Start { pid: 3 }).at(5000, "a", Event::StopSending);
        let r = h.check();
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn a_reordering_fails() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).sent(12, "a", "s1", 2);
        h.recv(21, "b", "s1", 2).recv(22, "b", "s1", 1);
        assert_eq!(kinds(&h.check()), vec![Kind::Reorder]);
    }

    #[test]
    fn a_duplicate_fails() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).recv(21, "b", "s1", 1).recv(22, "b", "s1", 1);
        assert_eq!(kinds(&h.check()), vec![Kind::Duplicate]);
    }

    #[test]
    fn an_arrival_after_the_monitor_fired_fails() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).sent(12, "a", "s1", 2).recv(21, "b", "s1", 1);
        h.fired(3000, "a", "s1").recv(9000, "b", "s1", 2);
        let r = h.check();
        assert_eq!(kinds(&r), vec![Kind::LateArrival]);
        assert!(r.violations[0].text.contains("seq 2"), "{}", r.violations[0]);
    }

    #[test]
    fn a_message_sent_after_the_monitor_fired_may_take_the_next_link() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).sent(12, "a", "s1", 2).recv(21, "b", "s1", 1);
        h.fired(3000, "a", "s1").sent(3001, "a", "s1", 3).recv(9000, "b", "s1", 3);
        let r = h.check();
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn an_arrival_just_after_the_monitor_fired_is_in_flight() {
        let mut h = two_nodes();
        h.sent(11, "a", "s1", 1).fired(3000, "a", "s1").recv(3010, "b", "s1", 1);
        assert!(h.check().violations.is_empty());
    }

    /// A converged three-node network, from `t` ms, with receiver ports `N#rx`.
    fn mesh(h: &mut H, t: u64, nodes: &[&str]) {
        for n in nodes {
            h.at(t, n, Event::Start { pid: 1 }).at(t, n, Event::Registered { port: format!("{n}#rx") });
            for m in nodes {
                h.at(t + 1, n, Event::GroupJoin { port: format!("{m}#rx") });
                if m != n {
                    h.at(t + 1, n, Event::LinkUp { peer: (*m).into() });
                }
            }
        }
    }

    fn flow(h: &mut H, t: u64, nodes: &[&str]) {
        for a in nodes {
            for b in nodes {
                if a != b {
                    let id = format!("{a}{b}{t}");
                    h.stream(t, a, &id, &format!("{b}#rx")).sent(t, a, &id, 1).recv(t + 5, b, &id, 1);
                }
            }
        }
    }

    #[test]
    fn convergence_after_a_partition_is_measured() {
        let mut h = H::new();
        let n = ["a", "b", "c"];
        mesh(&mut h, 0, &n);
        h.at(
            1000,
            "lab",
            Event::Fault { id: 1, kind: "partition".into(), hosts: vec!["a".into(), "b".into()] },
        );
        h.at(4000, "a", Event::LinkDown { peer: "b".into(), reason: "timeout".into() });
        h.at(4000, "a", Event::GroupLeave { port: "b#rx".into() });
        h.at(4200, "b", Event::LinkDown { peer: "a".into(), reason: "timeout".into() });
        h.at(4200, "b", Event::GroupLeave { port: "a#rx".into() });
        h.at(5000, "lab", Event::Heal { id: 1 }).at(5000, "lab", Event::Quiet { bound_ms: 10_000 });
        h.at(6000, "a", Event::LinkUp { peer: "b".into() }).at(
            6000,
            "a",
            Event::GroupJoin { port: "b#rx".into() },
        );
        h.at(6000, "b", Event::LinkUp { peer: "a".into() }).at(
            6000,
            "b",
            Event::GroupJoin { port: "a#rx".into() },
        );
        flow(&mut h, 6500, &n);
        let r = h.check();
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.convergences, vec![Some(1505 * 1_000_000)]);
        assert_eq!(r.detections[0].first_ns, Some(3 * S));
        assert_eq!(r.detections[0].all_ns, Some(3200 * 1_000_000));
    }

    #[test]
    fn a_stale_group_member_keeps_the_network_unconverged() {
        let mut h = H::new();
        let n = ["a", "b"];
        mesh(&mut h, 0, &n);
        h.at(1000, "lab", Event::Killed { node: "b".into(), pid: 1 });
        h.at(1100, "b", Event::Start { pid: 2 }).at(1100, "b", Event::Registered { port: "b#rx2".into() });
        h.at(1100, "b", Event::GroupJoin { port: "b#rx2".into() });
        h.at(1200, "lab", Event::Quiet { bound_ms: 2000 });
        h.at(1300, "a", Event::LinkUp { peer: "b".into() }).at(1300, "b", Event::LinkUp { peer: "a".into() });
        h.at(1300, "b", Event::GroupJoin { port: "a#rx".into() });
        h.at(1300, "a", Event::GroupJoin { port: "b#rx2".into() });
        // a never drops b#rx of the dead incarnation.
        h.stream(1400, "a", "x", "b#rx2").sent(1400, "a", "x", 1).recv(1401, "b", "x", 1);
        h.stream(1400, "b", "y", "a#rx").sent(1400, "b", "y", 1).recv(1401, "a", "y", 1);
        h.at(4000, "lab", Event::Finding { text: "end".into() });
        let r = h.check();
        assert_eq!(kinds(&r), vec![Kind::NotConverged]);
        assert!(r.violations[0].text.contains("a's group view"), "{}", r.violations[0]);
    }

    #[test]
    fn no_failover_is_owed_while_every_other_worker_is_cut_off_from_the_supervisor() {
        let mut h = H::new();
        let n = ["a", "b", "c"];
        mesh(&mut h, 0, &n);
        h.at(10, "b", Event::ChildStart { port: "b#child1".into() });
        h.at(1000, "lab", Event::Fault { id: 1, kind: "vanish".into(), hosts: vec!["b".into()] });
        // The supervisor (a) cannot reach c either: no place for a new child.
        h.at(
            1500,
            "lab",
            Event::Fault { id: 2, kind: "partition".into(), hosts: vec!["c".into(), "a".into()] },
        );
        h.at(4000, "b", Event::ChildStop { port: "b#child1".into(), reason: "lost".into() });
        h.at(7000, "lab", Event::Heal { id: 1 });
        h.at(7500, "lab", Event::Heal { id: 2 });
        let r = h.check();
        assert!(!kinds(&r).contains(&Kind::NoFailover), "{:?}", r.violations);
    }

    #[test]
    fn a_failover_is_owed_when_a_worker_stays_reachable() {
        let mut h = H::new();
        let n = ["a", "b", "c"];
        mesh(&mut h, 0, &n);
        h.at(10, "b", Event::ChildStart { port: "b#child1".into() });
        h.at(1000, "lab", Event::Fault { id: 1, kind: "vanish".into(), hosts: vec!["b".into()] });
        // A partition that leaves the supervisor (a) in touch with c.
        h.at(
            1500,
            "lab",
            Event::Fault { id: 2, kind: "partition".into(), hosts: vec!["b".into(), "c".into()] },
        );
        h.at(4000, "b", Event::ChildStop { port: "b#child1".into(), reason: "lost".into() });
        h.at(7000, "lab", Event::Heal { id: 1 });
        h.at(7500, "lab", Event::Heal { id: 2 });
        let r = h.check();
        assert!(kinds(&r).contains(&Kind::NoFailover), "{:?}", r.violations);
    }

    #[test]
    fn two_children_after_a_heal_fail_and_a_failover_is_measured() {
        let mut h = H::new();
        let n = ["a", "b", "c"];
        mesh(&mut h, 0, &n);
        h.at(10, "b", Event::ChildStart { port: "b#child1".into() });
        h.at(1000, "lab", Event::Fault { id: 1, kind: "vanish".into(), hosts: vec!["b".into()] });
        h.at(4500, "c", Event::ChildStart { port: "c#child2".into() });
        // The orphan on b never dies.
        h.at(7000, "lab", Event::Heal { id: 1 }).at(7000, "lab", Event::Quiet { bound_ms: 1000 });
        flow(&mut h, 7100, &n);
        h.at(9000, "lab", Event::Finding { text: "end".into() });
        let r = h.check();
        assert_eq!(kinds(&r), vec![Kind::NoFailover, Kind::NotConverged], "{:?}", r.violations);
        assert_eq!(r.failovers, vec![3500 * 1_000_000]);
        assert!(r.violations[1].text.contains("2 supervised children"), "{}", r.violations[1]);
    }

    #[test]
    fn a_degradation_is_measured_between_its_hosts_only() {
        let mut h = H::new();
        mesh(&mut h, 0, &["a", "b", "c"]);
        h.stream(10, "a", "ab", "b#rx").stream(10, "b", "ba", "a#rx").stream(10, "a", "ac", "c#rx");
        h.sent(500, "a", "ab", 1).recv(501, "b", "ab", 1);
        h.at(
            1000,
            "lab",
            Event::Fault { id: 1, kind: "degrade".into(), hosts: vec!["a".into(), "b".into()] },
        );
        h.sent(1100, "a", "ab", 2).recv(1400, "b", "ab", 2);
        h.sent(1100, "b", "ba", 1).recv(1250, "a", "ba", 1);
        h.sent(1100, "a", "ac", 1).recv(1101, "c", "ac", 1);
        h.at(2000, "a", Event::LinkDown { peer: "b".into(), reason: "read timeout".into() });
        h.at(2000, "a", Event::LinkDown { peer: "c".into(), reason: "read timeout".into() });
        h.fired(2000, "a", "ab");
        // While b is paused, its link to a going down is the pause's doing.
        h.at(2100, "lab", Event::Fault { id: 2, kind: "pause".into(), hosts: vec!["b".into()] });
        h.at(2200, "a", Event::LinkDown { peer: "b".into(), reason: "read timeout".into() });
        h.at(2300, "lab", Event::Heal { id: 2 });
        h.at(3000, "lab", Event::Heal { id: 1 });
        h.sent(3100, "b", "ba", 2).recv(3101, "a", "ba", 2);
        let relayed = |packets| Event::Relayed {
            from: "a".into(),
            to: "b".into(),
            packets,
            dropped: 2,
            reordered: 1,
            max_held: 5,
        };
        h.at(3000, "relay", relayed(10)).at(3000, "relay", relayed(20));
        let r = h.check();
        assert_eq!(
            r.degradations,
            vec![Degradation {
                id: 1,
                t: 1000 * 1_000_000,
                delivered: 2,
                latencies_ns: vec![150_000_000, 300_000_000],
                link_downs: 1,
                monitors_fired: 1,
                link_downs_other: 1,
                reasons: vec!["a->b: read timeout".into()],
            }]
        );
        assert_eq!(r.relayed, Relayed { packets: 30, dropped: 4, reordered: 2, max_held: 5 });
        assert!(
            r.detections.iter().all(|d| d.kind != "degrade"),
            "a degradation owes no detection: {:?}",
            r.detections
        );
    }

    #[test]
    fn kinds_have_names() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
    }
}

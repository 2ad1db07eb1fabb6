//! The supervisor's own side: its port (state, child starts and stops,
//! restart decisions), the directory port, and [`install`], which registers
//! the init functions.
//!
//! Everything a supervisor learns arrives as a message to its port: child
//! exits (its monitors send them), start confirmations (from the wrapper),
//! timers and requests. It runs one operation at a time (start a child and
//! wait for its confirmation, stop a child and wait for its exit) and holds
//! back further decisions until the current one is done, as an OTP
//! supervisor does while it restarts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use aemp::{msg, Ctx, Map, MonAction, Msg, Node, NodeId, PortId, Reason, TimerGuard, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::child::{child_init, explain_failed_start, parent_exit_reason, shutdown_reason, CHILD_INIT};
use crate::children::{Child, Children, Key, St};
use crate::error::Result;
use crate::event::{Event, EventKind};
use crate::info::{ChildCounts, ChildStatus};
use crate::intensity::{Backoff, Intensity, RestartWindow};
use crate::spec::{ChildKind, ChildSpec, Placement, Restart, Shutdown, SupervisorSpec, SUPERVISOR_INIT};
use crate::strategy::{decide, ChildState, Decision, ExitKind, Strategy};

/// The Global group every supervisor of a networked node joins.
pub const GROUP: &str = "aemp_supervisors";

/// The name of the port, on every node that runs a supervisor, that answers
/// `["list", reply]` with `[supervisor port, ...]`: the supervisors of that
/// node (from the Global group [`GROUP`], so on networked nodes only).
pub const DIRECTORY: &str = "aemp_supervisors";

/// The first element of the reason a supervisor exits with when its restart
/// intensity is exceeded: `("max_restarts", text, child ID, [child's reason])`.
pub const MAX_RESTARTS: &str = "max_restarts";

/// The first element of the reason a supervisor exits with when one of its
/// initial children fails to start: `("start_failed", child ID, [child's reason])`.
pub const START_FAILED: &str = "start_failed";

/// Registers the init functions [`SUPERVISOR_INIT`] and [`CHILD_INIT`] for
/// every node of this process.
///
/// [`Supervisor::start`](crate::Supervisor::start) calls it. A process
/// whose nodes only host children (or child supervisors) of supervisors on
/// other nodes must call it once; where it has not, a child started there
/// fails to start with a reason that says so.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        aemp::register_init(SUPERVISOR_INIT, |ctx: &mut Ctx<'_>, args| {
            supervisor_init(ctx, args).map_err(aemp::Error::from)
        });
        aemp::register_init(CHILD_INIT, child_init);
    });
}

/// The node named by a `("transport_error", node, ...)` reason.
fn lost_node(r: &Reason) -> Option<NodeId> {
    if r.kind() != Some("transport_error") {
        return None;
    }
    r.values().get(1).and_then(Value::as_str).and_then(|s| NodeId::new(s).ok())
}

fn secs_text(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// `aemp_supervisor::init`: args `[spec map]`; the map may also hold
/// `parent` (a port) and `ack` (`[port, values...]`: sent `values...,
/// supervisor` once every initial child has started).
fn supervisor_init(ctx: &mut Ctx<'_>, args: Msg) -> Result<()> {
    let v = args.at(0)?;
    let spec = SupervisorSpec::from_value(v)?;
    let map = v.as_map().cloned().unwrap_or_default();
    let ack = map.get("ack").and_then(Value::as_array).and_then(|a| {
        let port = a.first()?.as_str().and_then(|s| PortId::new(s).ok())?;
        Some((port, a[1..].iter().cloned().collect::<Msg>()))
    });
    let parent = map.get("parent").and_then(Value::as_str).and_then(|s| PortId::new(s).ok());
    let me = ctx.self_id();
    let node = ctx.node();
    // Discoverable: the Global group (networked nodes) and the directory port.
    if node.register_group(&me, GROUP).is_ok() {
        if let Ok(dir) = ctx.node_id().port(DIRECTORY) {
            ctx.rcv(&dir, directory);
        }
    }
    let mut sup = Sup::new(ctx, spec, ack, parent);
    tracing::info!(target: "aemp_supervisor", supervisor = %me, strategy = %sup.strategy,
        children = sup.kids.len(), "supervisor starting");
    let boot: Vec<Key> = sup.kids.iter().map(|(k, _)| k).collect();
    for key in boot {
        sup.ops.push_back(Op::Start { key, why: Why::Boot });
    }
    sup.ops.push_back(Op::Ack);
    // The wrappers on this node die with the supervisor.
    let wrappers = sup.local_wrappers.clone();
    let (node, me_text) = (ctx.node(), me.to_string());
    ctx.mon(&me, move |reason: Reason| {
        let reason = parent_exit_reason(&me_text, reason);
        for w in wrappers.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            node.kil(&w, reason.clone());
        }
    })
    .keep();
    ctx.rcv(&me, move |ctx, m| sup.handle(ctx, m));
    // Start the children from a message, so that whoever spawned us has
    // its monitor in place before anything can fail.
    ctx.snd(&me, msg!["boot"]);
    Ok(())
}

/// The directory port's callback.
fn directory(ctx: &mut Ctx<'_>, m: Msg) {
    if m.tag() != Some("list") {
        return;
    }
    let Ok(reply) = m.port(1) else { return };
    let me = ctx.node_id().clone();
    let sups: Vec<Value> =
        ctx.node().find_group(GROUP).into_iter().filter(|p| p.node() == me).map(Value::from).collect();
    ctx.snd(&reply, Msg::from(sups));
}

enum Why {
    /// An initial child: a failure aborts the supervisor.
    Boot,
    /// A restart: a failure counts as another exit.
    Restart,
    /// A run-time request: a failure is the requester's answer; a child
    /// `added` by the request is not kept.
    Request { reply: PortId, added: bool },
}

enum Op {
    Start {
        key: Key,
        why: Why,
    },
    Stop {
        key: Key,
    },
    /// Stops these children all at once, within one deadline.
    StopAll {
        keys: Vec<Key>,
    },
    Forget {
        key: Key,
    },
    Reply {
        to: PortId,
        msg: Msg,
    },
    Ack,
    Backoff {
        keys: Vec<Key>,
        delay: Duration,
    },
    Exit(Reason),
}

enum Wait {
    Start { key: Key, gen: u64, why: Why },
    Stop { key: Key, gen: u64 },
    StopAll { pending: HashSet<Key>, _deadline: Option<TimerGuard> },
}

/// Work held back until the current operation is done.
enum Pending {
    Exit { key: Key, gen: u64 },
    BackoffDue(u64),
    Request(Msg),
}

struct Sup {
    me: PortId,
    node: Node,
    strategy: Strategy,
    intensity: Intensity,
    backoff: Option<Backoff>,
    template: Option<ChildSpec>,
    max_children: Option<usize>,
    kids: Children,
    window: RestartWindow,
    epoch: Instant,
    rng: StdRng,
    next_gen: u64,
    next_dynamic: u64,
    next_timer: u64,
    next_event: u64,
    timers: HashMap<u64, (Vec<Key>, TimerGuard)>,
    ops: VecDeque<Op>,
    pending: VecDeque<Pending>,
    waiting: Option<Wait>,
    ack: Option<(PortId, Msg)>,
    parent: Option<PortId>,
    observer: Option<PortId>,
    total_restarts: u64,
    /// The live wrappers on the supervisor's node, killed when it dies.
    local_wrappers: Arc<Mutex<HashSet<PortId>>>,
    /// Set once the supervisor is on its way out: its last events are
    /// sent, its death follows in a message to itself.
    exiting: Option<Reason>,
}

impl Sup {
    fn new(
        ctx: &mut Ctx<'_>,
        spec: SupervisorSpec,
        ack: Option<(PortId, Msg)>,
        parent: Option<PortId>,
    ) -> Sup {
        let mut kids = Children::default();
        let template = if spec.strategy == Strategy::SimpleOneForOne {
            spec.children.into_iter().next()
        } else {
            for c in spec.children {
                kids.insert(Child::new(c, spec.intensity));
            }
            None
        };
        let rng = match spec.backoff.and_then(|b| b.seed) {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Sup {
            me: ctx.self_id(),
            node: ctx.node(),
            strategy: spec.strategy,
            intensity: spec.intensity,
            backoff: spec.backoff,
            template,
            max_children: spec.max_children,
            kids,
            window: RestartWindow::new(spec.intensity),
            epoch: Instant::now(),
            rng,
            next_gen: 0,
            next_dynamic: 0,
            next_timer: 0,
            next_event: 0,
            timers: HashMap::new(),
            ops: VecDeque::new(),
            pending: VecDeque::new(),
            waiting: None,
            ack,
            parent,
            observer: spec.observer,
            total_restarts: 0,
            local_wrappers: Arc::default(),
            exiting: None,
        }
    }

    fn id(&self, key: Key) -> String {
        self.kids.get(key).map(|c| c.id().to_owned()).unwrap_or_default()
    }

    /// Logs an event and sends it to the observer.
    fn emit(&mut self, ctx: &mut Ctx<'_>, kind: EventKind) {
        self.next_event += 1;
        let (me, id) = (&self.me, kind.child());
        match &kind {
            EventKind::Started { port, node, .. } => {
                tracing::info!(target: "aemp_supervisor", supervisor = %me, child = id, %port, %node, "child started")
            }
            EventKind::StartFailed { reason, .. } => {
                tracing::warn!(target: "aemp_supervisor", supervisor = %me, child = id, %reason, "child failed to start")
            }
            EventKind::Exited { reason, .. } => {
                tracing::warn!(target: "aemp_supervisor", supervisor = %me, child = id, %reason, "child exited")
            }
            EventKind::Lost { node, .. } => {
                tracing::warn!(target: "aemp_supervisor", supervisor = %me, child = id, %node, "child lost with its node")
            }
            EventKind::Restarting { delay, children, .. } => {
                tracing::info!(target: "aemp_supervisor", supervisor = %me, child = id, strategy = %self.strategy,
                    ?delay, restart = ?children, "restarting")
            }
            EventKind::GaveUp { reason, .. } => {
                tracing::error!(target: "aemp_supervisor", supervisor = %me, child = id, %reason, "giving up")
            }
            other => {
                tracing::info!(target: "aemp_supervisor", supervisor = %me, child = id, event = other.as_str())
            }
        }
        if let Some(o) = &self.observer {
            let e = Event { supervisor: self.me.clone(), seq: self.next_event, kind };
            ctx.snd(o, e.to_msg());
        }
    }

    fn handle(&mut self, ctx: &mut Ctx<'_>, m: Msg) {
        if self.exiting.is_some() {
            if m.tag() == Some("die") {
                if let Some(r) = self.exiting.take() {
                    ctx.kil_self(r);
                }
            }
            return;
        }
        let at = |i: usize| m.get::<u64>(i).ok();
        match m.tag() {
            Some("boot") => {}
            Some("exit" | "start_failed") => {
                if let (Some(key), Some(gen)) = (at(1), at(2)) {
                    self.on_exit(ctx, key, gen, Reason::from(m.rest(3)), true);
                }
            }
            Some("started") => {
                if let (Some(key), Some(gen), Ok(port)) = (at(1), at(2), m.port(3)) {
                    self.on_started(ctx, key, gen, port);
                }
            }
            Some("start_timeout") => {
                if let (Some(key), Some(gen)) = (at(1), at(2)) {
                    self.on_start_timeout(ctx, key, gen);
                }
            }
            Some("stop_timeout") => {
                if let (Some(key), Some(gen)) = (at(1), at(2)) {
                    self.on_stop_timeout(ctx, key, gen);
                }
            }
            Some("stop_all_timeout") => self.on_stop_all_timeout(ctx),
            Some("backoff") => {
                if let Some(seq) = at(1) {
                    self.pending.push_back(Pending::BackoffDue(seq));
                }
            }
            Some("which_children") => {
                if let Ok(reply) = m.port(1) {
                    ctx.snd(&reply, Msg::from_array([self.info()]));
                }
            }
            Some("count_children") => {
                if let Ok(reply) = m.port(1) {
                    ctx.snd(&reply, Msg::from_array([self.counts().to_value()]));
                }
            }
            Some(
                "start_child" | "start_dynamic" | "terminate_child" | "restart_child" | "delete_child"
                | "remove_child" | "stop" | "shutdown",
            ) => {
                self.pending.push_back(Pending::Request(m));
            }
            other => {
                tracing::debug!(target: "aemp_supervisor", supervisor = %self.me, tag = ?other,
                    "unknown message ignored");
            }
        }
        self.pump(ctx);
    }

    /// Runs operations, then held-back work, until one has to wait.
    fn pump(&mut self, ctx: &mut Ctx<'_>) {
        while self.waiting.is_none() && self.exiting.is_none() {
            if let Some(op) = self.ops.pop_front() {
                self.exec(ctx, op);
            } else if let Some(p) = self.pending.pop_front() {
                match p {
                    Pending::Exit { key, gen } => self.decide(ctx, key, gen),
                    Pending::BackoffDue(seq) => self.backoff_due(seq),
                    Pending::Request(m) => self.request(ctx, m),
                }
            } else {
                break;
            }
        }
    }

    /// A child's wrapper died (or its start failed, or timed out): with
    /// `sweep`, a lost node takes every other child on it along.
    fn on_exit(&mut self, ctx: &mut Ctx<'_>, key: Key, gen: u64, reason: Reason, sweep: bool) {
        let Some(c) = self.kids.get(key) else { return };
        let Some(node) = c.state().node().cloned() else { return };
        if c.gen != gen {
            return;
        }
        let starting = matches!(c.state(), St::Starting { .. });
        let lost = lost_node(&reason).filter(|n| *n == node && n != self.node.id());
        let reason = if starting { explain_failed_start(reason, node.as_str()) } else { reason };
        if let Some(c) = self.kids.get_mut(key) {
            if let Some(w) = c.local_wrapper.take() {
                self.local_wrappers.lock().unwrap_or_else(|e| e.into_inner()).remove(&w);
            }
            if lost.is_some() {
                c.avoid = lost.clone();
            }
            c.ran = c.since.take().map(|s| s.elapsed());
            c.last_exit = Some(reason.clone());
        }
        self.kids.set_state(key, St::Exited);
        match self.waiting.take() {
            Some(Wait::Start { key: k, gen: g, why }) if k == key && g == gen => {
                self.failed_start(ctx, key, why, reason.clone());
            }
            Some(Wait::Stop { key: k, gen: g }) if k == key && g == gen => {
                self.stopped(ctx, key, reason.clone(), lost.clone());
            }
            Some(Wait::StopAll { mut pending, _deadline }) if pending.contains(&key) => {
                pending.remove(&key);
                self.stopped(ctx, key, reason.clone(), lost.clone());
                if !pending.is_empty() {
                    self.waiting = Some(Wait::StopAll { pending, _deadline });
                }
            }
            other => {
                self.waiting = other;
                let id = self.id(key);
                let kind = match lost.clone() {
                    Some(node) => EventKind::Lost { id, node, reason: reason.clone() },
                    None => EventKind::Exited { id, reason: reason.clone() },
                };
                self.emit(ctx, kind);
                self.pending.push_back(Pending::Exit { key, gen });
            }
        }
        if let (Some(n), true) = (lost, sweep) {
            // The link to n is gone: every monitor on it has fired or is
            // about to. Nothing is sent there; its children count as exited.
            let gone: Vec<(Key, u64)> = self
                .kids
                .iter()
                .filter(|(_, c)| c.state().node() == Some(&n))
                .map(|(k, c)| (k, c.gen))
                .collect();
            for (k, g) in gone {
                self.on_exit(ctx, k, g, reason.clone(), false);
            }
        }
    }

    /// A child the supervisor was stopping is gone.
    fn stopped(&mut self, ctx: &mut Ctx<'_>, key: Key, reason: Reason, lost: Option<NodeId>) {
        self.kids.set_state(key, St::Stopped);
        let id = self.id(key);
        let kind = match lost {
            Some(node) => EventKind::Lost { id, node, reason },
            None => EventKind::Stopped { id, reason },
        };
        self.emit(ctx, kind);
    }

    fn failed_start(&mut self, ctx: &mut Ctx<'_>, key: Key, why: Why, reason: Reason) {
        let id = self.id(key);
        let gen = self.kids.get(key).map_or(0, |c| c.gen);
        self.emit(ctx, EventKind::StartFailed { id: id.clone(), reason: reason.clone() });
        match why {
            Why::Boot => {
                self.kids.set_state(key, St::Stopped);
                self.ops.clear();
                self.pending.clear();
                self.stop_all();
                let r = Reason(vec![Value::from(START_FAILED), Value::from(&id), Value::Array(reason.0)]);
                self.ops.push_back(Op::Exit(r));
            }
            Why::Restart => {
                // The rest of the group waits: it is started again after this
                // child, by the decision about this failure, which comes next.
                let mut rest = Vec::new();
                self.ops.retain(|op| match op {
                    Op::Start { key, why: Why::Restart } => {
                        rest.push(*key);
                        false
                    }
                    _ => true,
                });
                for k in rest {
                    if self.kids.get(k).is_some_and(|c| !c.state().is_live()) {
                        self.kids.set_state(k, St::Stopped);
                    }
                }
                self.pending.push_front(Pending::Exit { key, gen });
            }
            Why::Request { reply, added } => {
                if added {
                    self.kids.remove(key);
                } else {
                    self.kids.set_state(key, St::Stopped);
                }
                ctx.snd(&reply, msg!["error", "start_failed", &id, Value::Array(reason.0)]);
            }
        }
    }

    fn on_started(&mut self, ctx: &mut Ctx<'_>, key: Key, gen: u64, port: PortId) {
        if !matches!(&self.waiting, Some(Wait::Start { key: k, gen: g, .. }) if *k == key && *g == gen) {
            return;
        }
        let Some(Wait::Start { why, .. }) = self.waiting.take() else { return };
        let Some(node) = self.kids.get(key).and_then(|c| c.state().node().cloned()) else { return };
        self.kids.set_state(key, St::Running { node: node.clone(), port: port.clone() });
        if let Some(c) = self.kids.get_mut(key) {
            c.since = Some(Instant::now());
            c.avoid = None;
        }
        let id = self.id(key);
        self.emit(ctx, EventKind::Started { id: id.clone(), port: port.clone(), node });
        if let Why::Request { reply, .. } = why {
            ctx.snd(&reply, msg!["ok", &id, &port]);
        }
    }

    fn on_start_timeout(&mut self, ctx: &mut Ctx<'_>, key: Key, gen: u64) {
        let Some(c) = self.kids.get(key) else { return };
        let (St::Starting { wrapper, .. }, true) = (c.state(), c.gen == gen) else { return };
        let wrapper = wrapper.clone();
        let limit = c.spec.start_timeout.unwrap_or_default();
        let reason = Reason(vec![
            Value::from("start_timeout"),
            Value::from(format!("the start was not confirmed within {}", secs_text(limit))),
        ]);
        ctx.kil(&wrapper, reason.clone());
        self.on_exit(ctx, key, gen, reason, true);
    }

    fn on_stop_timeout(&mut self, ctx: &mut Ctx<'_>, key: Key, gen: u64) {
        let Some(c) = self.kids.get(key) else { return };
        if let (true, St::Stopping { port, .. }) = (c.gen == gen, c.state()) {
            tracing::warn!(target: "aemp_supervisor", supervisor = %self.me, child = c.id(),
                "child did not stop in time: killed");
            ctx.kil(port, shutdown_reason("timeout"));
        }
    }

    fn on_stop_all_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let Some(Wait::StopAll { pending, .. }) = &self.waiting else { return };
        tracing::warn!(target: "aemp_supervisor", supervisor = %self.me, left = pending.len(),
            "children did not stop in time: killed");
        for k in pending {
            if let Some(p) = self.kids.get(*k).and_then(|c| c.state().port()) {
                ctx.kil(p, shutdown_reason("timeout"));
            }
        }
    }

    /// Queues stopping every child that is not stopped: last started
    /// first, or all at once for dynamic children.
    fn stop_all(&mut self) {
        let keys: Vec<Key> = self
            .kids
            .iter()
            .rev()
            .filter(|(_, c)| !matches!(c.state(), St::Stopped))
            .map(|(k, _)| k)
            .collect();
        if self.strategy == Strategy::SimpleOneForOne {
            self.ops.push_back(Op::StopAll { keys });
        } else {
            self.ops.extend(keys.into_iter().map(|key| Op::Stop { key }));
        }
    }

    fn exec(&mut self, ctx: &mut Ctx<'_>, op: Op) {
        match op {
            Op::Start { key, why } => self.start(ctx, key, why),
            Op::Stop { key } => {
                if let Some(gen) = self.ask_to_stop(ctx, key, None) {
                    self.waiting = Some(Wait::Stop { key, gen });
                }
            }
            Op::StopAll { keys } => {
                let mut pending = HashSet::new();
                let mut deadline = Some(Duration::ZERO);
                for key in keys {
                    if self.ask_to_stop(ctx, key, Some(&mut deadline)).is_some() {
                        pending.insert(key);
                    }
                }
                if !pending.is_empty() {
                    let timer = deadline
                        .filter(|d| !d.is_zero())
                        .map(|d| ctx.after(d, &self.me, msg!["stop_all_timeout"]));
                    self.waiting = Some(Wait::StopAll { pending, _deadline: timer });
                }
            }
            Op::Forget { key } => {
                if let Some(c) = self.kids.remove(key) {
                    self.emit(ctx, EventKind::Removed { id: c.spec.id });
                }
            }
            Op::Reply { to, msg } => ctx.snd(&to, msg),
            Op::Ack => {
                tracing::info!(target: "aemp_supervisor", supervisor = %self.me, "supervisor started");
                if let Some((port, mut m)) = self.ack.take() {
                    m.push(&self.me);
                    ctx.snd(&port, m);
                }
            }
            Op::Backoff { keys, delay } => {
                self.next_timer += 1;
                let seq = self.next_timer;
                let due = Instant::now() + delay;
                for &k in &keys {
                    self.kids.set_state(k, St::Backoff { seq, due });
                }
                let timer = ctx.after(delay, &self.me, msg!["backoff", seq]);
                self.timers.insert(seq, (keys, timer));
            }
            Op::Exit(reason) => {
                tracing::info!(target: "aemp_supervisor", supervisor = %self.me, %reason, "supervisor exiting");
                // Whoever waits for its start learns why it never will.
                if let Some((port, _)) = self.ack.take() {
                    ctx.snd(&port, msg!["failed", Value::Array(reason.0.clone())]);
                }
                // Dies from a message to itself: what it sent before (its
                // last events) is delivered before its monitors fire.
                self.exiting = Some(reason);
                ctx.snd(&self.me, msg!["die"]);
            }
        }
    }

    /// Asks a child to stop as its spec says; returns its generation when its
    /// exit is to be awaited. Each child's own timer kills it after its
    /// timeout, unless `shared` collects the longest timeout (`None` for
    /// infinity) for one timer over many.
    fn ask_to_stop(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: Key,
        shared: Option<&mut Option<Duration>>,
    ) -> Option<u64> {
        let c = self.kids.get(key)?;
        let gen = c.gen;
        let (node, port) = match c.state() {
            St::Running { node, port } => (node.clone(), port.clone()),
            St::Backoff { .. } => {
                self.cancel_restart(key);
                let id = self.id(key);
                self.emit(ctx, EventKind::Stopped { id, reason: shutdown_reason("restart cancelled") });
                return None;
            }
            St::Exited => {
                self.kids.set_state(key, St::Stopped);
                return None;
            }
            // Nothing to stop; nothing else is under way while an operation runs.
            St::Stopped | St::Starting { .. } | St::Stopping { .. } => return None,
        };
        if node != *self.node.id() && !self.node.up_nodes().contains(&node) {
            // Lost with its node: nothing is sent there.
            let reason = Reason::transport_error(node.as_str(), "node lost");
            if let Some(c) = self.kids.get_mut(key) {
                c.last_exit = Some(reason.clone());
            }
            self.stopped(ctx, key, reason, Some(node));
            return None;
        }
        let me = self.me.clone();
        let mut timer = None;
        match (c.spec.shutdown, shared) {
            (Shutdown::Kill, _) => ctx.kil(&port, shutdown_reason("killed by supervisor")),
            (Shutdown::Timeout(d), None) => {
                ctx.snd(&port, msg!["shutdown"]);
                timer = Some(ctx.after(d, &me, msg!["stop_timeout", key, gen]));
            }
            (Shutdown::Timeout(d), Some(longest)) => {
                ctx.snd(&port, msg!["shutdown"]);
                *longest = longest.map(|l| l.max(d));
            }
            (Shutdown::Infinity, shared) => {
                ctx.snd(&port, msg!["shutdown"]);
                if let Some(longest) = shared {
                    *longest = None;
                }
            }
        }
        tracing::debug!(target: "aemp_supervisor", supervisor = %me, child = c.id(), "stopping child");
        self.kids.set_state(key, St::Stopping { node, port, _deadline: timer });
        Some(gen)
    }

    /// Leaves a child that waits out a backoff delay stopped.
    fn cancel_restart(&mut self, key: Key) {
        if let Some(St::Backoff { seq, .. }) = self.kids.set_state(key, St::Stopped) {
            if self.timers.get(&seq).is_some_and(|(keys, _)| keys == &[key]) {
                self.timers.remove(&seq);
            }
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>, key: Key, why: Why) {
        let Some(c) = self.kids.get(key) else { return };
        if c.state().is_live() {
            if let Why::Request { reply, .. } = why {
                let status = c.state().status();
                ctx.snd(&reply, msg!["error", "not_stopped", c.id(), status.as_str()]);
            }
            return;
        }
        self.next_gen += 1;
        let gen = self.next_gen;
        let placed = self.choose_node(key);
        let me = self.me.clone();
        let Some(c) = self.kids.get_mut(key) else { return };
        c.gen = gen;
        self.waiting = Some(Wait::Start { key, gen, why });
        let node = match placed {
            Ok(n) => n,
            Err(text) => {
                let here = self.node.id().clone();
                self.kids.set_state(key, St::Starting { node: here, wrapper: me, _deadline: None });
                return self.on_exit(ctx, key, gen, Reason::die(text), false);
            }
        };
        let mut args = c.spec.args.clone();
        if c.spec.kind == ChildKind::Supervisor {
            if let Some(Value::Map(m)) = args.first_mut() {
                m.insert("parent".into(), Value::from(&me));
                m.insert("ack".into(), Value::from(msg![&me, "started", key, gen]));
            }
        }
        let mut wargs = msg![&me, key, gen, c.spec.kind == ChildKind::Worker, &c.spec.init];
        wargs.extend(args);
        tracing::debug!(target: "aemp_supervisor", supervisor = %me, child = c.id(), node = %node,
            init = %c.spec.init, "starting child");
        let limit = c.spec.start_timeout;
        let wrapper = ctx.spawn(&node, CHILD_INIT, wargs);
        ctx.mon(&wrapper, MonAction::send(&me, msg!["exit", key, gen])).keep();
        if node == *self.node.id() {
            self.local_wrappers.lock().unwrap_or_else(|e| e.into_inner()).insert(wrapper.clone());
            if let Some(c) = self.kids.get_mut(key) {
                c.local_wrapper = Some(wrapper.clone());
            }
        }
        let deadline = limit.map(|d| ctx.after(d, &me, msg!["start_timeout", key, gen]));
        self.kids.set_state(key, St::Starting { node, wrapper, _deadline: deadline });
    }

    fn choose_node(&mut self, key: Key) -> std::result::Result<NodeId, String> {
        let Some(c) = self.kids.get(key) else { return Err("no such child".into()) };
        match &c.spec.placement {
            Placement::Local => Ok(self.node.id().clone()),
            Placement::Node(n) => Ok(n.clone()),
            Placement::Group(g) => {
                let me = self.node.id();
                let up = self.node.up_nodes();
                let mut nodes: Vec<NodeId> = self
                    .node
                    .find_group(g)
                    .into_iter()
                    .map(|p| p.node())
                    .filter(|n| (n == me || up.contains(n)) && Some(n) != c.avoid.as_ref())
                    .collect();
                nodes.sort();
                nodes.dedup();
                let Some(least) = nodes.iter().map(|n| self.kids.load(n)).min() else {
                    return Err(format!("no node of group {g:?} is available"));
                };
                nodes.retain(|n| self.kids.load(n) == least);
                let i = self.rng.random_range(0..nodes.len());
                Ok(nodes.swap_remove(i))
            }
        }
    }

    fn backoff_due(&mut self, seq: u64) {
        let Some((keys, _timer)) = self.timers.remove(&seq) else { return };
        for key in keys {
            if matches!(self.kids.get(key).map(Child::state), Some(St::Backoff { seq: s, .. }) if *s == seq) {
                self.ops.push_back(Op::Start { key, why: Why::Restart });
            }
        }
    }

    fn decide(&mut self, ctx: &mut Ctx<'_>, key: Key, gen: u64) {
        let Some(c) = self.kids.get(key) else { return };
        if c.gen != gen || !matches!(c.state(), St::Exited) {
            return;
        }
        let reason = c.last_exit.clone().unwrap_or_default();
        let id = c.id().to_owned();
        // Only the children the strategy may touch are looked at.
        let group: Vec<Key> = match self.strategy {
            Strategy::OneForOne | Strategy::SimpleOneForOne => vec![key],
            Strategy::OneForAll => self.kids.iter().map(|(k, _)| k).collect(),
            Strategy::RestForOne => self.kids.keys_from(key).collect(),
        };
        let failed = group.iter().position(|k| *k == key).unwrap_or_default();
        let states: Vec<ChildState> = group
            .iter()
            .filter_map(|k| self.kids.get(*k))
            .map(|c| ChildState { restart: c.spec.restart, active: !matches!(c.state(), St::Stopped) })
            .collect();
        let now = self.epoch.elapsed();
        match decide(self.strategy, &states, failed, ExitKind::of(&reason), &mut self.window, now) {
            Decision::Leave(plan) => {
                if plan.remove.contains(&failed) {
                    self.kids.remove(key);
                    self.emit(ctx, EventKind::Removed { id });
                } else {
                    self.kids.set_state(key, St::Stopped);
                    self.emit(ctx, EventKind::LeftStopped { id });
                }
            }
            Decision::GiveUp { restarts } => {
                let lim = self.intensity;
                let text = format!(
                    "restart intensity exceeded: {restarts} restarts in {} (at most {} allowed)",
                    secs_text(lim.period),
                    lim.max_restarts
                );
                let r = Reason(vec![
                    Value::from(MAX_RESTARTS),
                    Value::from(&text),
                    Value::from(&id),
                    Value::Array(reason.0.clone()),
                ]);
                self.emit(ctx, EventKind::GaveUp { id, reason: r.clone() });
                self.ops.clear();
                self.stop_all();
                self.ops.push_back(Op::Exit(r));
            }
            Decision::Restart(plan) => {
                self.total_restarts += 1;
                let keys = |v: &[usize]| -> Vec<Key> { v.iter().map(|&i| group[i]).collect() };
                let (stop, start, remove) = (keys(&plan.stop), keys(&plan.start), keys(&plan.remove));
                for &k in &start {
                    if let Some(c) = self.kids.get_mut(k) {
                        c.total_restarts += 1;
                        c.recent.record(now);
                    }
                }
                let delay = match (self.backoff, self.kids.get_mut(key)) {
                    (Some(b), Some(c)) => {
                        let attempt = if c.ran.is_some_and(|r| r >= b.reset_after) { 0 } else { c.attempt };
                        c.attempt = attempt + 1;
                        Some(b.delay(attempt, self.rng.random::<f64>()))
                    }
                    _ => None,
                };
                let children = start.iter().map(|k| self.id(*k)).collect();
                self.emit(ctx, EventKind::Restarting { id, delay: delay.unwrap_or_default(), children });
                self.ops.extend(stop.into_iter().map(|key| Op::Stop { key }));
                self.ops.extend(remove.into_iter().map(|key| Op::Forget { key }));
                match delay {
                    Some(delay) => self.ops.push_back(Op::Backoff { keys: start, delay }),
                    None => {
                        self.ops.extend(start.into_iter().map(|key| Op::Start { key, why: Why::Restart }))
                    }
                }
            }
        }
    }

    /// The child a request names: an ID, or `{"port": port}`.
    fn resolve(&self, v: &Value) -> std::result::Result<Key, String> {
        if let Some(id) = v.as_str() {
            return self.kids.key(id).ok_or_else(|| id.to_owned());
        }
        let port = v.as_map().and_then(|m| m.get("port")).and_then(Value::as_str).unwrap_or_default();
        PortId::new(port).ok().and_then(|p| self.kids.key_of_port(&p)).ok_or_else(|| port.to_owned())
    }

    fn request(&mut self, ctx: &mut Ctx<'_>, m: Msg) {
        let tag = m.tag().unwrap_or_default().to_owned();
        if tag == "stop" || tag == "shutdown" {
            tracing::info!(target: "aemp_supervisor", supervisor = %self.me, "supervisor stopping");
            self.stop_all();
            if let Ok(reply) = m.port(1) {
                self.ops.push_back(Op::Reply { to: reply, msg: msg!["ok"] });
            }
            self.ops.push_back(Op::Exit(Reason::normal()));
            return;
        }
        let Some(Ok(reply)) = m.last().and_then(Value::as_str).map(PortId::new) else { return };
        if let Err((kind, detail)) = self.try_request(ctx, &tag, &m, &reply) {
            let mut answer = msg!["error", kind];
            answer.extend(detail);
            ctx.snd(&reply, answer);
        }
    }

    /// Queues the work for a request (its answer comes last), or says why
    /// it is refused: an error kind and its details.
    fn try_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        tag: &str,
        m: &Msg,
        reply: &PortId,
    ) -> std::result::Result<(), (&'static str, Vec<Value>)> {
        let simple = self.strategy == Strategy::SimpleOneForOne;
        let unsupported = |text: &str| ("unsupported", vec![Value::from(text)]);
        let arg = |i: usize| {
            m.at(i).map_err(|_| ("invalid", vec![Value::from(format!("{tag}: missing argument"))]))
        };
        match tag {
            "start_child" => {
                if simple {
                    return Err(unsupported(
                        "a simple_one_for_one supervisor makes children with start_dynamic",
                    ));
                }
                let spec = ChildSpec::from_value(arg(1)?)
                    .map_err(|e| ("invalid", vec![Value::from(e.to_string())]))?;
                self.add(spec, reply)
            }
            "start_dynamic" => {
                let Some(template) = &self.template else {
                    return Err(unsupported("start_dynamic needs a simple_one_for_one supervisor"));
                };
                let extra = arg(1)?
                    .as_array()
                    .ok_or(("invalid", vec![Value::from("the arguments must be an array")]))?;
                let mut spec = template.clone();
                spec.args.extend(extra.iter().cloned());
                if m.len() > 3 {
                    spec.placement = Placement::from_value(arg(2)?)
                        .map_err(|e| ("invalid", vec![Value::from(format!("placement {e}"))]))?;
                }
                self.next_dynamic += 1;
                spec.id = format!("{}-{}", template.id, self.next_dynamic);
                self.add(spec, reply)
            }
            "terminate_child" | "remove_child" => {
                let key = self.resolve(arg(1)?).map_err(|d| ("no_such_child", vec![Value::from(d)]))?;
                let Some(c) = self.kids.get(key) else { return Ok(()) };
                let id = c.id().to_owned();
                // OTP forgets temporary and dynamic children once terminated.
                let forget = tag == "remove_child" || simple || c.spec.restart == Restart::Temporary;
                self.ops.push_back(Op::Stop { key });
                if forget {
                    self.ops.push_back(Op::Forget { key });
                }
                self.ops.push_back(Op::Reply { to: reply.clone(), msg: msg!["ok", id] });
                Ok(())
            }
            "restart_child" | "delete_child" => {
                if simple {
                    return Err(unsupported(
                        "dynamic children are removed with terminate_child or remove_child",
                    ));
                }
                let id = arg(1)?.as_str().unwrap_or_default();
                let key = self.kids.key(id).ok_or(("no_such_child", vec![Value::from(id)]))?;
                let status = self.kids.get(key).map(|c| c.state().status()).unwrap_or(ChildStatus::Stopped);
                if status != ChildStatus::Stopped {
                    return Err(("not_stopped", vec![Value::from(id), Value::from(status.as_str())]));
                }
                if tag == "restart_child" {
                    self.ops.push_back(Op::Start {
                        key,
                        why: Why::Request { reply: reply.clone(), added: false },
                    });
                } else {
                    self.kids.remove(key);
                    self.emit(ctx, EventKind::Removed { id: id.to_owned() });
                    ctx.snd(reply, msg!["ok", id]);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Adds a child at run time and queues its start.
    fn add(
        &mut self,
        spec: ChildSpec,
        reply: &PortId,
    ) -> std::result::Result<(), (&'static str, Vec<Value>)> {
        spec.check().map_err(|e| ("invalid", vec![Value::from(e.to_string())]))?;
        if let Some(max) = self.max_children.filter(|max| self.kids.len() >= *max) {
            return Err(("max_children", vec![Value::from(max)]));
        }
        let id = spec.id.clone();
        let key =
            self.kids.insert(Child::new(spec, self.intensity)).ok_or(("duplicate", vec![Value::from(id)]))?;
        self.ops.push_back(Op::Start { key, why: Why::Request { reply: reply.clone(), added: true } });
        Ok(())
    }

    fn counts(&self) -> ChildCounts {
        let specs = self.kids.len();
        let supervisors = self.kids.supervisors();
        ChildCounts { specs, active: self.kids.running(), supervisors, workers: specs - supervisors }
    }

    /// The `which_children` answer.
    fn info(&self) -> Value {
        let now = self.epoch.elapsed();
        let mut m = Map::new();
        m.insert("supervisor".into(), Value::from(&self.me));
        m.insert("node".into(), Value::from(self.node.id()));
        m.insert("strategy".into(), Value::from(self.strategy.as_str()));
        m.insert("parent".into(), Value::from(self.parent.clone()));
        m.insert("max_restarts".into(), Value::from(self.intensity.max_restarts));
        m.insert("period".into(), Value::from(self.intensity.period.as_secs_f64()));
        m.insert("recent_restarts".into(), Value::from(self.window.count(now)));
        m.insert("total_restarts".into(), Value::from(self.total_restarts));
        let children = self
            .kids
            .iter()
            .map(|(_, c)| {
                let st = c.state();
                let next = match st {
                    St::Backoff { due, .. } => {
                        Some(due.saturating_duration_since(Instant::now()).as_secs_f64())
                    }
                    _ => None,
                };
                let mut cm = Map::new();
                cm.insert("id".into(), Value::from(c.id()));
                cm.insert("init".into(), Value::from(&c.spec.init));
                cm.insert("kind".into(), Value::from(c.spec.kind.as_str()));
                cm.insert("restart".into(), Value::from(c.spec.restart.as_str()));
                cm.insert("status".into(), Value::from(st.status().as_str()));
                cm.insert("port".into(), Value::from(st.port().cloned()));
                cm.insert("node".into(), Value::from(st.node().cloned()));
                cm.insert("recent_restarts".into(), Value::from(c.recent.count(now)));
                cm.insert("total_restarts".into(), Value::from(c.total_restarts));
                cm.insert("next_attempt_in".into(), Value::from(next));
                cm.insert("last_exit".into(), Value::from(c.last_exit.clone().map(|r| Value::Array(r.0))));
                Value::Map(cm)
            })
            .collect();
        m.insert("children".into(), Value::Array(children));
        Value::Map(m)
    }
}

//! The supervisor port, the child wrapper, and the handle that talks to a
//! supervisor.
//!
//! Everything a supervisor learns arrives as a message to its port: child
//! exits (its monitors send them), start confirmations (from the wrapper),
//! timers and requests. It runs one operation at a time (start a child and
//! wait for its confirmation, stop a child and wait for its exit) and holds
//! back further decisions until the current one is done, as an OTP
//! supervisor does while it restarts.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use aemp::{msg, Ctx, Map, MonAction, Msg, Node, NodeId, PortId, Reason, TimerGuard, Value};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::intensity::{Backoff, Intensity, RestartWindow};
use crate::spec::{ChildKind, ChildSpec, Placement, Restart, Shutdown, SupervisorSpec, SUPERVISOR_INIT};
use crate::strategy::{decide, ChildState, Decision, ExitKind, Strategy};

/// The init function of the wrapper port that links a child to its
/// supervisor (registered by [`install`]).
pub const CHILD_INIT: &str = "aemp_supervisor::child";

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
/// every node of this process. [`Supervisor::start`] calls it; a process
/// whose nodes only host children (or child supervisors) must call it once.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        aemp::register_init(SUPERVISOR_INIT, supervisor_init);
        aemp::register_init(CHILD_INIT, child_init);
    });
}

/// `("shutdown", text)`.
fn shutdown_reason(text: impl Into<String>) -> Reason {
    Reason(vec![Value::from("shutdown"), Value::from(text.into())])
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

// ---------------------------------------------------------------------------
// The wrapper: links a child to its supervisor, confirms its start.

/// `aemp_supervisor::child`: args `[supervisor, child ID, generation, ack?,
/// init, user args...]`.
///
/// The wrapper port W monitors the supervisor (and dies with it), starts the
/// user's init function in a new port C on this node, and links W and C both
/// ways: C dies when W dies abnormally, W dies with C's reason whenever C
/// dies. The supervisor monitors W. When C survived its init, W sends the
/// supervisor `["started", id, generation, C]`; when it did not,
/// `["start_failed", id, generation, reason...]`.
fn child_init(ctx: &mut Ctx<'_>, args: Msg) -> aemp::Result<()> {
    let sup = args.port(0)?;
    let id: String = args.get(1)?;
    let gen: u64 = args.get(2)?;
    let self_ack: bool = args.get(3)?;
    let init = args.str(4)?.to_owned();
    let user_args = args.rest(5);
    let me = ctx.self_id();
    // Stray messages are ignored rather than killing the link.
    ctx.rcv(&me, |_ctx, _m| {});
    ctx.rcv_tag(&me, "child_exit", |ctx, m| ctx.kil_self(Reason::from(m)));
    let sup_text = sup.to_string();
    ctx.rcv_tag(&me, "parent_exit", move |ctx, m| {
        let r = if m.is_empty() {
            shutdown_reason(format!("supervisor {sup_text} exited"))
        } else {
            Reason::from(m)
        };
        ctx.kil_self(r);
    });
    // The back-monitor, cancelled when this wrapper dies.
    let back = ctx.mon(&sup, MonAction::send(&me, msg!["parent_exit"]));
    ctx.mon_guard(&me, back).keep();
    let node = ctx.node_id().clone();
    let child = ctx.spawn(&node, &init, user_args);
    // A local spawn has run the init function by now: a child that died in
    // it is gone, and a monitor on it fires at once with its reason.
    let early: Arc<Mutex<Option<Reason>>> = Arc::new(Mutex::new(None));
    let slot = early.clone();
    let probe = ctx.mon(&child, move |r: Reason| {
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    });
    let died = early.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(r) = died {
        let mut m = msg!["start_failed", &id, gen];
        m.extend(r.0.clone());
        ctx.snd(&sup, m);
        ctx.kil_self(r);
        return Ok(());
    }
    drop(probe);
    ctx.mon(&child, MonAction::send(&me, msg!["child_exit"])).keep();
    ctx.mon(&me, &child).keep();
    if self_ack {
        ctx.snd(&sup, msg!["started", &id, gen, &child]);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The supervisor port.

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
        children = sup.children.len(), "supervisor starting");
    if sup.strategy != Strategy::SimpleOneForOne {
        for c in &sup.children {
            sup.ops.push_back(Op::Start { id: c.spec.id.clone(), why: Why::Boot });
        }
    }
    sup.ops.push_back(Op::Ack);
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

struct Child {
    spec: ChildSpec,
    /// Counts starts: messages about an older start are ignored.
    gen: u64,
    state: St,
    restarts: u32,
    /// Backoff attempts since the child last ran for a whole period.
    attempt: u32,
    last_exit: Option<Reason>,
    /// A node just lost: not a candidate for the next start.
    avoid: Option<NodeId>,
    since: Option<Instant>,
    /// How long it ran before its last exit.
    ran: Option<Duration>,
}

enum St {
    /// Not running and not meant to (never started, or left stopped).
    Stopped,
    Starting {
        node: NodeId,
    },
    Running {
        node: NodeId,
        port: PortId,
    },
    Stopping {
        node: NodeId,
        port: PortId,
        _timer: Option<TimerGuard>,
    },
    /// Exited; the decision is pending.
    Exited,
    /// Waiting out a backoff delay before its restart.
    Backoff {
        seq: u64,
    },
}

impl Child {
    fn new(spec: ChildSpec) -> Child {
        Child {
            spec,
            gen: 0,
            state: St::Stopped,
            restarts: 0,
            attempt: 0,
            last_exit: None,
            avoid: None,
            since: None,
            ran: None,
        }
    }

    fn node(&self) -> Option<&NodeId> {
        match &self.state {
            St::Starting { node } | St::Running { node, .. } | St::Stopping { node, .. } => Some(node),
            _ => None,
        }
    }

    fn port(&self) -> Option<&PortId> {
        match &self.state {
            St::Running { port, .. } | St::Stopping { port, .. } => Some(port),
            _ => None,
        }
    }

    fn status(&self) -> ChildStatus {
        match self.state {
            St::Stopped => ChildStatus::Stopped,
            St::Starting { .. } => ChildStatus::Starting,
            St::Running { .. } => ChildStatus::Running,
            St::Stopping { .. } => ChildStatus::Stopping,
            St::Exited => ChildStatus::Exited,
            St::Backoff { .. } => ChildStatus::Backoff,
        }
    }
}

enum Why {
    /// An initial child: a failure aborts the supervisor.
    Boot,
    /// A restart: a failure counts as another exit.
    Restart,
    /// A run-time request: a failure is the requester's answer.
    Request(PortId),
}

enum Op {
    Start { id: String, why: Why },
    Stop { id: String },
    Forget { id: String },
    Reply { to: PortId, msg: Msg },
    Ack,
    Backoff { ids: Vec<String>, delay: Duration },
    Exit(Reason),
}

enum Wait {
    Start { id: String, gen: u64, why: Why },
    Stop { id: String, gen: u64 },
}

enum Event {
    Exit { id: String, gen: u64 },
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
    children: Vec<Child>,
    window: RestartWindow,
    epoch: Instant,
    next_gen: u64,
    next_dynamic: u64,
    next_seq: u64,
    timers: HashMap<u64, (Vec<String>, TimerGuard)>,
    ops: VecDeque<Op>,
    events: VecDeque<Event>,
    waiting: Option<Wait>,
    ack: Option<(PortId, Msg)>,
    parent: Option<PortId>,
    observer: Option<PortId>,
    restarts: u64,
    exiting: bool,
}

impl Sup {
    fn new(
        ctx: &mut Ctx<'_>,
        spec: SupervisorSpec,
        ack: Option<(PortId, Msg)>,
        parent: Option<PortId>,
    ) -> Sup {
        let (template, children) = if spec.strategy == Strategy::SimpleOneForOne {
            (spec.children.first().cloned(), Vec::new())
        } else {
            (None, spec.children.into_iter().map(Child::new).collect())
        };
        Sup {
            me: ctx.self_id(),
            node: ctx.node(),
            strategy: spec.strategy,
            intensity: spec.intensity,
            backoff: spec.backoff,
            template,
            children,
            window: RestartWindow::new(spec.intensity),
            epoch: Instant::now(),
            next_gen: 0,
            next_dynamic: 0,
            next_seq: 0,
            timers: HashMap::new(),
            ops: VecDeque::new(),
            events: VecDeque::new(),
            waiting: None,
            ack,
            parent,
            observer: spec.observer,
            restarts: 0,
            exiting: false,
        }
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }

    fn observe(&self, ctx: &mut Ctx<'_>, m: Msg) {
        if let Some(o) = &self.observer {
            ctx.snd(o, m);
        }
    }

    fn handle(&mut self, ctx: &mut Ctx<'_>, m: Msg) {
        if self.exiting {
            return;
        }
        match m.tag() {
            Some("boot") => {}
            Some("exit") | Some("start_failed") => {
                if let (Ok(id), Ok(gen)) = (m.str(1), m.get::<u64>(2)) {
                    self.on_exit(ctx, id.to_owned(), gen, Reason::from(m.rest(3)));
                }
            }
            Some("started") => {
                if let (Ok(id), Ok(gen), Ok(port)) = (m.str(1), m.get::<u64>(2), m.port(3)) {
                    self.on_started(ctx, id.to_owned(), gen, port);
                }
            }
            Some("stop_timeout") => {
                if let (Ok(id), Ok(gen)) = (m.str(1), m.get::<u64>(2)) {
                    self.on_stop_timeout(ctx, id, gen);
                }
            }
            Some("backoff") => {
                if let Ok(seq) = m.get::<u64>(1) {
                    self.events.push_back(Event::BackoffDue(seq));
                }
            }
            Some("which_children") => {
                if let Ok(reply) = m.port(1) {
                    ctx.snd(&reply, Msg::from_array([self.info()]));
                }
            }
            Some("start_child" | "start_dynamic" | "remove_child" | "stop" | "shutdown") => {
                self.events.push_back(Event::Request(m));
            }
            other => {
                tracing::debug!(target: "aemp_supervisor", supervisor = %self.me, tag = ?other,
                    "unknown message ignored");
            }
        }
        self.pump(ctx);
    }

    /// Runs operations, then held-back events, until one has to wait.
    fn pump(&mut self, ctx: &mut Ctx<'_>) {
        while self.waiting.is_none() && !self.exiting {
            if let Some(op) = self.ops.pop_front() {
                self.exec(ctx, op);
            } else if let Some(ev) = self.events.pop_front() {
                self.event(ctx, ev);
            } else {
                break;
            }
        }
    }

    fn on_exit(&mut self, ctx: &mut Ctx<'_>, id: String, gen: u64, reason: Reason) {
        let Some(i) = self.find(&id) else { return };
        let c = &mut self.children[i];
        if c.gen != gen || !matches!(c.state, St::Starting { .. } | St::Running { .. } | St::Stopping { .. })
        {
            return;
        }
        if let Some(n) = lost_node(&reason) {
            c.avoid = Some(n);
        }
        c.ran = c.since.take().map(|s| s.elapsed());
        c.last_exit = Some(reason.clone());
        let node = c.node().cloned();
        c.state = St::Exited;
        match self.waiting.take() {
            Some(Wait::Start { id: wid, gen: wg, why }) if wid == id && wg == gen => {
                self.failed_start(ctx, i, why, reason);
            }
            Some(Wait::Stop { id: wid, gen: wg }) if wid == id && wg == gen => {
                self.children[i].state = St::Stopped;
                tracing::info!(target: "aemp_supervisor", supervisor = %self.me, child = %id,
                    node = ?node.as_ref().map(NodeId::as_str), %reason, "child stopped");
                self.observe(ctx, msg!["stopped", &self.me, &id, Value::Array(reason.0)]);
            }
            other => {
                self.waiting = other;
                tracing::warn!(target: "aemp_supervisor", supervisor = %self.me, child = %id,
                    node = ?node.as_ref().map(NodeId::as_str), %reason, "child exited");
                self.events.push_back(Event::Exit { id, gen });
            }
        }
    }

    fn failed_start(&mut self, ctx: &mut Ctx<'_>, i: usize, why: Why, reason: Reason) {
        let id = self.children[i].spec.id.clone();
        let gen = self.children[i].gen;
        tracing::warn!(target: "aemp_supervisor", supervisor = %self.me, child = %id, %reason,
            "child failed to start");
        self.observe(ctx, msg!["start_failed", &self.me, &id, Value::Array(reason.0.clone())]);
        match why {
            Why::Boot => {
                self.children[i].state = St::Stopped;
                self.ops.clear();
                self.events.clear();
                self.stop_all();
                let r = Reason(vec![Value::from(START_FAILED), Value::from(&id), Value::Array(reason.0)]);
                self.ops.push_back(Op::Exit(r));
            }
            Why::Restart => {
                // Counts as another exit of the child.
                self.events.push_back(Event::Exit { id, gen });
            }
            Why::Request(reply) => {
                self.children.remove(i);
                let mut m = msg!["error", "start_failed", &id];
                m.push(Value::Array(reason.0));
                ctx.snd(&reply, m);
            }
        }
    }

    fn on_started(&mut self, ctx: &mut Ctx<'_>, id: String, gen: u64, port: PortId) {
        if !matches!(&self.waiting, Some(Wait::Start { id: wid, gen: wg, .. }) if *wid == id && *wg == gen) {
            return;
        }
        let Some(Wait::Start { why, .. }) = self.waiting.take() else { return };
        let Some(i) = self.find(&id) else { return };
        let c = &mut self.children[i];
        let St::Starting { node } = &c.state else { return };
        let node = node.clone();
        c.state = St::Running { node: node.clone(), port: port.clone() };
        c.since = Some(Instant::now());
        c.avoid = None;
        tracing::info!(target: "aemp_supervisor", supervisor = %self.me, child = %id, port = %port,
            node = %node, restarts = c.restarts, "child started");
        self.observe(ctx, msg!["started", &self.me, &id, &port, &node]);
        if let Why::Request(reply) = why {
            ctx.snd(&reply, msg!["ok", &id, &port]);
        }
    }

    fn on_stop_timeout(&mut self, ctx: &mut Ctx<'_>, id: &str, gen: u64) {
        let Some(i) = self.find(id) else { return };
        let c = &self.children[i];
        if let (true, St::Stopping { port, .. }) = (c.gen == gen, &c.state) {
            tracing::warn!(target: "aemp_supervisor", supervisor = %self.me, child = %id,
                "child did not stop in time: killed");
            ctx.kil(port, shutdown_reason("timeout"));
        }
    }

    /// Queues stopping every active child, last started first.
    fn stop_all(&mut self) {
        for c in self.children.iter().rev() {
            if !matches!(c.state, St::Stopped) {
                self.ops.push_back(Op::Stop { id: c.spec.id.clone() });
            }
        }
    }

    fn reply_error(ctx: &mut Ctx<'_>, to: &PortId, kind: &str, detail: impl Into<Value>) {
        ctx.snd(to, msg!["error", kind, detail.into()]);
    }

    fn exec(&mut self, ctx: &mut Ctx<'_>, op: Op) {
        match op {
            Op::Start { id, why } => self.start(ctx, id, why),
            Op::Stop { id } => self.stop(ctx, id),
            Op::Forget { id } => {
                if let Some(i) = self.find(&id) {
                    self.children.remove(i);
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
            Op::Backoff { ids, delay } => {
                self.next_seq += 1;
                let seq = self.next_seq;
                for id in &ids {
                    if let Some(i) = self.find(id) {
                        self.children[i].state = St::Backoff { seq };
                    }
                }
                let timer = ctx.after(delay, &self.me, msg!["backoff", seq]);
                self.timers.insert(seq, (ids, timer));
            }
            Op::Exit(reason) => {
                self.exiting = true;
                tracing::info!(target: "aemp_supervisor", supervisor = %self.me, %reason, "supervisor exiting");
                ctx.kil_self(reason);
            }
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>, id: String, why: Why) {
        let Some(i) = self.find(&id) else {
            if let Why::Request(r) = why {
                Self::reply_error(ctx, &r, "no_such_child", &id);
            }
            return;
        };
        if !matches!(self.children[i].state, St::Stopped | St::Exited | St::Backoff { .. }) {
            if let (Why::Request(r), Some(p)) = (&why, self.children[i].port()) {
                ctx.snd(r, msg!["ok", &id, p]);
            }
            return;
        }
        self.next_gen += 1;
        let gen = self.next_gen;
        let placed = self.choose_node(i);
        let me = self.me.clone();
        let c = &mut self.children[i];
        c.gen = gen;
        self.waiting = Some(Wait::Start { id: id.clone(), gen, why });
        let node = match placed {
            Ok(n) => n,
            Err(text) => {
                c.state = St::Starting { node: self.node.id().clone() };
                ctx.snd(&me, msg!["start_failed", &id, gen, "die", text]);
                return;
            }
        };
        let mut args = c.spec.args.clone();
        if c.spec.kind == ChildKind::Supervisor {
            if let Some(Value::Map(m)) = args.first_mut() {
                m.insert("parent".into(), Value::from(&me));
                m.insert("ack".into(), Value::from(msg![&me, "started", &id, gen]));
            }
        }
        let mut wargs = msg![&me, &id, gen, c.spec.kind == ChildKind::Worker, &c.spec.init];
        wargs.extend(args);
        c.state = St::Starting { node: node.clone() };
        tracing::debug!(target: "aemp_supervisor", supervisor = %me, child = %id, node = %node,
            init = %c.spec.init, "starting child");
        let w = ctx.spawn(&node, CHILD_INIT, wargs);
        ctx.mon(&w, MonAction::send(&me, msg!["exit", &id, gen])).keep();
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>, id: String) {
        let Some(i) = self.find(&id) else { return };
        let me = self.me.clone();
        let c = &mut self.children[i];
        let gen = c.gen;
        match std::mem::replace(&mut c.state, St::Stopped) {
            St::Running { node, port } => {
                let timer = match c.spec.shutdown {
                    Shutdown::Kill => {
                        ctx.kil(&port, shutdown_reason("killed by supervisor"));
                        None
                    }
                    Shutdown::Timeout(d) => {
                        ctx.snd(&port, msg!["shutdown"]);
                        Some(ctx.after(d, &me, msg!["stop_timeout", &id, gen]))
                    }
                    Shutdown::Infinity => {
                        ctx.snd(&port, msg!["shutdown"]);
                        None
                    }
                };
                tracing::debug!(target: "aemp_supervisor", supervisor = %me, child = %id, "stopping child");
                c.state = St::Stopping { node, port, _timer: timer };
                self.waiting = Some(Wait::Stop { id, gen });
            }
            other @ (St::Starting { .. } | St::Stopping { .. }) => c.state = other,
            St::Stopped | St::Exited | St::Backoff { .. } => {}
        }
    }

    fn choose_node(&self, i: usize) -> std::result::Result<NodeId, String> {
        let c = &self.children[i];
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
                let load = |n: &NodeId| self.children.iter().filter(|c| c.node() == Some(n)).count();
                let Some(least) = nodes.iter().map(load).min() else {
                    return Err(format!("no node of group {g:?} is available"));
                };
                nodes.retain(|n| load(n) == least);
                Ok(nodes[rand::random_range(0..nodes.len())].clone())
            }
        }
    }

    fn event(&mut self, ctx: &mut Ctx<'_>, ev: Event) {
        match ev {
            Event::Exit { id, gen } => self.decide(ctx, id, gen),
            Event::BackoffDue(seq) => {
                let Some((ids, _timer)) = self.timers.remove(&seq) else { return };
                for id in ids {
                    if let Some(i) = self.find(&id) {
                        if matches!(self.children[i].state, St::Backoff { seq: s } if s == seq) {
                            self.ops.push_back(Op::Start { id, why: Why::Restart });
                        }
                    }
                }
            }
            Event::Request(m) => self.request(ctx, m),
        }
    }

    fn decide(&mut self, ctx: &mut Ctx<'_>, id: String, gen: u64) {
        let Some(i) = self.find(&id) else { return };
        if self.children[i].gen != gen || !matches!(self.children[i].state, St::Exited) {
            return;
        }
        let reason = self.children[i].last_exit.clone().unwrap_or_default();
        let states: Vec<ChildState> = self
            .children
            .iter()
            .map(|c| ChildState { restart: c.spec.restart, active: !matches!(c.state, St::Stopped) })
            .collect();
        let now = self.epoch.elapsed();
        let me = self.me.clone();
        let why = Value::Array(reason.0.clone());
        match decide(self.strategy, &states, i, ExitKind::of(&reason), &mut self.window, now) {
            Decision::Leave(plan) => {
                let removed = plan.remove.contains(&i);
                if removed {
                    self.children.remove(i);
                } else {
                    self.children[i].state = St::Stopped;
                }
                let outcome = if removed { "removed" } else { "stopped" };
                tracing::info!(target: "aemp_supervisor", supervisor = %me, child = %id, %reason, outcome,
                    "child not restarted");
                self.observe(ctx, msg!["exited", &me, &id, why, outcome]);
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
                    why.clone(),
                ]);
                tracing::error!(target: "aemp_supervisor", supervisor = %me, child = %id, %reason,
                    "{text}: giving up");
                self.observe(ctx, msg!["exited", &me, &id, why, "give_up"]);
                self.observe(ctx, msg!["gave_up", &me, "", Value::Array(r.0.clone())]);
                self.ops.clear();
                self.stop_all();
                self.ops.push_back(Op::Exit(r));
            }
            Decision::Restart(plan) => {
                self.restarts += 1;
                let ids = |v: &[usize]| -> Vec<String> {
                    v.iter().map(|&k| self.children[k].spec.id.clone()).collect()
                };
                let (stop, start, remove) = (ids(&plan.stop), ids(&plan.start), ids(&plan.remove));
                for &k in &plan.start {
                    self.children[k].restarts += 1;
                }
                let delay = self.backoff.map(|b| {
                    let c = &mut self.children[i];
                    let attempt =
                        if c.ran.is_some_and(|r| r >= self.intensity.period) { 0 } else { c.attempt };
                    c.attempt = attempt + 1;
                    b.delay(attempt, rand::random::<f64>())
                });
                tracing::info!(target: "aemp_supervisor", supervisor = %me, child = %id, %reason,
                    strategy = %self.strategy, restart = ?start, stop = ?stop,
                    delay = ?delay, "restarting");
                match delay {
                    Some(d) => {
                        self.observe(ctx, msg!["exited", &me, &id, why, "restart_after", d.as_secs_f64()])
                    }
                    None => self.observe(ctx, msg!["exited", &me, &id, why, "restart"]),
                }
                for s in stop {
                    self.ops.push_back(Op::Stop { id: s });
                }
                for r in remove {
                    self.ops.push_back(Op::Forget { id: r });
                }
                match delay {
                    Some(delay) => self.ops.push_back(Op::Backoff { ids: start, delay }),
                    None => {
                        for s in start {
                            self.ops.push_back(Op::Start { id: s, why: Why::Restart });
                        }
                    }
                }
            }
        }
    }

    fn request(&mut self, ctx: &mut Ctx<'_>, m: Msg) {
        match m.tag() {
            Some("start_child") => {
                let Ok(reply) = m.port(2) else { return };
                let spec = match m.at(1).map_err(Error::from).and_then(ChildSpec::from_value) {
                    Ok(s) => s,
                    Err(e) => return Self::reply_error(ctx, &reply, "invalid", e.to_string()),
                };
                if self.strategy == Strategy::SimpleOneForOne {
                    return Self::reply_error(
                        ctx,
                        &reply,
                        "unsupported",
                        "a simple_one_for_one supervisor makes children with start_dynamic",
                    );
                }
                self.add_and_start(ctx, spec, reply);
            }
            Some("start_dynamic") => {
                let Ok(reply) = m.port(2) else { return };
                let Some(template) = &self.template else {
                    return Self::reply_error(
                        ctx,
                        &reply,
                        "unsupported",
                        "start_dynamic needs a simple_one_for_one supervisor",
                    );
                };
                let Some(extra) = m.at(1).ok().and_then(Value::as_array) else {
                    return Self::reply_error(ctx, &reply, "invalid", "the arguments must be an array");
                };
                self.next_dynamic += 1;
                let mut spec = template.clone();
                spec.id = format!("{}-{}", template.id, self.next_dynamic);
                spec.args.extend(extra.iter().cloned());
                self.add_and_start(ctx, spec, reply);
            }
            Some("remove_child") => {
                let (Ok(id), Ok(reply)) = (m.str(1), m.port(2)) else { return };
                if self.find(id).is_none() {
                    return Self::reply_error(ctx, &reply, "no_such_child", id);
                }
                self.ops.push_back(Op::Stop { id: id.to_owned() });
                self.ops.push_back(Op::Forget { id: id.to_owned() });
                self.ops.push_back(Op::Reply { to: reply, msg: msg!["ok", id] });
            }
            Some("stop") | Some("shutdown") => {
                tracing::info!(target: "aemp_supervisor", supervisor = %self.me, "supervisor stopping");
                self.stop_all();
                if let Ok(reply) = m.port(1) {
                    self.ops.push_back(Op::Reply { to: reply, msg: msg!["ok"] });
                }
                self.ops.push_back(Op::Exit(Reason::normal()));
            }
            _ => {}
        }
    }

    fn add_and_start(&mut self, ctx: &mut Ctx<'_>, spec: ChildSpec, reply: PortId) {
        if let Err(e) = spec.check() {
            return Self::reply_error(ctx, &reply, "invalid", e.to_string());
        }
        if self.find(&spec.id).is_some() {
            return Self::reply_error(ctx, &reply, "duplicate", &spec.id);
        }
        let id = spec.id.clone();
        self.children.push(Child::new(spec));
        self.ops.push_back(Op::Start { id, why: Why::Request(reply) });
    }

    /// The `which_children` answer.
    fn info(&self) -> Value {
        let mut m = Map::new();
        m.insert("supervisor".into(), Value::from(&self.me));
        m.insert("node".into(), Value::from(self.node.id()));
        m.insert("strategy".into(), Value::from(self.strategy.as_str()));
        m.insert("parent".into(), Value::from(self.parent.clone()));
        m.insert("max_restarts".into(), Value::from(self.intensity.max_restarts));
        m.insert("period".into(), Value::from(self.intensity.period.as_secs_f64()));
        m.insert("restarts".into(), Value::from(self.restarts));
        let children = self
            .children
            .iter()
            .map(|c| {
                let mut cm = Map::new();
                cm.insert("id".into(), Value::from(&c.spec.id));
                cm.insert("init".into(), Value::from(&c.spec.init));
                cm.insert("kind".into(), Value::from(c.spec.kind.as_str()));
                cm.insert("restart".into(), Value::from(c.spec.restart.as_str()));
                cm.insert("status".into(), Value::from(c.status().as_str()));
                cm.insert("port".into(), Value::from(c.port().cloned()));
                cm.insert("node".into(), Value::from(c.node().cloned()));
                cm.insert("restarts".into(), Value::from(c.restarts));
                cm.insert("last_exit".into(), Value::from(c.last_exit.clone().map(|r| Value::Array(r.0))));
                Value::Map(cm)
            })
            .collect();
        m.insert("children".into(), Value::Array(children));
        Value::Map(m)
    }
}

// ---------------------------------------------------------------------------
// Introspection data.

/// A child's state, as [`Supervisor::which_children`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChildStatus {
    /// Spawned; its start is not confirmed yet.
    Starting,
    /// Running.
    Running,
    /// Being stopped by the supervisor.
    Stopping,
    /// Exited; the supervisor has not decided about it yet.
    Exited,
    /// Waiting out a backoff delay before its restart.
    Backoff,
    /// Not running, and not to be restarted (until asked).
    Stopped,
}

impl ChildStatus {
    /// The wire name (`"running"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ChildStatus::Starting => "starting",
            ChildStatus::Running => "running",
            ChildStatus::Stopping => "stopping",
            ChildStatus::Exited => "exited",
            ChildStatus::Backoff => "backoff",
            ChildStatus::Stopped => "stopped",
        }
    }

    fn from_name(s: &str) -> Option<ChildStatus> {
        Some(match s {
            "starting" => ChildStatus::Starting,
            "running" => ChildStatus::Running,
            "stopping" => ChildStatus::Stopping,
            "exited" => ChildStatus::Exited,
            "backoff" => ChildStatus::Backoff,
            "stopped" => ChildStatus::Stopped,
            _ => return None,
        })
    }
}

/// One child of a supervisor.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChildInfo {
    /// Its ID.
    pub id: String,
    /// Its init function.
    pub init: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: Restart,
    /// What it is doing.
    pub status: ChildStatus,
    /// Its port, while it runs.
    pub port: Option<PortId>,
    /// Its node, while it runs or starts.
    pub node: Option<NodeId>,
    /// How often it was restarted.
    pub restarts: u32,
    /// The reason of its last exit.
    pub last_exit: Option<Reason>,
}

/// A supervisor and its children, as [`Supervisor::info`] reports it (and
/// the `["which_children", reply]` message answers, as a map).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SupervisorInfo {
    /// The supervisor's port.
    pub port: PortId,
    /// Its strategy.
    pub strategy: Strategy,
    /// The supervisor that started it, if it is a child.
    pub parent: Option<PortId>,
    /// Its restart intensity.
    pub intensity: Intensity,
    /// Restart decisions so far.
    pub restarts: u64,
    /// The children in start order.
    pub children: Vec<ChildInfo>,
}

impl SupervisorInfo {
    /// Reads the map a supervisor answers `which_children` with.
    ///
    /// # Errors
    /// [`Error::BadReply`] naming the missing or malformed key.
    pub fn from_value(v: &Value) -> Result<SupervisorInfo> {
        let m = v.as_map().ok_or_else(|| bad_reply("which_children answer is not a map"))?;
        let s = |m: &Map, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let port =
            s(m, "supervisor").and_then(|p| PortId::new(p).ok()).ok_or_else(|| bad_reply("supervisor"))?;
        let strategy =
            s(m, "strategy").and_then(|x| Strategy::from_name(&x)).ok_or_else(|| bad_reply("strategy"))?;
        let parent = s(m, "parent").and_then(|p| PortId::new(p).ok());
        let max_restarts = m.get("max_restarts").and_then(Value::as_u64).unwrap_or(0) as u32;
        let period = m
            .get("period")
            .and_then(Value::as_f64)
            .and_then(|x| Duration::try_from_secs_f64(x).ok())
            .unwrap_or_default();
        let restarts = m.get("restarts").and_then(Value::as_u64).unwrap_or(0);
        let list = m.get("children").and_then(Value::as_array).ok_or_else(|| bad_reply("children"))?;
        let mut children = Vec::with_capacity(list.len());
        for c in list {
            let cm = c.as_map().ok_or_else(|| bad_reply("child is not a map"))?;
            children.push(ChildInfo {
                id: s(cm, "id").ok_or_else(|| bad_reply("child id"))?,
                init: s(cm, "init").unwrap_or_default(),
                kind: if s(cm, "kind").as_deref() == Some("supervisor") {
                    ChildKind::Supervisor
                } else {
                    ChildKind::Worker
                },
                restart: s(cm, "restart").and_then(|r| Restart::from_name(&r)).unwrap_or_default(),
                status: s(cm, "status")
                    .and_then(|x| ChildStatus::from_name(&x))
                    .ok_or_else(|| bad_reply("child status"))?,
                port: s(cm, "port").and_then(|p| PortId::new(p).ok()),
                node: s(cm, "node").and_then(|p| NodeId::new(p).ok()),
                restarts: cm.get("restarts").and_then(Value::as_u64).unwrap_or(0) as u32,
                last_exit: cm.get("last_exit").and_then(Value::as_array).map(|a| Reason(a.to_vec())),
            });
        }
        Ok(SupervisorInfo {
            port,
            strategy,
            parent,
            intensity: Intensity::new(max_restarts, period),
            restarts,
            children,
        })
    }
}

fn bad_reply(what: &str) -> Error {
    Error::BadReply(format!("which_children: {what}"))
}

// ---------------------------------------------------------------------------
// The handle.

/// A handle to a running supervisor (local or remote); cheap to clone.
///
/// Every method talks to the supervisor port by messages, so it works from
/// any node that can reach it.
#[derive(Debug, Clone)]
pub struct Supervisor {
    node: Node,
    port: PortId,
}

/// The error for a supervisor's death.
fn death_error(port: &PortId, reason: Reason) -> Error {
    let v = reason.values();
    if reason.kind() == Some(START_FAILED) {
        if let (Some(id), Some(inner)) =
            (v.get(1).and_then(Value::as_str), v.get(2).and_then(Value::as_array))
        {
            return Error::StartFailed { id: id.to_owned(), reason: Reason(inner.to_vec()) };
        }
    }
    Error::SupervisorDead { port: port.clone(), reason }
}

impl Supervisor {
    /// Starts a supervisor on `node` and returns once every child in `spec`
    /// has started, in order.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] for a bad spec; [`Error::StartFailed`] with
    /// the child's reason when a child died before its start was confirmed
    /// (the children started before it are stopped again, in reverse order).
    pub async fn start(node: &Node, spec: SupervisorSpec) -> Result<Supervisor> {
        let here = node.id().clone();
        Supervisor::start_on(node, &here, spec).await
    }

    /// Starts a supervisor on another node (spawned there by name: that
    /// node's process must have called [`install`]), talking to it from
    /// `node`.
    ///
    /// # Errors
    /// As [`Supervisor::start`].
    pub async fn start_on(node: &Node, on: &NodeId, spec: SupervisorSpec) -> Result<Supervisor> {
        install();
        spec.validate()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<PortId>();
        let mut tx = Some(tx);
        let reply = node.port_with(move |ctx, m: Msg| {
            if let (Some(tx), Ok(p)) = (tx.take(), m.port(1)) {
                let _ = tx.send(p);
            }
            ctx.kil_self(Reason::normal());
        });
        let mut v = spec.to_value();
        if let Value::Map(m) = &mut v {
            m.insert("ack".into(), Value::from(msg![&reply, "started"]));
        }
        let port = node.spawn(on, SUPERVISOR_INIT, Msg::from_array([v]));
        let dead = node.dead(&port);
        let r = tokio::select! {
            started = rx => match started {
                Ok(_) => Ok(Supervisor { node: node.clone(), port: port.clone() }),
                Err(_) => Err(Error::Aemp(aemp::Error::Shutdown)),
            },
            reason = dead => Err(death_error(&port, reason)),
        };
        node.kil(&reply, Reason::normal());
        r
    }

    /// A handle to a supervisor that runs already (for example one found in
    /// the group [`GROUP`]), used from `node`.
    pub fn attach(node: &Node, port: PortId) -> Supervisor {
        Supervisor { node: node.clone(), port }
    }

    /// The supervisor's port.
    pub fn port(&self) -> &PortId {
        &self.port
    }

    /// Resolves with the reason once the supervisor is dead.
    pub fn dead(&self) -> impl Future<Output = Reason> + Send + 'static {
        self.node.dead(&self.port)
    }

    /// Sends a request with a fresh reply port appended and waits for the
    /// answer, or for the supervisor's death.
    async fn request(&self, mut m: Msg) -> Result<Msg> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let reply = self.node.port_with(move |ctx, m: Msg| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(m);
            }
            ctx.kil_self(Reason::normal());
        });
        let dead = self.node.dead(&self.port);
        m.push(&reply);
        self.node.snd(&self.port, m);
        let r = tokio::select! {
            biased;
            answer = rx => answer.map_err(|_| Error::Aemp(aemp::Error::Shutdown)),
            reason = dead => Err(Error::SupervisorDead { port: self.port.clone(), reason }),
        };
        self.node.kil(&reply, Reason::normal());
        r
    }

    fn answer_error(m: &Msg) -> Error {
        let detail = m.str(2).unwrap_or_default().to_owned();
        match m.str(1) {
            Ok("start_failed") => Error::StartFailed {
                id: detail,
                reason: Reason(
                    m.at(3).ok().and_then(Value::as_array).map(<[Value]>::to_vec).unwrap_or_default(),
                ),
            },
            Ok("duplicate") => Error::DuplicateChild(detail),
            Ok("no_such_child") => Error::NoSuchChild(detail),
            Ok("invalid") => Error::InvalidSpec(detail),
            Ok("unsupported") => Error::Unsupported(detail),
            _ => Error::BadReply(m.to_string()),
        }
    }

    /// The supervisor's state: strategy, restart count and children.
    ///
    /// # Errors
    /// [`Error::SupervisorDead`], or [`Error::BadReply`] for an answer of
    /// the wrong shape.
    pub async fn info(&self) -> Result<SupervisorInfo> {
        let m = self.request(msg!["which_children"]).await?;
        SupervisorInfo::from_value(m.at(0).map_err(|_| bad_reply("empty answer"))?)
    }

    /// The children in start order, with their status and restart counts.
    ///
    /// # Errors
    /// As [`Supervisor::info`].
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>> {
        Ok(self.info().await?.children)
    }

    /// Adds a child after the others and starts it; returns its port once
    /// its start is confirmed.
    ///
    /// # Errors
    /// [`Error::DuplicateChild`], [`Error::InvalidSpec`],
    /// [`Error::Unsupported`] for a simple-one-for-one supervisor,
    /// [`Error::StartFailed`] (the child is then not kept),
    /// [`Error::SupervisorDead`].
    pub async fn start_child(&self, spec: ChildSpec) -> Result<PortId> {
        spec.check()?;
        let m = self.request(msg!["start_child", spec.to_value()]).await?;
        match m.tag() {
            Some("ok") => m.port(2).map_err(|_| Error::BadReply(m.to_string())),
            _ => Err(Self::answer_error(&m)),
        }
    }

    /// Starts a child from a simple-one-for-one supervisor's template, with
    /// `args` appended to the template's arguments; returns the child's
    /// generated ID (`template-n`) and its port.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for other strategies, and as
    /// [`Supervisor::start_child`].
    pub async fn start_dynamic(&self, args: Msg) -> Result<(String, PortId)> {
        let m = self.request(msg!["start_dynamic", Value::from(args)]).await?;
        match (m.tag(), m.str(1), m.port(2)) {
            (Some("ok"), Ok(id), Ok(port)) => Ok((id.to_owned(), port)),
            _ => Err(Self::answer_error(&m)),
        }
    }

    /// Stops a child (as its [`Shutdown`] says) and forgets it.
    ///
    /// # Errors
    /// [`Error::NoSuchChild`], [`Error::SupervisorDead`].
    pub async fn remove_child(&self, id: &str) -> Result<()> {
        let m = self.request(msg!["remove_child", id]).await?;
        match m.tag() {
            Some("ok") => Ok(()),
            _ => Err(Self::answer_error(&m)),
        }
    }

    /// Stops every child in reverse start order, then the supervisor
    /// itself (normally); returns once it is dead.
    ///
    /// # Errors
    /// [`Error::SupervisorDead`] when it was dead already or died with
    /// another reason.
    pub async fn stop(&self) -> Result<()> {
        let dead = self.node.dead(&self.port);
        self.node.snd(&self.port, msg!["stop"]);
        let reason = dead.await;
        if reason.is_normal() {
            Ok(())
        } else {
            Err(Error::SupervisorDead { port: self.port.clone(), reason })
        }
    }
}

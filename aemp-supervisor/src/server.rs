//! The supervisor's own side: its port (state, child starts and stops,
//! restart decisions), the wrapper port that links each child to it, the
//! directory port, and [`install`], which registers their init functions.
//!
//! Everything a supervisor learns arrives as a message to its port: child
//! exits (its monitors send them), start confirmations (from the wrapper),
//! timers and requests. It runs one operation at a time (start a child and
//! wait for its confirmation, stop a child and wait for its exit) and holds
//! back further decisions until the current one is done, as an OTP
//! supervisor does while it restarts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use aemp::{msg, Ctx, Map, MonAction, Msg, Node, NodeId, PortId, Reason, TimerGuard, Value};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::info::ChildStatus;
use crate::intensity::{Backoff, Intensity, RestartWindow};
use crate::spec::{ChildKind, ChildSpec, Placement, Shutdown, SupervisorSpec, SUPERVISOR_INIT};
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
/// every node of this process. [`Supervisor::start`](crate::Supervisor::start) calls it; a process
/// whose nodes only host children (or child supervisors) must call it once.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        aemp::register_init(SUPERVISOR_INIT, |ctx: &mut Ctx<'_>, args| {
            supervisor_init(ctx, args).map_err(aemp::Error::from)
        });
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

//! The child's side: the wrapper port that links a child to its
//! supervisor and confirms its start, and the helpers a child's init
//! function calls ([`on_shutdown`], [`defer_start`]).

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use aemp::{msg, Ctx, MonAction, Msg, Node, PortId, Reason, Value};

use crate::spec::SUPERVISOR_INIT;

/// The init function of the wrapper port that links a child to its
/// supervisor (registered by [`install`](crate::install)).
pub const CHILD_INIT: &str = "aemp_supervisor::child";

/// The reason a child stopped by [`on_shutdown`] exits with.
const STOPPED: &str = "stopped by supervisor";

/// `("shutdown", text)`.
pub(crate) fn shutdown_reason(text: impl Into<String>) -> Reason {
    Reason(vec![Value::from("shutdown"), Value::from(text.into())])
}

/// What a child dies with when its supervisor died with `reason`: the same
/// reason, or `("shutdown", ...)` for a normal one.
pub(crate) fn parent_exit_reason(supervisor: &str, reason: Reason) -> Reason {
    if reason.is_normal() {
        shutdown_reason(format!("supervisor {supervisor} exited"))
    } else {
        reason
    }
}

/// Makes the calling port stop gracefully when its supervisor asks: on
/// `["shutdown"]` it runs `cleanup` and exits with `("shutdown", "stopped
/// by supervisor")`, an orderly exit (a transient child is not restarted
/// for it). Call it from a child's init function.
///
/// A child without such a handler is killed once its
/// [`Shutdown`](crate::Shutdown) time is up (5 seconds by default), with
/// `("shutdown", "timeout")`.
///
/// ```
/// # fn init(ctx: &mut aemp::Ctx<'_>, _args: aemp::Msg) {
/// let me = ctx.self_id();
/// ctx.rcv(&me, |_ctx, _m| { /* the child's work */ });
/// aemp_supervisor::on_shutdown(ctx, |_ctx| println!("flushing before I go"));
/// # }
/// ```
pub fn on_shutdown<F>(ctx: &mut Ctx<'_>, cleanup: F)
where
    F: FnOnce(&mut Ctx<'_>) + Send + 'static,
{
    let me = ctx.self_id();
    let mut cleanup = Some(cleanup);
    ctx.rcv_tag(&me, "shutdown", move |ctx, _m| {
        if let Some(f) = cleanup.take() {
            f(ctx);
        }
        ctx.kil_self(shutdown_reason(STOPPED));
    });
}

/// The start a wrapper is running the init function of, while it runs.
struct Slot {
    node: Node,
    wrapper: PortId,
    /// The port that deferred its start, if one did.
    deferred_by: Option<PortId>,
}

thread_local! {
    static STARTING: RefCell<Option<Slot>> = const { RefCell::new(None) };
}

/// Defers the confirmation of this child's start until
/// [`StartToken::confirm`] is called (from a callback, a task, anywhere);
/// call it from a child's init function when the child is not ready when
/// its init function returns (it connects somewhere first, say).
///
/// Until then the supervisor waits, as for any start: its next children
/// are not started. A child that never confirms is killed after its
/// [`start_timeout`](crate::ChildSpec::start_timeout), and counts as failed
/// to start; without one, the supervisor waits as long as it takes.
///
/// Outside a supervisor's start the token does nothing.
///
/// ```
/// # fn init(ctx: &mut aemp::Ctx<'_>, _args: aemp::Msg) {
/// let ready = aemp_supervisor::defer_start(ctx);
/// ctx.spawn_task(async move {
///     // ... connect ...
///     ready.confirm();
///     Ok::<(), aemp::Error>(())
/// });
/// # }
/// ```
pub fn defer_start(ctx: &mut Ctx<'_>) -> StartToken {
    let me = ctx.self_id();
    let target = STARTING.with(|s| {
        let mut s = s.borrow_mut();
        let slot = s.as_mut().filter(|slot| slot.deferred_by.is_none())?;
        slot.deferred_by = Some(me);
        Some((slot.node.clone(), slot.wrapper.clone()))
    });
    StartToken { target }
}

/// Confirms a deferred start (see [`defer_start`]).
#[derive(Debug)]
#[must_use = "the start is confirmed when `confirm` is called"]
pub struct StartToken {
    target: Option<(Node, PortId)>,
}

impl StartToken {
    /// Tells the supervisor that the child has started.
    pub fn confirm(self) {
        if let Some((node, wrapper)) = self.target {
            node.snd(&wrapper, msg!["confirmed"]);
        }
    }
}

/// The explanation for a start that failed because an init function is
/// not registered on the node, if `reason` says so.
fn unknown_init(reason: &Reason, init: &str, node: &str) -> Option<Reason> {
    if *reason != Reason::die(format!("unknown init function {init:?}")) {
        return None;
    }
    let fix = if init == CHILD_INIT || init == SUPERVISOR_INIT {
        "call aemp_supervisor::install() in that node's process"
    } else {
        "register it there with Node::register or aemp::register_init"
    };
    Some(Reason::die(format!("node {node} has no init function {init:?}: {fix}")))
}

/// A failed start's reason, explained when the wrapper itself could not be
/// started on `node` (its process has not called `install`).
pub(crate) fn explain_failed_start(reason: Reason, node: &str) -> Reason {
    unknown_init(&reason, CHILD_INIT, node).unwrap_or(reason)
}

/// `aemp_supervisor::child`: args `[supervisor, key, generation, self_ack,
/// init, user args...]`.
///
/// The wrapper port W dies with the supervisor (it monitors a supervisor on
/// another node; one on its own node kills it), starts the
/// user's init function in a new port C on this node, and links W and C both
/// ways: C dies when W dies abnormally, W dies with C's reason whenever C
/// dies. The supervisor monitors W. Once C survived its init (and, when it
/// deferred its start, confirmed it), W sends the supervisor `["started",
/// key, generation, C]` (unless C is a supervisor, which sends that itself
/// once its children run); when C died in its init, `["start_failed", key,
/// generation, reason...]`.
pub(crate) fn child_init(ctx: &mut Ctx<'_>, args: Msg) -> aemp::Result<()> {
    let sup = args.port(0)?;
    let key = args.at(1)?.clone();
    let gen: u64 = args.get(2)?;
    let self_ack: bool = args.get(3)?;
    let init = args.str(4)?.to_owned();
    let user_args = args.rest(5);
    let me = ctx.self_id();
    // Stray messages are ignored rather than killing the link.
    ctx.rcv(&me, |_ctx, _m| {});
    ctx.rcv_tag(&me, "child_exit", |ctx, m| ctx.kil_self(Reason::from(m)));
    let node = ctx.node_id().clone();
    if sup.node() != node {
        // The back-monitor, cancelled when this wrapper dies. (On the
        // supervisor's own node, the supervisor kills its wrappers when it
        // dies: one monitor on it rather than one per child.)
        let sup_text = sup.to_string();
        ctx.rcv_tag(&me, "parent_exit", move |ctx, m| {
            ctx.kil_self(parent_exit_reason(&sup_text, Reason::from(m)));
        });
        let back = ctx.mon(&sup, MonAction::send(&me, msg!["parent_exit"]));
        ctx.mon_guard(&me, back).keep();
    }
    let outer = STARTING
        .with(|s| s.borrow_mut().replace(Slot { node: ctx.node(), wrapper: me.clone(), deferred_by: None }));
    let child = ctx.spawn(&node, &init, user_args);
    let slot = STARTING.with(|s| std::mem::replace(&mut *s.borrow_mut(), outer));
    let deferred = slot.and_then(|s| s.deferred_by).is_some_and(|p| p == child);
    // A local spawn has run the init function by now: a child that died in
    // it is gone, and a monitor on it fires at once with its reason.
    let early: Arc<Mutex<Option<Reason>>> = Arc::new(Mutex::new(None));
    let seen = early.clone();
    let probe = ctx.mon(&child, move |r: Reason| {
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    });
    let died = early.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(r) = died {
        let r = unknown_init(&r, &init, node.as_str()).unwrap_or(r);
        let mut m = msg!["start_failed", key, gen];
        m.extend(r.0.clone());
        ctx.snd(&sup, m);
        ctx.kil_self(r);
        return Ok(());
    }
    drop(probe);
    ctx.mon(&child, MonAction::send(&me, msg!["child_exit"])).keep();
    ctx.mon(&me, &child).keep();
    let started = msg!["started", key, gen, &child];
    if deferred {
        let mut once = Some(started);
        ctx.rcv_tag(&me, "confirmed", move |ctx, _m| {
            if let Some(m) = once.take() {
                ctx.snd(&sup, m);
            }
        });
    } else if self_ack {
        ctx.snd(&sup, started);
    }
    Ok(())
}

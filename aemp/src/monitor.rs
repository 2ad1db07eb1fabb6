//! Monitors (`mon`, `mon_guard`) and their guards.

use std::fmt;

use crate::core::{Action, Core};
use crate::id::PortId;
use crate::node::Node;
use crate::reason::Reason;
use crate::value::Msg;

/// What a monitor does when its port dies: the four forms of AnyEvent::MP's `mon`.
///
/// Usually built by [`IntoMonAction`] from a closure (form 1) or a port ID
/// (forms 2 and 3); [`MonAction::send`] makes form 4.
pub enum MonAction {
    /// Call a closure with the reason. It runs on the node's
    /// dispatcher; a panic in it is logged and does not harm the caller.
    Call(Box<dyn FnOnce(Reason) + Send>),
    /// Kill another port with the same reason, only for abnormal reasons.
    Kill(PortId),
    /// Send `msg` followed by the reason's values to a port.
    Send(PortId, Msg),
}

impl MonAction {
    /// Form 4: when the port dies, send `msg, reason...` to `port`.
    pub fn send(port: &PortId, msg: Msg) -> MonAction {
        MonAction::Send(port.clone(), msg)
    }
}

impl fmt::Debug for MonAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MonAction::Call(_) => f.write_str("MonAction::Call(..)"),
            MonAction::Kill(p) => write!(f, "MonAction::Kill({p})"),
            MonAction::Send(p, m) => write!(f, "MonAction::Send({p}, {m})"),
        }
    }
}

/// Anything that can serve as a monitor action: a closure taking the
/// [`Reason`], a [`PortId`] to kill, or a [`MonAction`].
pub trait IntoMonAction {
    /// The action.
    fn into_mon_action(self) -> MonAction;
}

/// The runtime's form of a monitor action.
pub(crate) fn action_of(a: impl IntoMonAction) -> Action {
    match a.into_mon_action() {
        MonAction::Call(f) => Action::Call(f),
        MonAction::Kill(p) => Action::Kill(p),
        MonAction::Send(p, m) => Action::Send(p, m),
    }
}

impl IntoMonAction for MonAction {
    fn into_mon_action(self) -> MonAction {
        self
    }
}

impl IntoMonAction for PortId {
    fn into_mon_action(self) -> MonAction {
        MonAction::Kill(self)
    }
}

impl IntoMonAction for &PortId {
    fn into_mon_action(self) -> MonAction {
        MonAction::Kill(self.clone())
    }
}

impl<F: FnOnce(Reason) + Send + 'static> IntoMonAction for F {
    fn into_mon_action(self) -> MonAction {
        MonAction::Call(Box::new(self))
    }
}

#[derive(Debug, Clone)]
pub(crate) enum MonTarget {
    Port(PortId),
}

/// Stops a monitor when dropped, unless [`MonGuard::keep`] was called.
///
/// Monitors are one-shot: once fired they are gone, and dropping the guard
/// afterwards does nothing.
///
/// `let _ = node.mon(...)`, which the compiler suggests for an unused
/// value, drops the guard on the spot and so cancels the monitor before it
/// can fire. Keep the monitor with `.keep()`, or hold the guard in a named
/// variable for as long as the monitor should last:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
/// let node = aemp::Node::builder().build().await?;
/// let port = node.port_with(|_ctx, _m| {});
/// node.mon(&port, |reason| println!("port died: {reason}")).keep();
/// let _watch = node.mon(&port, |reason| println!("also: {reason}")); // until `_watch` goes out of scope
/// # node.shutdown().await; Ok(()) }
/// ```
#[must_use = "a dropped MonGuard cancels its monitor at once, and `let _ = ...` drops it: write `.keep()` after the call to keep the monitor until it fires, or hold the guard in a named variable (`let _guard = ...`)"]
pub struct MonGuard {
    node: Option<Node>,
    target: MonTarget,
    id: u64,
}

impl fmt::Debug for MonGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonGuard").field("target", &self.target).field("id", &self.id).finish()
    }
}

impl MonGuard {
    pub(crate) fn new(node: Node, target: MonTarget, id: u64) -> MonGuard {
        MonGuard { node: Some(node), target, id }
    }

    /// Keeps the monitor until it fires (AnyEvent::MP's `mon` in void context).
    pub fn keep(mut self) {
        self.node = None;
    }

    /// Stops the monitor now (the same as dropping the guard).
    pub fn cancel(self) {}
}

impl Drop for MonGuard {
    fn drop(&mut self) {
        let Some(node) = self.node.take() else { return };
        let MonTarget::Port(port) = self.target.clone();
        let id = self.id;
        let shared = node.shared().clone();
        if shared.is_local(&port) {
            shared.call(move |core: &mut Core| core.unmon(&port, id));
        } else {
            shared.remote().unmon(&port, id);
        }
    }
}

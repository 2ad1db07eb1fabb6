//! What a supervisor tells its observer: [`Event`] and [`EventKind`], their
//! wire form, and [`EventStream`], a port that decodes them.

use std::time::Duration;

use aemp::{msg, Msg, Node, NodeId, PortId, Reason, Value};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// One thing a supervisor did or saw, numbered.
///
/// A supervisor with an [observer](crate::SupervisorSpec::observer) sends
/// it every event as a message `[kind, supervisor, seq, child ID,
/// details...]` (the details of each kind are listed on [`EventKind`];
/// reasons travel as arrays, empty for normal). `seq` counts from 1 without
/// gaps, messages arrive in order, and the last ones are sent before the
/// supervisor dies, so an observer has them all by the time any monitor of
/// the supervisor fires (on its node, and on another node, where both
/// travel over the same connection).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The supervisor's port.
    pub supervisor: PortId,
    /// The event's number, from 1, one more for each event of this
    /// supervisor.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to a child, or to the supervisor.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// A start was confirmed. Wire: `"started"`, then port and node.
    Started {
        /// The child's ID.
        id: String,
        /// Its new port.
        port: PortId,
        /// Its node.
        node: NodeId,
    },
    /// The child died (or timed out) before its start was confirmed.
    /// Wire: `"start_failed"`, then the reason.
    StartFailed {
        /// The child's ID.
        id: String,
        /// Why.
        reason: Reason,
    },
    /// The child exited on its own. One of [`Restarting`](EventKind::Restarting),
    /// [`LeftStopped`](EventKind::LeftStopped), [`Removed`](EventKind::Removed)
    /// or [`GaveUp`](EventKind::GaveUp) follows. Wire: `"exited"`, then the
    /// reason.
    Exited {
        /// The child's ID.
        id: String,
        /// Its exit reason.
        reason: Reason,
    },
    /// The child's node was lost, and with it the child: in place of
    /// [`Exited`](EventKind::Exited) (the same decision follows), or of
    /// [`Stopped`](EventKind::Stopped) for a child the supervisor was about
    /// to stop (no stop request is sent to a lost node). Wire: `"lost"`,
    /// then the node and the reason.
    Lost {
        /// The child's ID.
        id: String,
        /// The node that was lost.
        node: NodeId,
        /// `("transport_error", node, text)`.
        reason: Reason,
    },
    /// The exit of child `id` restarts `children` (in this order) after
    /// `delay` (zero without [backoff](crate::Backoff)). Wire:
    /// `"restarting"`, then the delay in seconds and the array of IDs.
    Restarting {
        /// The child that exited.
        id: String,
        /// The wait before the first start.
        delay: Duration,
        /// The children to start, in order.
        children: Vec<String>,
    },
    /// The child is not restarted and stays stopped (a transient child
    /// after a normal exit). Wire: `"left_stopped"`.
    LeftStopped {
        /// The child's ID.
        id: String,
    },
    /// The child is forgotten (temporary, dynamic, or removed on request).
    /// Wire: `"removed"`.
    Removed {
        /// The child's ID.
        id: String,
    },
    /// The supervisor stopped the child (on request, for a group restart,
    /// or because it stops itself), or cancelled its pending restart.
    /// Wire: `"stopped"`, then the reason.
    Stopped {
        /// The child's ID.
        id: String,
        /// The reason it died with.
        reason: Reason,
    },
    /// The restart intensity was exceeded by child `id`'s exit: the
    /// supervisor stops its children and exits with `reason`. Wire:
    /// `"gave_up"`, then the reason.
    GaveUp {
        /// The child whose exit was one too many.
        id: String,
        /// The supervisor's exit reason (see [`MAX_RESTARTS`](crate::MAX_RESTARTS)).
        reason: Reason,
    },
}

impl EventKind {
    /// The wire name (`"started"`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Started { .. } => "started",
            EventKind::StartFailed { .. } => "start_failed",
            EventKind::Exited { .. } => "exited",
            EventKind::Lost { .. } => "lost",
            EventKind::Restarting { .. } => "restarting",
            EventKind::LeftStopped { .. } => "left_stopped",
            EventKind::Removed { .. } => "removed",
            EventKind::Stopped { .. } => "stopped",
            EventKind::GaveUp { .. } => "gave_up",
        }
    }

    /// The ID of the child the event is about.
    pub fn child(&self) -> &str {
        match self {
            EventKind::Started { id, .. }
            | EventKind::StartFailed { id, .. }
            | EventKind::Exited { id, .. }
            | EventKind::Lost { id, .. }
            | EventKind::Restarting { id, .. }
            | EventKind::LeftStopped { id }
            | EventKind::Removed { id }
            | EventKind::Stopped { id, .. }
            | EventKind::GaveUp { id, .. } => id,
        }
    }
}

fn reason_value(r: &Reason) -> Value {
    Value::Array(r.0.clone())
}

impl Event {
    /// The wire form: `[kind, supervisor, seq, child ID, details...]`.
    pub fn to_msg(&self) -> Msg {
        let k = &self.kind;
        let mut m = msg![k.as_str(), &self.supervisor, self.seq, k.child()];
        match k {
            EventKind::Started { port, node, .. } => {
                m.push(port);
                m.push(node);
            }
            EventKind::StartFailed { reason, .. }
            | EventKind::Exited { reason, .. }
            | EventKind::Stopped { reason, .. }
            | EventKind::GaveUp { reason, .. } => m.push(reason_value(reason)),
            EventKind::Lost { node, reason, .. } => {
                m.push(node);
                m.push(reason_value(reason));
            }
            EventKind::Restarting { delay, children, .. } => {
                m.push(delay.as_secs_f64());
                m.push(Value::from(children.clone()));
            }
            EventKind::LeftStopped { .. } | EventKind::Removed { .. } => {}
        }
        m
    }

    /// Reads the wire form.
    ///
    /// # Errors
    /// [`Error::BadReply`] for a message that is not an event.
    pub fn from_msg(m: &Msg) -> Result<Event> {
        let bad = || Error::BadReply(format!("not a supervisor event: {m}"));
        let supervisor = m.port(1).map_err(|_| bad())?;
        let seq: u64 = m.get(2).map_err(|_| bad())?;
        let id = m.str(3).map_err(|_| bad())?.to_owned();
        let reason = |i: usize| -> Result<Reason> {
            Ok(Reason(m.at(i).ok().and_then(Value::as_array).ok_or_else(bad)?.to_vec()))
        };
        let node = |i: usize| m.str(i).ok().and_then(|s| NodeId::new(s).ok()).ok_or_else(bad);
        let kind = match m.tag().ok_or_else(bad)? {
            "started" => EventKind::Started { id, port: m.port(4).map_err(|_| bad())?, node: node(5)? },
            "start_failed" => EventKind::StartFailed { id, reason: reason(4)? },
            "exited" => EventKind::Exited { id, reason: reason(4)? },
            "lost" => EventKind::Lost { id, node: node(4)?, reason: reason(5)? },
            "restarting" => {
                let secs: f64 = m.get(4).map_err(|_| bad())?;
                let list = m.at(5).ok().and_then(Value::as_array).ok_or_else(bad)?;
                EventKind::Restarting {
                    id,
                    delay: Duration::try_from_secs_f64(secs).map_err(|_| bad())?,
                    children: list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                }
            }
            "left_stopped" => EventKind::LeftStopped { id },
            "removed" => EventKind::Removed { id },
            "stopped" => EventKind::Stopped { id, reason: reason(4)? },
            "gave_up" => EventKind::GaveUp { id, reason: reason(4)? },
            _ => return Err(bad()),
        };
        Ok(Event { supervisor, seq, kind })
    }
}

/// A port on a node that receives supervisor events and hands them out
/// decoded, in order: pass [`port`](EventStream::port) to
/// [`SupervisorSpec::observer`](crate::SupervisorSpec::observer).
///
/// Every event a supervisor sends is in the stream before the supervisor's
/// death resolves [`Supervisor::dead`](crate::Supervisor::dead). The port
/// is closed when the stream is dropped.
#[derive(Debug)]
pub struct EventStream {
    node: Node,
    port: PortId,
    rx: mpsc::UnboundedReceiver<Event>,
}

impl EventStream {
    /// A new port on `node` for events (messages that are not events are
    /// ignored).
    pub fn new(node: &Node) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        let port = node.port_with(move |_ctx, m: Msg| match Event::from_msg(&m) {
            Ok(e) => {
                let _ = tx.send(e);
            }
            Err(e) => tracing::debug!(target: "aemp_supervisor", "{e}"),
        });
        EventStream { node: node.clone(), port, rx }
    }

    /// The port to give supervisors as their observer.
    pub fn port(&self) -> &PortId {
        &self.port
    }

    /// The next event; `None` once the node is shut down.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is only taken when it is returned.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is there already.
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.node.kil(&self.port, Reason::normal());
    }
}

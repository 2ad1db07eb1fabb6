//! Async receiving ports: a task reads its messages with `recv().await`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::id::PortId;
use crate::node::Node;
use crate::reason::Reason;
use crate::value::{Msg, Value};

pub(crate) struct InboxShared {
    state: Mutex<InboxState>,
    notify: Notify,
    bound: usize,
}

struct InboxState {
    queue: VecDeque<Msg>,
    closed: Option<Reason>,
}

impl InboxShared {
    pub(crate) fn new(bound: usize) -> Arc<InboxShared> {
        Arc::new(InboxShared {
            state: Mutex::new(InboxState { queue: VecDeque::new(), closed: None }),
            notify: Notify::new(),
            bound: bound.max(1),
        })
    }

    /// Queues a message; a full queue is an error that kills the port.
    pub(crate) fn push(&self, msg: Msg) -> Result<(), Reason> {
        let mut st = self.state.lock();
        if st.queue.len() >= self.bound {
            return Err(Reason(vec![
                Value::from("overflow"),
                Value::from(format!("inbox full: {} messages queued", self.bound)),
            ]));
        }
        st.queue.push_back(msg);
        drop(st);
        self.notify.notify_one();
        Ok(())
    }

    pub(crate) fn close(&self, reason: Reason) {
        let mut st = self.state.lock();
        st.closed = Some(reason);
        st.queue.clear();
        drop(st);
        self.notify.notify_one();
    }
}

/// The receiving end of an async port (see [`Node::spawn_async`]).
///
/// Unlike callback ports, an async port queues: up to the bound its creator
/// chose. A message arriving at a full inbox kills the port with
/// `("overflow", text)`, so nothing is lost silently.
pub struct Inbox {
    shared: Arc<InboxShared>,
    port: PortId,
    node: Node,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox").field("port", &self.port).finish()
    }
}

impl Inbox {
    pub(crate) fn new(shared: Arc<InboxShared>, port: PortId, node: Node) -> Inbox {
        Inbox { shared, port, node }
    }

    /// The port this inbox belongs to (its `$SELF`).
    pub fn port(&self) -> &PortId {
        &self.port
    }

    /// The node the port lives on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The next message, or `None` once the port is dead.
    ///
    /// # Cancel safety
    /// Cancel-safe: a message is only taken when the future completes.
    pub async fn recv(&mut self) -> Option<Msg> {
        self.recv_match(|_| true).await
    }

    /// The first queued message tagged `tag`, waiting for one if needed;
    /// messages with other tags stay queued for later calls.
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn recv_tag(&mut self, tag: &str) -> Option<Msg> {
        self.recv_match(|m| m.tag() == Some(tag)).await
    }

    /// The first queued message for which `pred` holds; the others stay queued.
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn recv_match(&mut self, mut pred: impl FnMut(&Msg) -> bool) -> Option<Msg> {
        loop {
            let notified = self.shared.notify.notified();
            {
                let mut st = self.shared.state.lock();
                if st.closed.is_some() {
                    return None;
                }
                if let Some(i) = st.queue.iter().position(&mut pred) {
                    return st.queue.remove(i);
                }
            }
            notified.await;
        }
    }

    /// A queued message, without waiting.
    pub fn try_recv(&mut self) -> Option<Msg> {
        self.shared.state.lock().queue.pop_front()
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.shared.state.lock().queue.len()
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

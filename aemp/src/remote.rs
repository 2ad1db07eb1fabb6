//! The dispatcher's one door to other nodes.
//!
//! The dispatcher, the node port's kernel, monitors and ports reach ports
//! of other nodes only through [`Remote`]. The network layer implements it;
//! a node built without networking gets [`Offline`], which drops what is
//! sent elsewhere and fires monitors on other nodes' ports at once. Nothing
//! here knows of sockets, peers or handshakes.

use std::sync::Arc;

use crate::core::Action;
use crate::id::{NodeId, PortId};
use crate::reason::Reason;
use crate::value::Msg;

/// What the node needs from its network.
pub(crate) trait Remote: Send + Sync {
    /// `snd` to a port of another node from outside the dispatcher.
    fn send(&self, port: &PortId, msg: Msg);

    /// `snd` to a port of another node from inside the dispatcher: what is
    /// written is recorded in `dirty`, and flushed when the step ends.
    fn send_batched(&self, port: &PortId, msg: Msg, dirty: &mut Dirty);

    /// Sends a protocol message to a node: the first element is the
    /// destination port's name (`""` for the node port).
    fn send_to_node(&self, node: &NodeId, msg: Msg);

    /// As [`Remote::send_to_node`], but only if the node's link is up (a
    /// node that is down has fired its monitors already).
    fn notify_if_up(&self, node: &NodeId, msg: Msg);

    /// Kills a port of another node.
    fn kil(&self, port: &PortId, reason: Reason);

    /// Registers a monitor on a port of another node; `Some` means: fire
    /// this action now, for the port's name, with this reason.
    fn mon(&self, port: &PortId, id: u64, action: Action) -> Option<(String, Action, Reason)>;

    /// Removes a monitor made by [`Remote::mon`].
    fn unmon(&self, port: &PortId, id: u64);

    /// Takes the monitors on a port of `node` that the node reported dead.
    fn remote_port_died(&self, node: &NodeId, name: &str) -> Vec<Action>;

    /// Every node known (not this one), sorted.
    fn known_nodes(&self) -> Vec<NodeId>;

    /// The nodes with a live link, sorted.
    fn up_nodes(&self) -> Vec<NodeId>;

    /// Why the last attempt to link to `node` failed, if it did and no
    /// link has come up since.
    fn last_failure(&self, node: &NodeId) -> Option<String>;

    /// Closes every link (the node is shutting down).
    fn shutdown(&self);
}

/// A destination's outgoing buffer that a dispatcher step wrote to; the
/// dispatcher flushes each one when the step ends.
pub(crate) trait Outbox: Send + Sync {
    /// Writes what is buffered, or hands it to the writer.
    fn flush(self: Arc<Self>);
}

/// The outboxes written to during one dispatcher step.
pub(crate) type Dirty = Vec<Arc<dyn Outbox>>;

/// The [`Remote`] of a node without networking.
pub(crate) struct Offline;

const NO_NETWORK: &str = "this node has no network configured";

impl Remote for Offline {
    fn send(&self, port: &PortId, _msg: Msg) {
        tracing::warn!(%port, "message to another node dropped: {NO_NETWORK}");
    }

    fn send_batched(&self, port: &PortId, msg: Msg, _dirty: &mut Dirty) {
        self.send(port, msg);
    }

    fn send_to_node(&self, node: &NodeId, _msg: Msg) {
        tracing::warn!(%node, "message to another node dropped: {NO_NETWORK}");
    }

    fn notify_if_up(&self, _node: &NodeId, _msg: Msg) {}

    fn kil(&self, _port: &PortId, _reason: Reason) {}

    fn mon(&self, port: &PortId, _id: u64, action: Action) -> Option<(String, Action, Reason)> {
        Some((port.name().to_owned(), action, Reason::transport_error(port.node_str(), NO_NETWORK)))
    }

    fn unmon(&self, _port: &PortId, _id: u64) {}

    fn remote_port_died(&self, _node: &NodeId, _name: &str) -> Vec<Action> {
        Vec::new()
    }

    fn known_nodes(&self) -> Vec<NodeId> {
        Vec::new()
    }

    fn up_nodes(&self) -> Vec<NodeId> {
        Vec::new()
    }

    fn last_failure(&self, _node: &NodeId) -> Option<String> {
        None
    }

    fn shutdown(&self) {}
}

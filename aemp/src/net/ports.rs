//! The dispatcher's interface to other nodes ([`Remote`]), implemented over
//! the peer table: sends, kills, monitors on other nodes' ports.
//!
//! Takes one peer's lock at a time (see `peers.rs`).

use super::Net;
use crate::core::Action;
use crate::id::{NodeId, PortId};
use crate::reason::Reason;
use crate::remote::{Dirty, Remote};
use crate::value::{Msg, Value};

impl Remote for Net {
    fn send(&self, port: &PortId, msg: Msg) {
        if port.node_str() == self.me.as_str() {
            return;
        }
        if let Some(peer) = self.peer_str(port.node_str()) {
            self.enqueue_to(&peer, port.name(), msg);
        }
    }

    fn send_batched(&self, port: &PortId, msg: Msg, dirty: &mut Dirty) {
        if port.node_str() == self.me.as_str() {
            return;
        }
        let Some(peer) = self.peer_str(port.node_str()) else { return };
        let st = peer.st.lock();
        if st.up.is_some() && !st.is_lost(port.name()) {
            self.write_locked_to(
                &peer,
                st,
                Some(port.name()),
                |framing, out| framing.encode_dest(port.name(), &msg.0, out),
                Some(dirty),
            );
            return;
        }
        drop(st);
        self.enqueue_to(&peer, port.name(), msg);
    }

    fn send_to_node(&self, node: &NodeId, msg: Msg) {
        self.send_raw(node, msg);
    }

    fn notify_if_up(&self, node: &NodeId, msg: Msg) {
        Net::notify_if_up(self, node, msg);
    }

    /// `kil` of a remote port (`kil1`, aemp peers only).
    fn kil(&self, port: &PortId, reason: Reason) {
        let node = port.node();
        if let Some(p) = self.existing_peer(&node) {
            if p.st.lock().up.as_ref().is_some_and(|u| !u.aemp) {
                tracing::warn!(%port, "cannot kill a port of an AnyEvent::MP 0.9 node");
                return;
            }
        }
        let mut m = vec![Value::from(""), Value::from("kil1"), Value::from(port.name())];
        m.extend(reason.0);
        self.send_to_node(&node, Msg::from(m));
    }

    fn mon(&self, port: &PortId, id: u64, action: Action) -> Option<(String, Action, Reason)> {
        let node = port.node();
        let first = loop {
            let peer = self.peer(&node);
            let mut st = peer.st.lock();
            if st.forgotten {
                continue;
            }
            let list = st.monitors.entry(port.name().into()).or_default();
            list.push((id, action));
            break list.len() == 1;
        };
        if first && !port.is_node_port() {
            self.send_to_node(
                &node,
                Msg::from_array([Value::from(""), Value::from("mon1"), Value::from(port.name())]),
            );
        } else if port.is_node_port() && !self.is_up(&node) {
            // Monitoring a whole node: make sure we try to reach it.
            self.send_to_node(&node, Msg::from_array([]));
        }
        None
    }

    /// Removes a monitor on a remote port (`mon0` when it was the last).
    fn unmon(&self, port: &PortId, id: u64) {
        let node = port.node();
        let Some(peer) = self.existing_peer(&node) else { return };
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
        if last && !port.is_node_port() && self.is_up(&node) {
            self.send_to_node(
                &node,
                Msg::from_array([Value::from(""), Value::from("mon0"), Value::from(port.name())]),
            );
        }
    }

    fn remote_port_died(&self, node: &NodeId, name: &str) -> Vec<Action> {
        self.take_monitors(node, name)
    }

    fn known_nodes(&self) -> Vec<NodeId> {
        Net::known_nodes(self)
    }

    fn up_nodes(&self) -> Vec<NodeId> {
        Net::up_nodes(self)
    }

    fn last_failure(&self, node: &NodeId) -> Option<String> {
        self.failures.lock().get(node).cloned()
    }

    fn shutdown(&self) {
        self.close_all();
    }
}

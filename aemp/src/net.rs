//! The network layer (placeholder until the transport lands).

use std::sync::Arc;

use crate::core::{Action, Shared};
use crate::error::{Error, Result};
use crate::id::{NodeId, PortId};
use crate::node::Node;
use crate::reason::Reason;
use crate::value::Msg;

/// Network settings of a node.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// Listener addresses.
    pub binds: Vec<String>,
    /// Seed addresses.
    pub seeds: Vec<String>,
    /// The shared secret.
    pub secret: Option<String>,
    /// PEM with key and certificate.
    pub cert_pem: Option<String>,
}

impl NetConfig {
    pub(crate) fn is_active(&self) -> bool {
        !self.binds.is_empty() || !self.seeds.is_empty()
    }
}

/// The network state of a node.
pub(crate) struct Net {}

impl Net {
    pub(crate) async fn start(_node: &Node, _cfg: NetConfig) -> Result<Arc<Net>> {
        Err(Error::Config("networking is not available yet".into()))
    }
    pub(crate) fn send_raw(&self, _node: &NodeId, _msg: Msg) {}
    pub(crate) fn remote_port_died(&self, _node: &NodeId, _name: &str, _reason: &Reason) -> Vec<Action> {
        Vec::new()
    }
    pub(crate) fn known_nodes(&self) -> Vec<NodeId> {
        Vec::new()
    }
    pub(crate) fn up_nodes(&self) -> Vec<NodeId> {
        Vec::new()
    }
    pub(crate) fn shutdown(&self) {}
}

pub(crate) fn send(_shared: &Arc<Shared>, port: &PortId, _msg: Msg) {
    tracing::debug!(%port, "message to another node dropped: this node has no network");
}

pub(crate) fn kil(_shared: &Arc<Shared>, _port: &PortId, _reason: Reason) {}

pub(crate) fn mon(
    _shared: &Arc<Shared>,
    port: &PortId,
    _id: u64,
    action: Action,
) -> Option<(String, Action, Reason)> {
    Some((
        port.name().to_owned(),
        action,
        Reason::transport_error(port.node_str(), "this node has no network"),
    ))
}

pub(crate) fn unmon(_shared: &Arc<Shared>, _port: &PortId, _id: u64) {}

pub(crate) fn spawn(shared: &Arc<Shared>, node: &NodeId, name: &str, _init: &str, _args: Msg) -> PortId {
    let _ = shared;
    PortId::new(format!("{node}#{name}")).unwrap_or_else(|_| node.node_port())
}

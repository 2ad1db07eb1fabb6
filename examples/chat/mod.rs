//! The chat service that grows through the book.
//!
//! The protocol, as plain messages (a string tag first):
//!
//! | from | to | message |
//! |---|---|---|
//! | client | server | `["join", client_port, nick]` |
//! | client | server | `["privmsg", nick, text]` |
//! | server | every client | `["joined", nick]` |
//! | server | every client | `["said", nick, text]` |
//! | server | every client | `["quit", nick, reason_text]` |
//!
//! The server registers its port in the Global group [`GROUP`]; clients
//! find it there. [`server`] and [`client`] are the untyped version,
//! [`typed`] the same protocol with `#[derive(AempMessage)]` types plus
//! per-client sessions spawned on the server's node.

pub mod client;
pub mod server;
pub mod typed;

// ANCHOR: imports
use std::time::Duration;

use aemp::{msg, GroupEvent, Node, PortId, Reason};
// ANCHOR_END: imports

// ANCHOR: group
/// The Global group the chat server's port is registered in.
pub const GROUP: &str = "eg_chat_server";

/// Waits until a port is registered in [`GROUP`] somewhere in the network
/// and returns it.
///
/// # Errors
/// [`aemp::Error::Timeout`] when none shows up within `patience`.
pub async fn find_server(node: &Node, patience: Duration) -> aemp::Result<PortId> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Called at once for every current member, then for every change.
    let watch = node.mon_group(GROUP, move |event| {
        if let GroupEvent::Joined(port) = event {
            let _ = tx.send(port.clone());
        }
    });
    let found = tokio::time::timeout(patience, rx.recv()).await;
    node.unmon_group(GROUP, watch);
    match found {
        Ok(Some(port)) => Ok(port),
        _ => Err(aemp::Error::Timeout(format!("no chat server in group {GROUP}"))),
    }
}
// ANCHOR_END: group

// ANCHOR: leave
/// Kills a client's port normally, in a way that the server sees as a
/// normal quit.
///
/// Two things can go wrong when a client simply kills its port and shuts
/// its node down. The server's monitor on the client is set up by a
/// message from the server's node, which may still be on its way: the
/// monitor would then find no port and fire with `no_such_port`. And
/// `Node::shutdown` closes connections at once, dropping what was not
/// written yet: the server would see a lost connection. Messages between
/// two nodes arrive in order, so an answered request to the server's node
/// before the kill proves the monitor request has arrived, and one after
/// the kill proves the death notice has gone out.
pub async fn leave(node: &Node, me: &PortId, server: &PortId) {
    let server_node = server.node().node_port();
    let patience = Duration::from_secs(5);
    let _ = node.call(&server_node, msg!["info"], patience).await;
    let gone = node.dead(me);
    node.kil(me, Reason::normal());
    gone.await;
    let _ = node.call(&server_node, msg!["info"], patience).await;
}
// ANCHOR_END: leave

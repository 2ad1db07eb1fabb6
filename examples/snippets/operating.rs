//! Snippets of the chapter "Operating aemp".

// ANCHOR: imports
use aemp::{msg, NetConfig, Node};
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    let tuned = tuned();
    assert_eq!(tuned.framings, ["json"]);
    oversized().await
}

// ANCHOR: tuned
/// Network settings beyond the defaults.
pub fn tuned() -> NetConfig {
    let mut net = NetConfig::default();
    net.binds = vec!["0.0.0.0:4040".into()];
    net.secret = Some("from a file, not from the source".into());
    // Refuse messages over 1 MiB (the connection that sends one is closed).
    net.max_message = 1 << 20;
    // Treat a peer as failed when 8 MiB wait to be written to it.
    net.send_queue_limit = 8 << 20;
    // At most 256 connections, in handshake or established.
    net.max_connections = 256;
    // A slow network: allow 30 s of silence before a peer counts as dead.
    net.monitor_timeout = 30.0;
    // Give up on queued messages to an unreachable node after 5 s.
    net.connect_timeout = 5.0;
    // Readable traffic (for a packet capture); the default prefers msgpack.
    net.framings = vec!["json".into()];
    net
}
// ANCHOR_END: tuned

// ANCHOR: oversized
/// A message over the receiver's limit closes the connection, and the
/// sender's monitors learn it.
///
/// # Errors
/// When the nodes cannot start.
pub async fn oversized() -> aemp::Result<()> {
    let mut small = super::local_net("limits");
    small.max_message = 1024;
    let receiver = Node::builder().id("small-receiver").net_config(small).build().await?;
    let sink = receiver.port_with(|_ctx, _m| {});
    let mut net = super::local_net("limits");
    net.seeds = receiver.listen_addrs();
    let sender = Node::builder().id("big-sender").net_config(net).build().await?;
    let death = sender.dead(&sink);
    sender.snd(&sink, msg!["blob", "x".repeat(4096)]);
    let reason = death.await;
    assert_eq!(reason.kind(), Some("transport_error"));
    println!("the sender saw: {reason}");
    sender.shutdown().await;
    receiver.shutdown().await;
    Ok(())
}
// ANCHOR_END: oversized

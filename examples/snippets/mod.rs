//! The book's small examples, one module per chapter. Each module's `run`
//! executes its snippets, which check their own results with `assert!`.

pub mod monitors;
pub mod nodes;
pub mod operating;
pub mod ports;
pub mod protocol;
pub mod security;
pub mod spawning;
pub mod supervision;
pub mod tagged;
pub mod troubleshooting;

use aemp::{NetConfig, Node};

/// Runs every chapter's snippets.
///
/// # Errors
/// The first error a snippet returns.
pub async fn run_all() -> aemp::Result<()> {
    ports::run().await?;
    tagged::run().await?;
    monitors::run().await?;
    spawning::run().await?;
    nodes::run().await?;
    security::run().await?;
    protocol::run()?;
    supervision::run().await?;
    operating::run().await?;
    troubleshooting::run().await?;
    Ok(())
}

// ANCHOR: two_nodes
/// Network settings for a snippet node: a free port on 127.0.0.1 and a
/// shared secret.
pub fn local_net(secret: &str) -> NetConfig {
    let mut net = NetConfig::default();
    net.binds = vec!["127.0.0.1:0".into()];
    net.secret = Some(secret.into());
    net
}

/// Two connected nodes on 127.0.0.1 (the second has the first as seed).
///
/// # Errors
/// When a node cannot start.
pub async fn two_nodes(a: &str, b: &str) -> aemp::Result<(Node, Node)> {
    let first = Node::builder().id(a).net_config(local_net("snippets")).build().await?;
    let mut net = local_net("snippets");
    net.seeds = first.listen_addrs();
    let second = Node::builder().id(b).net_config(net).build().await?;
    Ok((first, second))
}
// ANCHOR_END: two_nodes

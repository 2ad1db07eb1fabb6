//! Shared helpers for the integration tests.

use std::time::Duration;

use aemp::{Msg, Node, PortId, Reason};
use tokio::sync::mpsc;

pub mod support;

pub use support::logs::Logs;
pub use support::proxy::Proxy;
pub use support::raw::Raw;

/// How long a test waits for an event before it fails (a guard against
/// hangs, never a synchronisation).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A port that forwards every message it gets to a channel.
pub fn collector(node: &Node) -> (PortId, mpsc::UnboundedReceiver<Msg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let port = node.port_with(move |_ctx, m| {
        let _ = tx.send(m);
    });
    (port, rx)
}

/// The next message of a collector, failing the test after [`PATIENCE`].
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Msg>) -> Msg {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("timed out waiting for a message")
        .expect("channel closed")
}

/// Waits for a port's death, failing the test after [`PATIENCE`].
pub async fn death(node: &Node, port: &PortId) -> Reason {
    tokio::time::timeout(PATIENCE, node.dead(port)).await.expect("timed out waiting for a port to die")
}

/// Waits for any future, failing the test after [`PATIENCE`].
pub async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(PATIENCE, f).await.expect("timed out")
}

/// A fresh single node with a random ID.
pub async fn node() -> Node {
    Node::builder().build().await.expect("node starts")
}

/// Installs a tracing subscriber once (RUST_LOG controls it).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

//! Monitors on a node's own node port (`NODEID#`): the node port lives as
//! long as its node, so such a monitor fires only when the node shuts down.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use aemp::{msg, Node, Reason};

/// A guard against hangs, never a synchronisation.
const PATIENCE: Duration = Duration::from_secs(30);

/// Whether `f` is still pending after one poll.
async fn pending<F: Future + Unpin>(f: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx).is_pending())).await
}

#[tokio::test]
async fn dead_on_the_own_node_port_waits_until_the_node_shuts_down() {
    let node = Node::builder().build().await.unwrap();
    let mut dead = Box::pin(node.dead(&node.id().node_port()));
    // A round trip through the dispatcher: the monitor is in place (the
    // node's requests run in order), and it must not have fired.
    let info = node.call(&node.id().node_port(), msg!["info"], PATIENCE).await.unwrap();
    assert_eq!(info, msg![node.id()]);
    assert!(pending(&mut dead).await, "the node runs: its node port is alive");
    node.shutdown().await;
    assert_eq!(dead.await, Reason::die("node shut down"));
}

#[tokio::test]
async fn calls_to_the_own_node_port_are_answered_while_the_node_runs() {
    let node = Node::builder().build().await.unwrap();
    for _ in 0..50 {
        let up = node.call(&node.id().node_port(), msg!["up_nodes"], PATIENCE).await;
        assert_eq!(up.unwrap(), msg![], "a node without a network has no links");
    }
    node.shutdown().await;
}

#[tokio::test]
async fn a_monitor_on_the_own_node_port_fires_at_shutdown_unless_cancelled() {
    let node = Node::builder().build().await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    node.mon(&node.id().node_port(), move |r: Reason| {
        let _ = tx.send(r);
    })
    .keep();
    let (tx2, mut rx2) = tokio::sync::oneshot::channel::<Reason>();
    let cancelled = node.mon(&node.id().node_port(), move |r: Reason| {
        let _ = tx2.send(r);
    });
    drop(cancelled);
    node.call(&node.id().node_port(), msg!["info"], PATIENCE).await.unwrap();
    node.shutdown().await;
    assert_eq!(rx.await.unwrap(), Reason::die("node shut down"));
    // The cancelled monitor's closure was dropped without being called.
    assert!(matches!(rx2.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Closed)));
}

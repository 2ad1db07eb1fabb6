//! Snippets of the chapter "Monitoring and killing".

// ANCHOR: imports
use std::time::Duration;

use aemp::{msg, MonAction, Node, Reason};

use super::two_nodes;
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    let node = Node::builder().build().await?;
    forms(&node).await;
    normal(&node).await?;
    guards(&node).await;
    keep_alive(&node).await;
    node.shutdown().await;
    remote().await?;
    Ok(())
}

// ANCHOR: forms
/// The three things a monitor can do when its port dies.
pub async fn forms(node: &Node) {
    let worker = node.port_with(|_ctx, _m| {});
    // 1. Call a closure with the reason.
    let (tx, mut reasons) = tokio::sync::mpsc::unbounded_channel();
    node.mon(&worker, move |reason: Reason| {
        let _ = tx.send(reason);
    })
    .keep();
    // 2. Kill another port with the same reason (abnormal deaths only).
    let partner = node.port_with(|_ctx, _m| {});
    node.mon(&worker, &partner).keep();
    // 3. Send a message to a port, followed by the reason's values.
    let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let observer = node.port_with(move |_ctx, m| {
        let _ = tx.send(m);
    });
    node.mon(&worker, MonAction::send(&observer, msg!["died", "worker-1"])).keep();

    let partner_death = node.dead(&partner);
    node.kil(&worker, msg!["overheated", 90]);
    assert_eq!(reasons.recv().await, Some(Reason::from(msg!["overheated", 90])));
    assert_eq!(partner_death.await, Reason::from(msg!["overheated", 90]));
    assert_eq!(notes.recv().await, Some(msg!["died", "worker-1", "overheated", 90]));
}
// ANCHOR_END: forms

// ANCHOR: normal
/// A normal kill (no reason) does not spread to linked ports.
///
/// # Errors
/// When the partner does not answer.
pub async fn normal(node: &Node) -> aemp::Result<()> {
    let worker = node.port_with(|_ctx, _m| {});
    let partner = node.port_with(|ctx, m| {
        ctx.snd(&m.port(0)?, msg!["still here"]);
        Ok(())
    });
    node.mon(&worker, &partner).keep();
    let death = node.dead(&worker);
    node.kil(&worker, Reason::normal());
    assert!(death.await.is_normal());
    let answer = node.call(&partner, msg![], Duration::from_secs(5)).await?;
    assert_eq!(answer, msg!["still here"]);
    Ok(())
}
// ANCHOR_END: normal

// ANCHOR: guards
/// Dropping the guard stops a monitor; `keep` keeps it until it fires.
pub async fn guards(node: &Node) {
    let worker = node.port_with(|_ctx, _m| {});
    let (tx, mut fired) = tokio::sync::mpsc::unbounded_channel();
    let tx2 = tx.clone();
    let guard = node.mon(&worker, move |_r: Reason| {
        let _ = tx.send("first");
    });
    node.mon(&worker, move |_r: Reason| {
        let _ = tx2.send("second");
    })
    .keep();
    drop(guard);
    node.kil(&worker, "stop");
    assert_eq!(fired.recv().await, Some("second"));
    // Both closures are gone now: one cancelled, one fired (monitors are one-shot).
    assert_eq!(fired.recv().await, None);
}
// ANCHOR_END: guards

// ANCHOR: keep_alive
/// `mon_guard`: keep a value alive exactly as long as a port.
pub async fn keep_alive(node: &Node) {
    let session = node.port_with(|_ctx, _m| {});
    // Anything with a `Drop`: a timer guard, a task handle, a file...
    let (resource, dropped) = tokio::sync::oneshot::channel::<()>();
    node.mon_guard(&session, resource).keep();
    node.kil(&session, Reason::normal());
    // The sender was dropped with the port.
    assert!(dropped.await.is_err());
}
// ANCHOR_END: keep_alive

// ANCHOR: remote
/// Monitoring and killing across nodes.
///
/// # Errors
/// When a node cannot start or does not answer.
pub async fn remote() -> aemp::Result<()> {
    let (here, there) = two_nodes("mon-here", "mon-there").await?;
    // Killing a port on another aemp node (not possible with AnyEvent::MP 0.9).
    let victim = there.port_with(|_ctx, _m| {});
    let death = here.dead(&victim);
    here.kil(&victim, Reason::from("shutting down"));
    assert_eq!(death.await, Reason::from("shutting down"));
    // Losing the node: every monitor on its ports fires.
    let survivor = there.port_with(|_ctx, _m| {});
    let death = here.dead(&survivor);
    // A round trip proves that the monitor is in place over there.
    here.call(&there.id().node_port(), msg!["info"], Duration::from_secs(10)).await?;
    there.shutdown().await;
    let reason = death.await;
    assert_eq!(reason.kind(), Some("transport_error"));
    println!("the survivor did not survive: {reason}");
    here.shutdown().await;
    Ok(())
}
// ANCHOR_END: remote

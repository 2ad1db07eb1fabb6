//! Snippets of the chapter "Supervision trees".

use std::time::Duration;

use aemp::{msg, Msg, Node};
use aemp_supervisor::{
    defer_start, on_shutdown, Backoff, ChildSpec, ChildStatus, Error, EventKind, EventStream, Intensity,
    Strategy, Supervisor, SupervisorSpec,
};

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    let node = Node::builder().build().await?;
    node.register("Book::worker", worker_init);
    node.register("Book::connector", connector_init);
    manage(&node).await.map_err(aemp::Error::die)?;
    dynamic(&node).await.map_err(aemp::Error::die)?;
    backoff(&node).await.map_err(aemp::Error::die)?;
    deferred(&node).await.map_err(aemp::Error::die)?;
    causes(&node).await.map_err(aemp::Error::die)?;
    node.shutdown().await;
    Ok(())
}

// ANCHOR: graceful
/// A worker: answers `["ping", reply]`, and stops gracefully when its
/// supervisor asks.
fn worker_init(ctx: &mut aemp::Ctx<'_>, _args: Msg) {
    let me = ctx.self_id();
    ctx.rcv_tag(&me, "ping", |ctx, m| -> aemp::Result<()> {
        ctx.snd(&m.port(0)?, msg!["pong"]);
        Ok(())
    });
    // On ["shutdown"]: run the cleanup, exit with ("shutdown", ...).
    on_shutdown(ctx, |_ctx| println!("worker: saving state before I go"));
}
// ANCHOR_END: graceful

// ANCHOR: manage
/// Stopping, starting again and forgetting children by hand.
///
/// # Errors
/// When the supervisor fails.
pub async fn manage(node: &Node) -> Result<(), Error> {
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::new("db", "Book::worker"))
        .child(ChildSpec::new("cache", "Book::worker"));
    let sup = Supervisor::start(node, spec).await?;
    // Stop the cache, keeping its spec: it stays stopped.
    sup.terminate_child("cache").await?;
    let counts = sup.count_children().await?;
    assert_eq!((counts.specs, counts.active), (2, 1));
    // Only a stopped child can be started again, or deleted.
    assert!(matches!(sup.delete_child("db").await, Err(Error::ChildNotStopped { .. })));
    sup.restart_child("cache").await?;
    for child in sup.which_children().await? {
        println!(
            "{:<6} {:<8} restarts {} recent / {} in all",
            child.id, child.status, child.recent_restarts, child.total_restarts
        );
    }
    sup.terminate_child("cache").await?;
    sup.delete_child("cache").await?;
    assert_eq!(sup.which_children().await?.len(), 1);
    sup.stop().await
}
// ANCHOR_END: manage

// ANCHOR: dynamic
/// A dynamic supervisor: children made from a template at run time, at
/// most 100 of them.
///
/// # Errors
/// When the supervisor fails.
pub async fn dynamic(node: &Node) -> Result<(), Error> {
    let template = ChildSpec::new("session", "Book::worker");
    let sup = Supervisor::start(node, SupervisorSpec::simple_one_for_one(template).max_children(100)).await?;
    // Each child gets its own arguments (appended to the template's).
    let (id, port) = sup.start_dynamic(msg!["alice"]).await?;
    assert_eq!(id, "session-1");
    sup.start_dynamic(msg!["bob"]).await?;
    // Removed by the port the rest of the program knows it by.
    sup.remove_child(&port).await?;
    assert_eq!(sup.count_children().await?.active, 1);
    // Stopping the supervisor stops all its children at once.
    sup.stop().await
}
// ANCHOR_END: dynamic

// ANCHOR: backoff
/// Restarts spaced out: 100 ms, 200 ms, 400 ms, ... up to 10 s, each moved
/// by up to 20 % either way; a child that ran for a minute starts over.
///
/// # Errors
/// When the supervisor fails.
pub async fn backoff(node: &Node) -> Result<(), Error> {
    let mut events = EventStream::new(node);
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
        .random_factor(0.2)
        .reset_after(Duration::from_secs(60));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(10, Duration::from_secs(60)))
        .backoff(backoff)
        .observer(events.port())
        .child(ChildSpec::new("flaky", "Book::worker"));
    let sup = Supervisor::start(node, spec).await?;
    let port = sup.which_children().await?[0].port.clone().expect("running");
    node.kil(&port, msg!["connection", "reset"]);
    // The events say what happens, numbered, in order.
    while let Some(e) = events.next().await {
        match e.kind {
            EventKind::Exited { id, reason } => println!("#{} {id} exited: {reason}", e.seq),
            EventKind::Restarting { delay, .. } => println!("#{} restarting in {delay:?}", e.seq),
            EventKind::Started { id, node, .. } => {
                println!("#{} {id} started on {node}", e.seq);
                if e.seq > 1 {
                    break;
                }
            }
            other => println!("#{} {other:?}", e.seq),
        }
    }
    sup.stop().await
}
// ANCHOR_END: backoff

// ANCHOR: deferred
/// A child that is ready only once it has connected somewhere: it confirms
/// its start itself, and has 5 seconds for it.
fn connector_init(ctx: &mut aemp::Ctx<'_>, _args: Msg) {
    let ready = defer_start(ctx);
    ctx.spawn_task(async move {
        // ... connect ...
        ready.confirm();
        Ok::<(), aemp::Error>(())
    });
    on_shutdown(ctx, |_ctx| {});
}

/// Starts the connector under a supervisor.
///
/// # Errors
/// When the supervisor fails.
pub async fn deferred(node: &Node) -> Result<(), Error> {
    let child = ChildSpec::new("link", "Book::connector").start_timeout(Duration::from_secs(5));
    let sup = Supervisor::start(node, SupervisorSpec::new(Strategy::OneForOne).child(child)).await?;
    assert_eq!(sup.which_children().await?[0].status, ChildStatus::Running);
    sup.stop().await
}
// ANCHOR_END: deferred

// ANCHOR: causes
/// Why a tree failed to start, however deep the failing child.
///
/// # Errors
/// When the node fails.
pub async fn causes(node: &Node) -> Result<(), Error> {
    let storage = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new("db", "No::Such::Db"));
    let app = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("storage", storage));
    let err = Supervisor::start(node, app).await.expect_err("db cannot start");
    let cause = err.root_cause().expect("a failed start");
    println!("{} failed: {}", cause.path.join(" > "), cause.reason);
    assert_eq!(cause.path, ["storage", "db"]);
    assert_eq!(cause.reason.kind(), Some("die"));
    Ok(())
}
// ANCHOR_END: causes

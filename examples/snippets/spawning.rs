//! Snippets of the chapter "Spawning on other nodes".

// ANCHOR: imports
use std::time::Duration;

use aemp::{msg, Ctx, Msg, Reason};

use super::two_nodes;
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    spawn_remote().await
}

// ANCHOR: init
/// An init function: runs in the new port's context with the spawn
/// arguments, and sets up the port's callbacks.
fn counter(ctx: &mut Ctx<'_>, args: Msg) -> aemp::Result<()> {
    let mut total: i64 = args.get(0)?;
    let me = ctx.self_id();
    ctx.rcv_tag(&me, "add", move |ctx, m| {
        total += m.get::<i64>(0)?;
        ctx.snd(&m.port(1)?, msg![total]);
        Ok(())
    });
    Ok(())
}
// ANCHOR_END: init

/// Spawning by name, and what happens when it fails.
///
/// # Errors
/// When the nodes cannot start or the counter does not answer.
pub async fn spawn_remote() -> aemp::Result<()> {
    let (here, there) = two_nodes("spawner", "worker").await?;
    // ANCHOR: spawn
    // On the node that will run the ports: make the name known.
    there.register("Snippets::counter", counter);
    // Anywhere: start one there. The ID comes back at once.
    let c = here.spawn(there.id(), "Snippets::counter", msg![100]);
    let total = here.call(&c, msg!["add", 5], Duration::from_secs(10)).await?;
    assert_eq!(total, msg![105]);
    // ANCHOR_END: spawn

    // ANCHOR: spawn_fails
    // A name the node did not register: no port, and a monitor says why.
    let ghost = here.spawn(there.id(), "Snippets::nope", msg![]);
    assert_eq!(here.dead(&ghost).await, Reason::die("unknown init function \"Snippets::nope\""));
    // The init function failed (here: its argument is not a number).
    let bad = here.spawn(there.id(), "Snippets::counter", msg!["many"]);
    let reason = here.dead(&bad).await;
    assert_eq!(reason.kind(), Some("die"));
    println!("the bad counter died: {reason}");
    // ANCHOR_END: spawn_fails
    here.shutdown().await;
    there.shutdown().await;
    Ok(())
}

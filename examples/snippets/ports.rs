//! Snippets of the chapter "Ports and messages".

// ANCHOR: imports
use std::time::Duration;

use aemp::{msg, Msg, Node, PortId, Reason};
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    messages()?;
    let node = Node::builder().build().await?;
    first_port(&node).await?;
    no_callback(&node).await;
    named(&node).await?;
    not_blocking(&node).await?;
    node.shutdown().await;
    Ok(())
}

// ANCHOR: messages
/// Building a message and taking it apart.
///
/// # Errors
/// Never, unless the accessors misbehave.
pub fn messages() -> aemp::Result<()> {
    let reply: PortId = "client-node#r1.7".parse()?;
    let m = msg!["add", 2, 3.5, &reply, vec!["x", "y"]];
    assert_eq!(m.tag(), Some("add"));
    let n: i64 = m.get(1)?;
    let f: f64 = m.get(2)?;
    let to = m.port(3)?;
    let names: Vec<String> = m.get(4)?;
    assert_eq!((n, f, &to, names.len()), (2, 3.5, &reply, 2));
    // A wrong type or a missing element is an error, never a panic.
    assert!(m.get::<String>(1).is_err());
    assert!(m.get::<i64>(9).is_err());
    // Messages print as JSON arrays.
    assert_eq!(msg!["said", "bob", "hi"].to_string(), r#"["said","bob","hi"]"#);
    Ok(())
}
// ANCHOR_END: messages

// ANCHOR: first_port
/// A port with one callback, a message to it, and a reply.
///
/// # Errors
/// When the reply does not come.
pub async fn first_port(node: &Node) -> aemp::Result<()> {
    // The callback gets the context (`ctx`) and the whole message.
    let doubler = node.port_with(|ctx, m| {
        let n: i64 = m.get(0)?;
        let reply = m.port(1)?;
        ctx.snd(&reply, msg![n * 2]);
        Ok(())
    });
    // A port that passes what it gets to this task.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let inbox = node.port_with(move |_ctx, m| {
        let _ = tx.send(m);
    });
    node.snd(&doubler, msg![21, &inbox]);
    assert_eq!(rx.recv().await, Some(msg![42]));
    Ok(())
}
// ANCHOR_END: first_port

// ANCHOR: no_callback
/// A port without a callback dies of the first message it gets.
pub async fn no_callback(node: &Node) {
    let port = node.port();
    let death = node.dead(&port);
    node.snd(&port, msg!["hello"]);
    let reason = death.await;
    assert_eq!(reason.kind(), Some("die"));
    println!("{port} died: {reason}");
}
// ANCHOR_END: no_callback

// ANCHOR: named
/// A port with a fixed name, reachable as `NODE#echo`.
///
/// # Errors
/// When the name is not allowed.
pub async fn named(node: &Node) -> aemp::Result<()> {
    let echo = node.named_port("echo", |ctx, m| {
        // `call` (like `aemp rpc`) appends the reply port as the last element.
        let last = m.len().saturating_sub(1);
        let reply = m.port(last)?;
        ctx.snd(&reply, Msg::from(&m[..last]));
        Ok(())
    })?;
    assert_eq!(echo.as_str(), format!("{}#echo", node.id()));
    let answer = node.call(&echo, msg!["hello", 1], Duration::from_secs(5)).await?;
    assert_eq!(answer, msg!["hello", 1]);
    Ok(())
}
// ANCHOR_END: named

// ANCHOR: not_blocking
/// Slow work outside the callback: a task tied to the port, and a `psub`
/// that brings the result back into the port's context.
///
/// # Errors
/// When the answer does not come.
pub async fn not_blocking(node: &Node) -> aemp::Result<()> {
    let slow = node.port_with(|ctx, m| {
        let reply = m.port(0)?;
        // Runs later, as if it were a callback of this port.
        let answer = ctx.psub(move |ctx, n: u64| ctx.snd(&reply, msg!["done", n]));
        // Cancelled if the port dies first.
        ctx.spawn_task(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            answer.call(42);
            Ok::<(), aemp::Error>(())
        });
        Ok(())
    });
    let answer = node.call(&slow, msg![], Duration::from_secs(5)).await?;
    assert_eq!(answer, msg!["done", 42]);
    // A timer: a message to a port after a delay.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let alarm = node.port_with(move |_ctx, m| {
        let _ = tx.send(m);
    });
    node.after(Duration::from_millis(10), &alarm, msg!["wake up"]).keep();
    assert_eq!(rx.recv().await, Some(msg!["wake up"]));
    node.kil(&slow, Reason::normal());
    Ok(())
}
// ANCHOR_END: not_blocking

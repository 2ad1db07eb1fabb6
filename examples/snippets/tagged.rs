//! Snippets of the chapter "Tagged receive and typed messages".

// ANCHOR: imports
use std::collections::HashMap;
use std::time::Duration;

use aemp::{msg, AempMessage, Message, Node, TypedPortId};
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    let node = Node::builder().build().await?;
    tags(&node).await;
    one_shot(&node).await;
    inbox(&node).await?;
    wire_shapes()?;
    typed_store(&node).await?;
    node.shutdown().await;
    Ok(())
}

// ANCHOR: tags
/// Tag callbacks, a default callback, and changing them later.
pub async fn tags(node: &Node) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let counted = tx.clone();
    let port = node
        .port_builder()
        // Gets ["ping", reply] as [reply]: the tag is taken off.
        .on("ping", |ctx, m| {
            ctx.snd(&m.port(0)?, msg!["pong"]);
            Ok(())
        })
        // Gets every message that no tag callback took, whole.
        .default(move |_ctx, m| {
            let _ = tx.send(m);
        })
        .create();
    node.snd(&port, msg!["weather", "sunny"]);
    assert_eq!(rx.recv().await, Some(msg!["weather", "sunny"]));

    // Add a tag callback to a living port, then take it away again.
    node.rcv_tag(&port, "count", move |_ctx, m| {
        let _ = counted.send(msg!["counted", m.len()]);
    });
    node.snd(&port, msg!["count", "a", "b"]);
    assert_eq!(rx.recv().await, Some(msg!["counted", 2]));
    node.unrcv(&port, "count");
    node.snd(&port, msg!["count", "c"]);
    assert_eq!(rx.recv().await, Some(msg!["count", "c"]));
}
// ANCHOR_END: tags

// ANCHOR: one_shot
/// A tag callback that takes one message and then removes itself.
pub async fn one_shot(node: &Node) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let rest = tx.clone();
    let port = node.port_with(move |_ctx, m| {
        let _ = rest.send(("default", m));
    });
    node.rcv_tag(&port, "ticket", move |ctx, m| {
        let _ = tx.send(("ticket", m));
        let me = ctx.self_id();
        ctx.unrcv(&me, "ticket");
    });
    node.snd(&port, msg!["ticket", 1]);
    node.snd(&port, msg!["ticket", 2]);
    assert_eq!(rx.recv().await, Some(("ticket", msg![1])));
    assert_eq!(rx.recv().await, Some(("default", msg!["ticket", 2])));
}
// ANCHOR_END: one_shot

// ANCHOR: inbox
/// An async port: a task takes its messages in the order it chooses.
///
/// # Errors
/// When the task's result does not come back.
pub async fn inbox(node: &Node) -> aemp::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // At most 16 messages wait in the inbox; one more kills the port.
    let worker = node.spawn_async(16, move |mut inbox| async move {
        // Wait for "config"; other messages stay queued meanwhile.
        let config = inbox.recv_tag("config").await.ok_or("killed")?;
        let mut order = vec![config];
        while let Some(m) = inbox.try_recv() {
            order.push(m);
        }
        let _ = tx.send(order);
        Ok::<(), &str>(())
    });
    node.snd(&worker, msg!["work", 1]);
    node.snd(&worker, msg!["work", 2]);
    node.snd(&worker, msg!["config", "fast"]);
    let order = rx.await.map_err(|_| aemp::Error::die("the worker ended early"))?;
    assert_eq!(order, [msg!["config", "fast"], msg!["work", 1], msg!["work", 2]]);
    Ok(())
}
// ANCHOR_END: inbox

// ANCHOR: derive
/// Requests to a small key-value store: one tag per variant.
#[derive(AempMessage, Debug, Clone, PartialEq)]
#[aemp(rename_all = "kebab-case")]
pub enum StoreRequest {
    /// `["put-value", key, value]`
    PutValue(String, i64),
    /// `["get-value", key, reply]`
    GetValue {
        /// The key to look up.
        key: String,
        /// Where the answer goes: a port that takes [`StoreReply`].
        reply: TypedPortId<StoreReply>,
    },
    /// `["stats"]`
    #[aemp(rename = "stats")]
    Statistics,
}

/// The store's answer. A struct is one message with one tag.
#[derive(AempMessage, Debug, Clone, PartialEq)]
#[aemp(tag = "value")]
pub struct StoreReply {
    /// The key asked for.
    pub key: String,
    /// Its value, `null` on the wire when there is none.
    pub value: Option<i64>,
}
// ANCHOR_END: derive

// ANCHOR: wire_shapes
/// What the derived types look like as messages.
///
/// # Errors
/// When encoding fails.
pub fn wire_shapes() -> aemp::Result<()> {
    assert_eq!(StoreRequest::PutValue("a".into(), 1).to_msg()?, msg!["put-value", "a", 1]);
    assert_eq!(StoreRequest::Statistics.to_msg()?, msg!["stats"]);
    assert_eq!(StoreReply { key: "a".into(), value: None }.to_msg()?, msg!["value", "a", ()]);
    assert_eq!(StoreRequest::TAGS, ["put-value", "get-value", "stats"]);
    // Decoding checks the tag, the number of fields and their types.
    let err = StoreRequest::from_msg(&msg!["put-value", "a", "one"]).unwrap_err();
    println!("{err}");
    assert!(err.to_string().starts_with(r#"message "put-value": field 1 (element 2)"#));
    Ok(())
}
// ANCHOR_END: wire_shapes

// ANCHOR: typed_store
/// A typed port, typed sends, and a typed request with its reply.
///
/// # Errors
/// When the store does not answer.
pub async fn typed_store(node: &Node) -> aemp::Result<()> {
    let mut data = HashMap::new();
    let store = node.port_typed(move |ctx, request: StoreRequest| {
        match request {
            StoreRequest::PutValue(key, value) => {
                data.insert(key, value);
            }
            StoreRequest::GetValue { key, reply } => {
                let value = data.get(&key).copied();
                ctx.snd_typed(&reply, &StoreReply { key, value })?;
            }
            StoreRequest::Statistics => println!("{} keys", data.len()),
        }
        Ok(())
    });
    node.snd_typed(&store, &StoreRequest::PutValue("a".into(), 1))?;
    // An untyped sender reaches it as well: the wire shape is the same.
    node.snd(store.id(), msg!["put-value", "b", 2]);
    let get = |key: &str| {
        let key = key.to_owned();
        node.call_typed(&store, |reply| StoreRequest::GetValue { key, reply }, Duration::from_secs(5))
    };
    assert_eq!(get("b").await?, StoreReply { key: "b".into(), value: Some(2) });
    assert_eq!(get("z").await?.value, None);
    // A message with a known tag that does not decode kills the port.
    let death = node.dead(store.id());
    node.snd(store.id(), msg!["put-value", "c", "three"]);
    let reason = death.await;
    assert_eq!(reason.kind(), Some("die"));
    println!("the store died: {reason}");
    Ok(())
}
// ANCHOR_END: typed_store

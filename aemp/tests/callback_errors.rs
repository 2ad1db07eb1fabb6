//! Errors about a message's elements read the same in every kind of
//! callback: they name the message's tag, and number the elements as in the
//! message that was sent (the tag is element 0).

use std::time::Duration;

use aemp::{msg, AempMessage, Msg, Node, Reason};

/// A guard against hangs, never a synchronisation.
const PATIENCE: Duration = Duration::from_secs(30);

async fn death(node: &Node, port: &aemp::PortId, m: Msg) -> String {
    let dead = node.dead(port);
    node.snd(port, m);
    let reason = tokio::time::timeout(PATIENCE, dead).await.expect("the port dies");
    assert_eq!(reason.kind(), Some("die"), "{reason}");
    reason.values()[1].as_str().unwrap().to_owned()
}

const WRONG: &str = r#"element 1: invalid type: expected i64, found string "x""#;

#[tokio::test]
async fn a_default_callback_names_the_tag_and_counts_the_tag_as_element_0() {
    let node = Node::builder().build().await.unwrap();
    let port = node.port_with(|_ctx, m| {
        let _: i64 = m.get(1)?;
        Ok(())
    });
    assert_eq!(death(&node, &port, msg!["add", "x"]).await, format!(r#"message "add": {WRONG}"#));
    node.shutdown().await;
}

#[tokio::test]
async fn a_tag_callback_names_its_tag_and_the_element_as_sent() {
    let node = Node::builder().build().await.unwrap();
    let port = node
        .port_builder()
        .on("add", |_ctx, m| {
            let _: i64 = m.get(0)?;
            Ok(())
        })
        .create();
    assert_eq!(
        death(&node, &port, msg!["add", "x"]).await,
        r#"message "add": argument 0 (element 1): invalid type: expected i64, found string "x""#
    );
    // A missing argument, and the same through rcv_tag.
    let port = node.port_with(|_ctx, _m| {});
    node.rcv_tag(&port, "pair", |_ctx, m| {
        m.str(1)?;
        Ok(())
    });
    assert_eq!(
        death(&node, &port, msg!["pair", "a"]).await,
        r#"message "pair": argument 1 (element 2): missing"#
    );
    node.shutdown().await;
}

#[derive(AempMessage, Debug)]
enum Calc {
    Add(i64),
}

#[tokio::test]
async fn a_typed_callback_counts_elements_the_same_way() {
    let node = Node::builder().build().await.unwrap();
    let port = node.port_typed(|_ctx, m: Calc| {
        let Calc::Add(_) = m;
    });
    let text = death(&node, port.id(), msg!["add", "x"]).await;
    assert_eq!(text, r#"message "add": field 0 (element 1): invalid type: expected i64, found string "x""#);
    node.shutdown().await;
}

#[tokio::test]
async fn an_async_port_reads_whole_messages_like_a_default_callback() {
    let node = Node::builder().build().await.unwrap();
    let port = node.spawn_async(4, |mut inbox| async move {
        let m = inbox.recv().await.ok_or(aemp::Error::Shutdown)?;
        let _: i64 = m.get(1)?;
        Ok::<(), aemp::Error>(())
    });
    assert_eq!(death(&node, &port, msg!["add", "x"]).await, format!(r#"message "add": {WRONG}"#));
    node.shutdown().await;
}

#[tokio::test]
async fn an_init_function_s_arguments_are_not_a_message_and_name_no_tag() {
    let node = Node::builder().build().await.unwrap();
    node.register("CallbackErrors::init", |_ctx, args| {
        let _: i64 = args.get(1)?;
        Ok(())
    });
    let port = node.spawn(node.id(), "CallbackErrors::init", msg!["first", "x"]);
    let reason = tokio::time::timeout(PATIENCE, node.dead(&port)).await.unwrap();
    assert_eq!(reason, Reason::die(WRONG));
    node.shutdown().await;
}

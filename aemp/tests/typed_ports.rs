//! Typed ports on one node: derived messages between typed and untyped
//! ports, and what happens to messages that do not decode.

use std::collections::BTreeMap;
use std::time::Duration;

use aemp::{msg, AempMessage, Error, Message, Msg, Node, PortId, Reason, TypedPortId, Value};
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(20);

#[derive(AempMessage, Debug, Clone, PartialEq)]
enum Chat {
    Join { client: PortId, nick: String },
    Say(String),
    Leave,
}

#[derive(AempMessage, Debug, Clone, PartialEq)]
struct Ping {
    seq: u64,
    reply: TypedPortId<Pong>,
}

#[derive(AempMessage, Debug, Clone, PartialEq)]
struct Pong(u64);

async fn node() -> Node {
    Node::builder().build().await.unwrap()
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(PATIENCE, f).await.expect("timed out")
}

/// A typed port forwarding what it decodes to a channel.
fn typed_collector<M: Message>(node: &Node) -> (TypedPortId<M>, mpsc::UnboundedReceiver<M>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let port = node.port_typed(move |_ctx, m: M| {
        let _ = tx.send(m);
    });
    (port, rx)
}

/// An untyped port forwarding every message to a channel.
fn collector(node: &Node) -> (PortId, mpsc::UnboundedReceiver<Msg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let port = node.port_with(move |_ctx, m| {
        let _ = tx.send(m);
    });
    (port, rx)
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    within(rx.recv()).await.expect("channel closed")
}

fn pid(s: &str) -> PortId {
    s.parse().unwrap()
}

#[tokio::test]
async fn typed_port_decodes_every_variant_sent_untyped() {
    let n = node().await;
    let (port, mut rx) = typed_collector::<Chat>(&n);
    n.snd(port.id(), msg!["join", "x#c", "bob"]);
    n.snd(port.id(), msg!["say", "hi"]);
    n.snd(port.id(), msg!["leave"]);
    assert_eq!(next(&mut rx).await, Chat::Join { client: pid("x#c"), nick: "bob".into() });
    assert_eq!(next(&mut rx).await, Chat::Say("hi".into()));
    assert_eq!(next(&mut rx).await, Chat::Leave);
    n.shutdown().await;
}

#[tokio::test]
async fn untyped_port_receives_typed_sends_as_plain_messages() {
    let n = node().await;
    let (port, mut rx) = collector(&n);
    let typed = TypedPortId::<Chat>::new_unchecked(port);
    n.snd_typed(&typed, &Chat::Join { client: pid("x#c"), nick: "bob".into() }).unwrap();
    n.snd_typed(&typed, &Chat::Leave).unwrap();
    assert_eq!(next(&mut rx).await, msg!["join", "x#c", "bob"]);
    assert_eq!(next(&mut rx).await, msg!["leave"]);
    n.shutdown().await;
}

#[tokio::test]
async fn typed_request_and_typed_reply_round_trip_through_ctx() {
    let n = node().await;
    let server = n.port_typed(|ctx, p: Ping| ctx.snd_typed(&p.reply, &Pong(p.seq * 2)));
    let (reply, mut rx) = typed_collector::<Pong>(&n);
    for seq in 1..=3 {
        n.snd_typed(&server, &Ping { seq, reply: reply.clone() }).unwrap();
    }
    for seq in 1..=3 {
        assert_eq!(next(&mut rx).await, Pong(seq * 2));
    }
    let pong = n.call_typed(&server, |reply| Ping { seq: 21, reply }, PATIENCE).await.unwrap();
    assert_eq!(pong, Pong(42));
    n.shutdown().await;
}

#[tokio::test]
async fn a_message_that_does_not_decode_kills_the_port_with_die_and_the_decode_error() {
    let n = node().await;
    let cases = [
        (
            msg!["join", "x#c", 5],
            r#"message "join": field "nick" (element 2): invalid type: expected a string, found integer 5"#,
        ),
        (
            msg!["join", "x#c"],
            r#"message "join": missing field "nick" (element 2): expected 3 elements, found 2"#,
        ),
        (
            msg!["join", "#c", "bob"],
            r##"message "join": field "client" (element 1): invalid ID "#c": the node ID is empty"##,
        ),
        (msg!["say"], r#"message "say": missing field 0 (element 1): expected 2 elements, found 1"#),
        (msg!["leave", 1], r#"message "leave": too many elements: expected 1, found 2"#),
    ];
    for (bad, text) in cases {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let port = n.port_typed(move |_ctx, m: Chat| {
            let _ = tx.send(m);
        });
        let dead = n.dead(port.id());
        n.snd(port.id(), bad.clone());
        let reason = within(dead).await;
        assert_eq!(reason, Reason::die(text), "for {bad}");
        assert!(rx.try_recv().is_err(), "the callback saw {bad}");
    }
    n.shutdown().await;
}

#[tokio::test]
async fn unknown_tags_and_untagged_messages_go_to_the_default_callback() {
    let n = node().await;
    let (port, mut untyped) = collector(&n);
    let (tx, mut typed) = mpsc::unbounded_channel();
    let port = n.rcv_typed(&port, move |_ctx, m: Chat| {
        let _ = tx.send(m);
    });
    n.snd(port.id(), msg!["shout", "HI"]);
    n.snd(port.id(), msg![5, "x"]);
    n.snd(port.id(), msg![]);
    n.snd_typed(&port, &Chat::Say("hi".into())).unwrap();
    assert_eq!(next(&mut untyped).await, msg!["shout", "HI"]);
    assert_eq!(next(&mut untyped).await, msg![5, "x"]);
    assert_eq!(next(&mut untyped).await, msg![]);
    assert_eq!(next(&mut typed).await, Chat::Say("hi".into()));
    assert!(untyped.try_recv().is_err());
    n.shutdown().await;
}

#[tokio::test]
async fn an_unknown_tag_kills_a_typed_port_without_default_callback() {
    let n = node().await;
    let (port, _rx) = typed_collector::<Chat>(&n);
    let dead = n.dead(port.id());
    n.snd(port.id(), msg!["shout", "HI"]);
    let reason = within(dead).await;
    assert_eq!(reason.kind(), Some("die"), "{reason}");
    assert!(reason.to_string().contains("no callback"), "{reason}");
    n.shutdown().await;
}

#[tokio::test]
async fn an_error_or_panic_in_a_typed_callback_kills_the_port() {
    let n = node().await;
    let port = n.port_typed(|_ctx, m: Chat| match m {
        Chat::Say(s) => Err(aemp::Error::die(format!("cannot say {s}"))),
        _ => Ok(()),
    });
    let dead = n.dead(port.id());
    n.snd_typed(&port, &Chat::Leave).unwrap();
    n.snd_typed(&port, &Chat::Say("x".into())).unwrap();
    assert_eq!(within(dead).await, Reason::die("cannot say x"));

    let port = n.port_typed(|_ctx, _: Chat| -> () { panic!("typed boom") });
    let dead = n.dead(port.id());
    n.snd_typed(&port, &Chat::Leave).unwrap();
    assert_eq!(within(dead).await, Reason::die("typed boom"));
    n.shutdown().await;
}

#[tokio::test]
async fn two_message_types_with_distinct_tags_share_a_port() {
    let n = node().await;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let port = n.port();
    let tx2 = tx.clone();
    let chat = n.rcv_typed(&port, move |_ctx, m: Chat| {
        let _ = tx.send(format!("{m:?}"));
    });
    let pong = n.rcv_typed(&port, move |_ctx, m: Pong| {
        let _ = tx2.send(format!("{m:?}"));
    });
    n.snd_typed(&chat, &Chat::Leave).unwrap();
    n.snd_typed(&pong, &Pong(1)).unwrap();
    assert_eq!(next(&mut rx).await, "Leave");
    assert_eq!(next(&mut rx).await, "Pong(1)");
    n.shutdown().await;
}

#[tokio::test]
async fn ctx_creates_typed_ports_that_work_at_once() {
    let n = node().await;
    let (done, mut rx) = typed_collector::<Pong>(&n);
    let starter = n.port_with(move |ctx, _| -> aemp::Result<()> {
        let done = done.clone();
        let echo = ctx.port_typed(move |ctx, p: Pong| ctx.snd_typed(&done, &p));
        ctx.snd_typed(&echo, &Pong(9))?;
        let me = ctx.self_id();
        let again = ctx.rcv_typed(&me, |ctx, p: Ping| ctx.snd_typed(&p.reply, &Pong(p.seq)));
        let back: TypedPortId<Pong> = ctx.self_typed();
        assert_eq!(back.id(), again.id());
        Ok(())
    });
    n.snd(&starter, msg!["go"]);
    assert_eq!(next(&mut rx).await, Pong(9));
    n.shutdown().await;
}

#[tokio::test]
async fn spawn_typed_passes_serialised_arguments_to_a_typed_init_function() {
    let n = node().await;
    n.register_typed("test::room", |ctx, (name, limit): (String, u32)| {
        let me = ctx.self_id();
        ctx.rcv_typed(&me, move |ctx, p: Ping| {
            ctx.snd_typed(&p.reply, &Pong(u64::from(limit) + name.len() as u64))
        });
    });
    let room: TypedPortId<Ping> = n.spawn_typed(n.id(), "test::room", &("lobby", 10u32)).unwrap();
    let pong = n.call_typed(&room, |reply| Ping { seq: 0, reply }, PATIENCE).await.unwrap();
    assert_eq!(pong, Pong(15));

    // Arguments of the wrong shape kill the new port.
    let bad: TypedPortId<Ping> = n.spawn_typed(n.id(), "test::room", &("lobby", "ten")).unwrap();
    let reason = within(n.dead(bad.id())).await;
    assert_eq!(reason.kind(), Some("die"));
    assert!(reason.to_string().contains("spawn arguments"), "{reason}");

    // Arguments that are not a sequence are refused before spawning.
    let e = n.spawn_typed::<Ping, _>(n.id(), "test::room", &5).unwrap_err();
    assert!(e.to_string().contains("spawn arguments"), "{e}");
    n.shutdown().await;
}

#[tokio::test]
async fn call_typed_reports_a_reply_that_does_not_decode_and_a_dead_port() {
    let n = node().await;
    let liar = n.port_typed(|ctx, p: Ping| ctx.snd(p.reply.id(), msg!["pong", "not a number"]));
    let e = n.call_typed(&liar, |reply| Ping { seq: 1, reply }, PATIENCE).await.unwrap_err();
    assert!(matches!(e, Error::Value(_)), "{e:?}");
    assert!(e.to_string().contains(r#"message "pong": field 0 (element 1)"#), "{e}");

    let gone: TypedPortId<Ping> = n.port_typed(|_, _: Ping| {});
    n.kil(gone.id(), Reason::normal());
    let e = n.call_typed(&gone, |reply| Ping { seq: 1, reply }, PATIENCE).await.unwrap_err();
    assert!(matches!(e, Error::NoSuchPort(_)), "{e:?}");
    n.shutdown().await;
}

#[tokio::test]
async fn a_message_that_cannot_be_encoded_is_not_sent() {
    #[derive(AempMessage, Debug)]
    struct Grid(BTreeMap<(i32, i32), u8>);

    let n = node().await;
    let (port, mut rx) = collector(&n);
    let typed = TypedPortId::<Grid>::new_unchecked(port);
    let e = n.snd_typed(&typed, &Grid(BTreeMap::from([((1, 2), 3)]))).unwrap_err();
    assert!(e.to_string().starts_with(r#"message "grid": field 0 (element 1): "#), "{e}");
    n.snd(typed.id(), msg!["probe"]);
    assert_eq!(next(&mut rx).await, msg!["probe"]);
    n.shutdown().await;
}

#[tokio::test]
async fn snd_typed_to_a_remote_port_is_an_ordinary_snd() {
    let n = node().await;
    let remote = TypedPortId::<Chat>::new_unchecked(pid("elsewhere#p"));
    // It is encoded and handed to `snd`, which routes it to the port's node
    // (here, a node without network drops it, as any snd would).
    n.snd_typed(&remote, &Chat::Leave).unwrap();
    n.shutdown().await;
}

#[test]
fn typed_port_ids_are_plain_strings_in_serde_and_messages() {
    let p = TypedPortId::<Chat>::new_unchecked(pid("n#c"));
    assert_eq!(aemp::to_value(&p).unwrap(), Value::from("n#c"));
    let back: TypedPortId<Chat> = aemp::from_value(Value::from("n#c")).unwrap();
    assert_eq!(back, p);
    assert!(aemp::from_value::<TypedPortId<Chat>>(Value::from("#c")).is_err());
    assert_eq!(p.to_string(), "n#c");
    assert!(format!("{p:?}").contains("\"n#c\""));
    assert_eq!(msg!["x", &p, p.clone()], msg!["x", "n#c", "n#c"]);
    assert_eq!(Value::from(p.clone()), Value::from("n#c"));
    assert_eq!(PortId::from(p.clone()), pid("n#c"));
    assert_eq!(p.untyped(), pid("n#c"));
}

//! Nodes talking over real TCP on 127.0.0.1 in one process (P14, P16,
//! P17, P25, P28-P31, P33, P35) and the node port's requests.

use std::time::Duration;

use aemp::{msg, MonAction, NetConfig, Node, Reason, Value};
use aemp_tests::{collector, death, next, within};

const SECRET: &str = "wire-test-secret";

fn cfg() -> NetConfig {
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some(SECRET.into());
    c.connect_timeout = 3.0;
    c
}

async fn public(id: &str) -> Node {
    Node::builder().id(id).net_config(cfg()).build().await.unwrap()
}

/// Two public nodes that know each other's address.
async fn pair(a: &str, b: &str) -> (Node, Node) {
    let na = public(a).await;
    let nb = public(b).await;
    na.add_node_addr(nb.id(), nb.listen_addrs()[0].clone());
    nb.add_node_addr(na.id(), na.listen_addrs()[0].clone());
    (na, nb)
}

fn echo(node: &Node) -> aemp::PortId {
    node.port_with(|ctx, m| -> aemp::Result<()> {
        let reply = m.port(0)?;
        ctx.snd(&reply, m.rest(1));
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p14_remote_ping_pong_over_tcp() {
    aemp_tests::init_tracing();
    let (a, b) = pair("pp-a", "pp-b").await;
    let e = echo(&b);
    let (c, mut rx) = collector(&a);
    a.snd(&e, msg![&c, "ping", 1]);
    assert_eq!(next(&mut rx).await, msg!["ping", 1]);
    // And back again, many times, in order.
    for i in 0..100 {
        a.snd(&e, msg![&c, i]);
        assert_eq!(next(&mut rx).await, msg![i]);
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p17_remote_messages_from_one_sender_arrive_in_order() {
    let (a, b) = pair("ord-a", "ord-b").await;
    let (c, mut rx) = collector(&a);
    let mut expect = 0u64;
    let cc = c.clone();
    let sink = b.port_with(move |ctx, m| -> aemp::Result<()> {
        let i: u64 = m.get(0)?;
        if i != expect {
            return Err(aemp::Error::die(format!("got {i}, expected {expect}")));
        }
        expect += 1;
        if i == 19_999 {
            ctx.snd(&cc, msg!["done"]);
        }
        Ok(())
    });
    let guard = a.mon(&sink, MonAction::send(&c, msg!["sink died"]));
    for i in 0..20_000u64 {
        a.snd(&sink, msg![i]);
    }
    assert_eq!(next(&mut rx).await, msg!["done"]);
    drop(guard);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p29_p30_remote_spawn_by_name_and_monitor() {
    let (a, b) = pair("sp-a", "sp-b").await;
    b.register("Remote::echo", |ctx, args| -> aemp::Result<()> {
        let tag: String = args.get(0)?;
        let me = ctx.self_id();
        ctx.rcv(&me, move |ctx, m| -> aemp::Result<()> {
            if m.tag() == Some("quit") {
                ctx.kil_self(aemp::Reason(m[1..].to_vec()));
                return Ok(());
            }
            let r = m.port(0)?;
            ctx.snd(&r, msg![tag.clone()]);
            Ok(())
        });
        Ok(())
    });
    let (c, mut rx) = collector(&a);
    let p = a.spawn(b.id(), "Remote::echo", msg!["hi"]);
    assert_eq!(p.node(), *b.id());
    let d = a.dead(&p);
    a.snd(&p, msg![&c]);
    assert_eq!(next(&mut rx).await, msg!["hi"]);
    a.snd(&p, msg!["quit", "custom_reason", "bye"]);
    assert_eq!(within(d).await, Reason::from(msg!["custom_reason", "bye"]));

    // An unknown init function: the monitor learns why (SPEC C.4).
    let q = a.spawn(b.id(), "No::Such::init", msg![]);
    let r = death(&a, &q).await;
    assert_eq!(r.kind(), Some("die"), "{r}");
    assert!(r.to_string().contains("No::Such::init"), "{r}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p24_monitoring_a_missing_remote_port_fires_no_such_port() {
    let (a, b) = pair("ns-a", "ns-b").await;
    let ghost = b.id().port("never-existed").unwrap();
    let r = death(&a, &ghost).await;
    assert_eq!(r, Reason::no_such_port());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p27_remote_kil_between_aemp_nodes() {
    let (a, b) = pair("k-a", "k-b").await;
    let target = b.port_with(|_, _| {});
    let d = b.dead(&target);
    let watch = a.dead(&target);
    a.kil(&target, msg!["remote", "kill"]);
    assert_eq!(within(d).await, Reason::from(msg!["remote", "kill"]));
    assert_eq!(within(watch).await, Reason::from(msg!["remote", "kill"]));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p28_losing_a_node_fires_monitors_with_transport_error() {
    let (a, b) = pair("te-a", "te-b").await;
    let p = echo(&b);
    let (c, mut rx) = collector(&a);
    a.snd(&p, msg![&c, "up"]);
    assert_eq!(next(&mut rx).await, msg!["up"]);
    let d = a.dead(&p);
    b.shutdown().await;
    let r = within(d).await;
    assert_eq!(r.kind(), Some("transport_error"), "{r}");
    assert_eq!(r.0[1], Value::from("te-b"));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p28_unreachable_node_fires_unable_to_connect() {
    let a = public("un-a").await;
    let nowhere = aemp::NodeId::new("nowhere").unwrap();
    // A port that was never listening.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    a.add_node_addr(&nowhere, addr);
    let r = death(&a, &nowhere.port("x").unwrap()).await;
    assert_eq!(r, Reason::transport_error("nowhere", "unable to connect"));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p33_a_wrong_secret_is_refused_on_both_sides() {
    let a = public("ws-a").await;
    let mut other = cfg();
    other.secret = Some("another secret".into());
    let b = Node::builder().id("ws-b").net_config(other).build().await.unwrap();
    a.add_node_addr(b.id(), b.listen_addrs()[0].clone());
    b.add_node_addr(a.id(), a.listen_addrs()[0].clone());
    let p = b.port_with(|_, _| {});
    let r = death(&a, &p).await;
    assert_eq!(r, Reason::transport_error("ws-b", "unable to connect"));
    assert!(a.up_nodes().is_empty() && b.up_nodes().is_empty());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p35_seeds_mesh_and_groups_and_a_private_node_reaches_a_third_node() {
    aemp_tests::init_tracing();
    let seed = public("g-seed").await;
    let seed_addr = seed.listen_addrs()[0].clone();
    let mut c = cfg();
    c.seeds = vec![seed_addr.clone()];
    let public2 = Node::builder().id("g-public").net_config(c.clone()).build().await.unwrap();
    let server = echo(&public2);
    public2.register_group(&server, "echo").unwrap();
    let mut private = c.clone();
    private.binds.clear();
    let client = Node::builder().id("g-private").net_config(private).build().await.unwrap();
    // The private node learns the group through the seed, then talks to the
    // third node directly.
    let (tx, mut joined) = tokio::sync::mpsc::unbounded_channel();
    client.mon_group("echo", move |ev| {
        let _ = tx.send(ev.clone());
    });
    let ev = within(joined.recv()).await.unwrap();
    assert_eq!(ev, aemp::GroupEvent::Joined(server.clone()));
    let (col, mut rx) = collector(&client);
    client.snd(&server, msg![&col, "via group"]);
    assert_eq!(next(&mut rx).await, msg!["via group"]);
    assert!(client.up_nodes().contains(public2.id()));
    // The member leaves when it dies.
    public2.kil(&server, Reason::normal());
    let ev = within(joined.recv()).await.unwrap();
    assert_eq!(ev, aemp::GroupEvent::Left(server.clone()));
    for n in [client, public2, seed] {
        n.shutdown().await;
    }
}

/// Every node of a network that starts all at once links to every other
/// and sees every member of a group: each node brings up links to several
/// peers at the same moment, from both ends, while Global's opening
/// messages are made under each link's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p35_many_nodes_starting_at_once_form_one_mesh_and_one_group() {
    const N: usize = 8;
    let seed = public("burst-seed").await;
    let mut c = cfg();
    c.seeds = vec![seed.listen_addrs()[0].clone()];
    let nodes = futures_join_all((0..N).map(|i| {
        let c = c.clone();
        async move {
            let n = Node::builder().id(format!("burst-{i}")).net_config(c).build().await.unwrap();
            let member = n.port_with(|_ctx, _m| {});
            n.register_group(&member, "burst").unwrap();
            n
        }
    }))
    .await;
    for n in &nodes {
        // Each node sees all N members (joins are reported as they come).
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let id = n.mon_group("burst", move |ev| {
            if let aemp::GroupEvent::Joined(p) = ev {
                let _ = tx.send(p.clone());
            }
        });
        let mut seen = std::collections::HashSet::new();
        while seen.len() < N {
            seen.insert(within(rx.recv()).await.unwrap());
        }
        n.unmon_group("burst", id);
        for other in &nodes {
            if other.id() != n.id() {
                within(n.wait_up(other.id())).await;
            }
        }
    }
    for n in nodes {
        n.shutdown().await;
    }
    seed.shutdown().await;
}

/// Runs futures concurrently, each on a task of its own, and collects
/// their outputs in order.
async fn futures_join_all<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_port_answers_info_time_and_refuses_eval() {
    let (a, b) = pair("np-a", "np-b").await;
    let np = b.id().node_port();
    let (c, mut rx) = collector(&a);
    a.snd(&np, msg!["info", &c, "pre"]);
    assert_eq!(next(&mut rx).await, msg!["pre", "np-b"]);
    a.snd(&np, msg!["time", &c]);
    let t = next(&mut rx).await;
    assert!(matches!(t[0], Value::Float(_)), "{t}");
    a.snd(&np, msg!["eval", "system('rm -rf /')", &c, "e"]);
    assert_eq!(next(&mut rx).await, msg!["e", "eval is not supported by aemp"]);
    a.snd(&np, msg!["up_nodes", &c]);
    assert_eq!(next(&mut rx).await, msg!["np-a"]);
    a.snd(&np, msg!["snd", &c, "relayed"]);
    assert_eq!(next(&mut rx).await, msg!["relayed"]);
    let _ = Duration::ZERO;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p33_tls_with_a_shared_self_signed_certificate_and_a_stranger_refused() {
    let pem = aemp::generate_cert_pem("AnyEvent::MP").unwrap();
    let mut c = cfg();
    c.cert_pem = Some(pem.clone());
    let a = Node::builder().id("tls-a").net_config(c.clone()).build().await.unwrap();
    let b = Node::builder().id("tls-b").net_config(c.clone()).build().await.unwrap();
    a.add_node_addr(b.id(), b.listen_addrs()[0].clone());
    let e = echo(&b);
    let (col, mut rx) = collector(&a);
    a.snd(&e, msg![&col, "over tls"]);
    assert_eq!(next(&mut rx).await, msg!["over tls"]);

    // A node with another certificate is not trusted.
    let mut s = cfg();
    s.cert_pem = Some(aemp::generate_cert_pem("stranger").unwrap());
    let stranger = Node::builder().id("tls-stranger").net_config(s).build().await.unwrap();
    stranger.add_node_addr(b.id(), b.listen_addrs()[0].clone());
    let r = death(&stranger, &e).await;
    assert_eq!(r, Reason::transport_error("tls-b", "unable to connect"));
    for n in [a, b, stranger] {
        n.shutdown().await;
    }
}

#[derive(aemp::AempMessage, Debug, Clone, PartialEq)]
enum Chat {
    Join { client: aemp::PortId, nick: String },
    Say(String, u32),
    Leave,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_and_untyped_ports_talk_across_two_nodes() {
    let (a, b) = pair("typed-a", "typed-b").await;
    // A typed server on b.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = b.port_typed::<Chat, _, _>(move |_ctx, m: Chat| {
        let _ = tx.send(m);
    });
    // An untyped client on a sends the wire shape by hand...
    let (c, _crx) = collector(&a);
    a.snd(server.id(), msg!["join", &c, "bob"]);
    assert_eq!(within(rx.recv()).await.unwrap(), Chat::Join { client: c.clone(), nick: "bob".into() });
    // ...and a typed send from a arrives typed.
    a.snd_typed(&server, &Chat::Say("hi".into(), 2)).unwrap();
    assert_eq!(within(rx.recv()).await.unwrap(), Chat::Say("hi".into(), 2));
    a.snd_typed(&server, &Chat::Leave).unwrap();
    assert_eq!(within(rx.recv()).await.unwrap(), Chat::Leave);
    // A typed message to an untyped port arrives as the tag-first list.
    let (u, mut urx) = collector(&b);
    a.snd(&u, aemp::Message::to_msg(&Chat::Say("raw".into(), 7)).unwrap());
    assert_eq!(next(&mut urx).await, msg!["say", "raw", 7]);
    // A peer cannot do more than kill the port with a bad message.
    let d = a.dead(server.id());
    a.snd(server.id(), msg!["say", 5, "not a number"]);
    assert_eq!(within(d).await.kind(), Some("die"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_to_a_json_peer_are_not_converted_and_the_monitor_fires() {
    // b accepts only json, so what a sends to b travels as json.
    let mut jc = cfg();
    jc.framings = vec!["json".into()];
    let a = public("json-a").await;
    let b = Node::builder().id("json-b").net_config(jc).build().await.unwrap();
    a.add_node_addr(b.id(), b.listen_addrs()[0].clone());
    let e = echo(&b);
    let (c, mut rx) = collector(&a);
    a.snd(&e, msg![&c, "text is fine"]);
    assert_eq!(next(&mut rx).await, msg!["text is fine"]);
    let d = a.dead(&e);
    a.snd(&e, msg![&c, aemp::Bytes(vec![1, 2, 3])]);
    let r = within(d).await;
    assert_eq!(r.kind(), Some("transport_error"), "{r}");
    assert!(r.to_string().contains("bytes"), "{r}");
    // The port itself is alive; later messages flow again.
    a.snd(&e, msg![&c, "after"]);
    assert_eq!(next(&mut rx).await, msg!["after"]);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_between_aemp_nodes_settle_on_one_connection_without_firing_monitors() {
    for round in 0..20 {
        let (a, b) = pair(&format!("sim-a{round}"), &format!("sim-b{round}")).await;
        let (pa, pb) = (echo(&a), echo(&b));
        let (ca, mut ra) = collector(&a);
        let (cb, mut rb) = collector(&b);
        // Both monitor the other's echo port, then both send at once: both dial.
        let (ta, mut fa) = tokio::sync::mpsc::unbounded_channel();
        let tb = ta.clone();
        a.mon(&pb, move |r: Reason| {
            let _ = ta.send(r);
        })
        .keep();
        b.mon(&pa, move |r: Reason| {
            let _ = tb.send(r);
        })
        .keep();
        a.snd(&pb, msg![&ca, "from a"]);
        b.snd(&pa, msg![&cb, "from b"]);
        assert_eq!(next(&mut ra).await, msg!["from a"]);
        assert_eq!(next(&mut rb).await, msg!["from b"]);
        // And again over whatever connection won.
        a.snd(&pb, msg![&ca, 2]);
        b.snd(&pa, msg![&cb, 2]);
        assert_eq!(next(&mut ra).await, msg![2]);
        assert_eq!(next(&mut rb).await, msg![2]);
        assert!(fa.try_recv().is_err(), "a monitor fired in round {round}");
        a.shutdown().await;
        b.shutdown().await;
    }
}

/// Regression: a node whose seed connection came up while the node was
/// still starting lost Global's opening messages and never learned the
/// seed's groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p35_nodes_always_learn_their_seeds_groups() {
    for round in 0..100 {
        let hub = public(&format!("lg-hub{round}")).await;
        let member = hub.port_with(|_, _| {});
        hub.register_group(&member, "g").unwrap();
        let mut c = cfg();
        c.seeds = hub.listen_addrs();
        let mut nodes = Vec::new();
        for name in ["a", "b"] {
            let n =
                Node::builder().id(format!("lg-{name}{round}")).net_config(c.clone()).build().await.unwrap();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            n.mon_group("g", move |ev| {
                let _ = tx.send(ev.clone());
            });
            nodes.push((n, rx));
        }
        for (_, rx) in nodes.iter_mut() {
            assert_eq!(
                within(rx.recv()).await.unwrap(),
                aemp::GroupEvent::Joined(member.clone()),
                "round {round}"
            );
        }
        for (n, _) in nodes {
            n.shutdown().await;
        }
        hub.shutdown().await;
    }
}

/// Waits until `node` no longer lists `gone` among its known nodes.
async fn until_forgotten(node: &Node, gone: &aemp::NodeId) {
    within(async {
        while node.known_nodes().contains(gone) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_nodes_that_left_are_forgotten_and_not_passed_to_later_nodes() {
    aemp_tests::init_tracing();
    let seed = public("fg-seed").await;
    let mut private = cfg();
    private.binds.clear();
    private.seeds = vec![seed.listen_addrs()[0].clone()];
    // Clients come and go, as `aemp nodes` runs do; each one also sends
    // something and is monitored by the seed, as the original's tools are.
    for i in 0..3 {
        let client =
            Node::builder().id(format!("fg-client-{i}")).net_config(private.clone()).build().await.unwrap();
        within(client.wait_up(seed.id())).await;
        within(seed.wait_up(client.id())).await;
        let (col, mut rx) = collector(&client);
        seed.snd(&col, msg!["hello"]);
        assert_eq!(next(&mut rx).await, msg!["hello"]);
        let id = client.id().clone();
        let down = seed.dead(&client.id().node_port());
        client.shutdown().await;
        within(down).await;
        until_forgotten(&seed, &id).await;
    }
    // A node joining later hears of none of them.
    let mut c = cfg();
    c.seeds = vec![seed.listen_addrs()[0].clone()];
    let late = Node::builder().id("fg-late").net_config(c).build().await.unwrap();
    within(late.wait_up(seed.id())).await;
    within(seed.wait_up(late.id())).await;
    let known = late.known_nodes();
    assert!(known.iter().all(|n| !n.as_str().starts_with("fg-client")), "{known:?}");
    for n in [late, seed] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_brings_a_link_up_or_says_it_could_not() {
    let a = public("cn-a").await;
    let b = public("cn-b").await;
    a.add_node_addr(b.id(), b.listen_addrs()[0].clone());
    assert!(!a.up_nodes().contains(b.id()));
    a.connect(b.id(), Duration::from_secs(5)).await.unwrap();
    assert!(a.up_nodes().contains(b.id()));
    within(b.wait_up(a.id())).await;
    // Connecting again, or to itself, is immediate.
    a.connect(b.id(), Duration::from_secs(5)).await.unwrap();
    a.connect(a.id(), Duration::from_secs(5)).await.unwrap();
    // A node with no known address times out with an error naming it.
    let nowhere = aemp::NodeId::new("cn-nowhere").unwrap();
    let e = a.connect(&nowhere, Duration::from_millis(200)).await.unwrap_err();
    assert!(e.to_string().contains("cn-nowhere"), "{e}");
    for n in [a, b] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p06_binds_make_listeners_and_private_nodes_reach_public_ones_but_not_each_other() {
    let public_node = public("p06-public").await;
    // The bind asked for port 0; the node reports where it really listens.
    let addr = public_node.listen_addrs()[0].clone();
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{addr}");
    let mut private = cfg();
    private.binds.clear();
    private.seeds = vec![addr];
    private.connect_timeout = 1.0;
    let a = Node::builder().id("p06-private-a").net_config(private.clone()).build().await.unwrap();
    let b = Node::builder().id("p06-private-b").net_config(private).build().await.unwrap();
    assert!(a.listen_addrs().is_empty() && b.listen_addrs().is_empty());
    within(a.wait_up(public_node.id())).await;
    within(b.wait_up(public_node.id())).await;
    // Both reach the public node...
    let echo_port = echo(&public_node);
    for n in [&a, &b] {
        let (col, mut rx) = collector(n);
        n.snd(&echo_port, msg![&col, "hi"]);
        assert_eq!(next(&mut rx).await, msg!["hi"]);
    }
    // ...but one private node cannot reach the other: it has no address.
    let target = b.id().node_port();
    let reason = death(&a, &target).await;
    assert_eq!(reason, Reason::transport_error(b.id().as_str(), "unable to connect"));
    for n in [a, b, public_node] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_for_a_node_known_only_through_a_seed_leaves_once_the_seed_names_it() {
    let seed = public("wa-seed").await;
    let b = public("wa-b").await;
    seed.add_node_addr(b.id(), b.listen_addrs()[0].clone());
    // Retries an hour apart: only the address the seed passes on can make
    // the dial go.
    let mut c = cfg();
    c.seeds = vec![seed.listen_addrs()[0].clone()];
    c.connect_interval = 3600.0;
    c.connect_timeout = 3600.0;
    let a = Node::builder().id("wa-a").net_config(c).build().await.unwrap();
    let e = echo(&b);
    let (col, mut rx) = collector(&a);
    // Queued at once: a has no address for b until its seed link is up.
    a.snd(&e, msg![&col, "waited"]);
    assert_eq!(next(&mut rx).await, msg!["waited"]);
    for n in [a, b, seed] {
        n.shutdown().await;
    }
}

/// One thread: nothing of the dialler's runs between its `connect` and its
/// `shutdown` unless those two make it.
#[tokio::test]
async fn a_node_shut_down_right_after_connect_still_completes_the_link() {
    let (a, b) = pair("sd-a", "sd-b").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    b.mon_nodes(move |ev| {
        let _ = tx.send(ev.clone());
    });
    a.connect(b.id(), Duration::from_secs(5)).await.unwrap();
    a.shutdown().await;
    // b saw a real link (a's auth line went out), then its end.
    assert_eq!(within(rx.recv()).await, Some(aemp::NodeEvent::Up(a.id().clone())));
    assert!(matches!(within(rx.recv()).await, Some(aemp::NodeEvent::Down(n, _)) if &n == a.id()));
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_given_up_half_way_leaves_the_node_free_to_dial_again() {
    // A listener that accepts and never answers holds a dial in its handshake.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut c = cfg();
    c.handshake_timeout = 0.5;
    let a = Node::builder().id("gu-a").net_config(c).build().await.unwrap();
    let b = public("gu-b").await;
    a.add_node_addr(b.id(), silent_addr);
    let e = a.connect(b.id(), Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(e, aemp::Error::Timeout(_)), "{e}");
    // The next connect dials again: past the silent address (its handshake
    // times out), to the node's real one.
    a.add_node_addr(b.id(), b.listen_addrs()[0].clone());
    a.connect(b.id(), Duration::from_secs(5)).await.unwrap();
    hold.abort();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mon_nodes_reports_links_coming_up_and_going_down() {
    let a = public("mn-a").await;
    let b = public("mn-b").await;
    let c = public("mn-c").await;
    // b's address is given only later: Global would otherwise pass it on,
    // and the mesh could link a and b before the monitor starts.
    a.add_node_addr(c.id(), c.listen_addrs()[0].clone());
    a.connect(c.id(), Duration::from_secs(5)).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let id = a.mon_nodes(move |ev| {
        let _ = tx.send(ev.clone());
    });
    // The node linked already is reported first.
    assert_eq!(within(rx.recv()).await, Some(aemp::NodeEvent::Up(c.id().clone())));
    a.add_node_addr(b.id(), b.listen_addrs()[0].clone());
    a.connect(b.id(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(within(rx.recv()).await, Some(aemp::NodeEvent::Up(b.id().clone())));
    b.shutdown().await;
    match within(rx.recv()).await {
        Some(aemp::NodeEvent::Down(n, reason)) => {
            assert_eq!(&n, b.id());
            assert_eq!(reason.kind(), Some("transport_error"), "{reason}");
        }
        other => panic!("expected mn-b down, got {other:?}"),
    }
    // After unmon_nodes, nothing more.
    a.unmon_nodes(id);
    let c_down = a.dead(&c.id().node_port());
    c.shutdown().await;
    within(c_down).await;
    assert!(rx.try_recv().is_err());
    a.shutdown().await;
}

#[tokio::test]
async fn a_made_up_node_id_is_neither_listed_nor_passed_on() {
    // A client sends to a node that does not exist (a typo) before it
    // joins the network through a seed; a node that joins later asks the
    // seed what it knows.
    let seed = public("typo-seed").await;
    let mut c = cfg();
    c.binds.clear();
    c.seeds = vec![seed.listen_addrs()[0].clone()];
    let client = Node::builder().id("typo-client").net_config(c.clone()).build().await.unwrap();
    let ghost = aemp::PortId::new("typo-node#x").unwrap();
    let lost = client.dead(&ghost);
    client.snd(&ghost, msg!["hello"]);
    within(client.wait_up(seed.id())).await;
    let mut lc = cfg();
    lc.seeds = c.seeds.clone();
    let later = Node::builder().id("typo-later").net_config(lc).build().await.unwrap();
    within(later.wait_up(seed.id())).await;
    within(later.wait_up(client.id())).await;
    let typo = ghost.node();
    for n in [&seed, &client, &later] {
        assert!(!n.known_nodes().contains(&typo), "{} lists {typo}", n.id());
    }
    // The send fails, and leaves nothing behind on the client either.
    assert!(within(lost).await.to_string().contains("unable to connect"));
    assert!(!client.known_nodes().contains(&typo));
}

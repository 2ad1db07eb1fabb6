//! One test per promise of the seed for a single node, named after
//! `PROMISES.md` (P01-P32). Network promises live in `wire.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aemp::{msg, node_of, MonAction, Msg, Node, NodeId, PortId, Reason, Value};
use aemp_tests::{collector, death, next, node, within};

#[test]
fn p01_port_id_is_node_hash_name_and_node_of_extracts_the_node() {
    let p: PortId = "alpha:4040#Xy.3".parse().unwrap();
    assert_eq!(p.node().as_str(), "alpha:4040");
    assert_eq!(p.name(), "Xy.3");
    assert_eq!(node_of("alpha:4040#Xy.3").unwrap().as_str(), "alpha:4040");
    assert_eq!(node_of("alpha:4040").unwrap().as_str(), "alpha:4040");
    // A bare node ID is that node's node port.
    assert!(PortId::new("alpha").unwrap().is_node_port());
}

#[test]
fn p02_node_ids_are_uninterpreted_strings_and_bad_ones_are_named() {
    for ok in ["a", "host.example:4040", "anon/xyz=", "ü-näme", "1.2.3.4"] {
        assert_eq!(NodeId::new(ok).unwrap().as_str(), ok);
    }
    let e = NodeId::new("a#b").unwrap_err().to_string();
    assert!(e.contains("'#'"), "{e}");
    let e = NodeId::new("").unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    let e = PortId::new("#p").unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    assert!(PortId::new("n#a\nb").is_err());
    assert!(node_of("a;b#c").is_err());
}

#[tokio::test]
async fn p03_port_ids_are_never_reused_within_a_node_or_after_a_restart() {
    let mut seen = std::collections::HashSet::new();
    let n1 = Node::builder().id("restartable").build().await.unwrap();
    for _ in 0..1000 {
        let p = n1.port();
        n1.kil(&p, Reason::normal());
        assert!(seen.insert(p));
    }
    let old = n1.port_with(|_, _| {});
    n1.shutdown().await;
    // The same node ID again, as after a process restart.
    let n2 = Node::builder().id("restartable").build().await.unwrap();
    let (_new, mut rx) = {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
        let p = n2.port_with(move |_, m| {
            let _ = tx.send(m);
        });
        (p, rx)
    };
    for _ in 0..1000 {
        assert!(seen.insert(n2.port()), "a port name came back after the restart");
    }
    // A message for the old life goes nowhere.
    n2.snd(&old, msg!["stale"]);
    let probe = n2.port_with(|_, _| {});
    let reason = death(&n2, &old).await;
    assert_eq!(reason.kind(), Some("no_such_port"));
    assert!(rx.try_recv().is_err());
    let _ = probe;
    n2.shutdown().await;
}

#[tokio::test]
async fn p04_node_is_this_nodes_id_and_node_of_a_port_gives_its_node() {
    let n = Node::builder().id("p04").build().await.unwrap();
    assert_eq!(n.id().as_str(), "p04");
    let p = n.port();
    assert_eq!(p.node(), *n.id());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let q = n.port_with(move |ctx, _| {
        let _ = tx.take().unwrap().send(ctx.node_id().clone());
    });
    n.snd(&q, msg!["x"]);
    assert_eq!(within(rx).await.unwrap().as_str(), "p04");
    n.shutdown().await;
}

#[tokio::test]
async fn p05_anon_gives_a_random_node_id() {
    let a = Node::builder().id("anon/").build().await.unwrap();
    let b = Node::builder().build().await.unwrap();
    assert!(a.id().as_str().starts_with("anon/"));
    assert!(b.id().as_str().starts_with("anon/"));
    assert_ne!(a.id(), b.id());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn p08_port_without_callback_dies_on_message() {
    let n = node().await;
    let p = n.port();
    let dead = n.dead(&p);
    n.snd(&p, msg!["hello"]);
    let reason = within(dead).await;
    assert_eq!(reason.kind(), Some("die"), "{reason}");
    n.shutdown().await;
}

#[tokio::test]
async fn p09_port_callback_gets_every_message_as_is_with_self_set() {
    let n = node().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let p = n.port_with(move |ctx, m| {
        let _ = tx.send((ctx.self_id(), m));
    });
    n.snd(&p, msg!["a", 1]);
    n.snd(&p, msg![2]);
    n.snd(&p, msg![]);
    for want in [msg!["a", 1], msg![2], msg![]] {
        let (me, m) = within(rx.recv()).await.unwrap();
        assert_eq!(me, p);
        assert_eq!(m, want);
    }
    n.shutdown().await;
}

#[tokio::test]
async fn p10_rcv_replaces_the_default_callback_which_gets_unmatched_messages() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let p = n.port();
    let c1 = c.clone();
    n.rcv(&p, move |ctx, m| ctx.snd(&c1, msg!["first", Value::from(m)]));
    n.snd(&p, msg!["x"]);
    assert_eq!(next(&mut rx).await, msg!["first", vec!["x"]]);
    let c2 = c.clone();
    n.rcv(&p, move |ctx, m| ctx.snd(&c2, msg!["second", Value::from(m)]));
    n.rcv_tag(&p, "tagged", |_, _| {});
    n.snd(&p, msg!["tagged", 1]);
    n.snd(&p, msg!["other", 2]);
    assert_eq!(next(&mut rx).await, msg!["second", vec![Value::from("other"), Value::from(2)]]);
    n.shutdown().await;
}

#[tokio::test]
async fn p11_rcv_tag_registers_replaces_and_unregisters_and_strips_the_tag() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let c0 = c.clone();
    let p = n.port_with(move |ctx, m| ctx.snd(&c0, msg!["default", Value::from(m)]));
    let c1 = c.clone();
    let same = n.rcv_tag(&p, "t", move |ctx, m| ctx.snd(&c1, msg!["t1", Value::from(m)]));
    assert_eq!(same, p, "rcv returns the port");
    n.snd(&p, msg!["t", 1, 2]);
    assert_eq!(next(&mut rx).await, msg!["t1", vec![1, 2]]);
    let c2 = c.clone();
    n.rcv_tag(&p, "t", move |ctx, m| ctx.snd(&c2, msg!["t2", Value::from(m)]));
    n.snd(&p, msg!["t", 3]);
    assert_eq!(next(&mut rx).await, msg!["t2", vec![3]]);
    n.unrcv(&p, "t");
    n.snd(&p, msg!["t", 4]);
    assert_eq!(next(&mut rx).await, msg!["default", vec![Value::from("t"), Value::from(4)]]);
    n.shutdown().await;
}

#[tokio::test]
async fn p11_a_tag_callback_can_unregister_itself_for_an_rpc_reply() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let c0 = c.clone();
    let p = n.port_builder().on("probe", move |ctx, _| ctx.snd(&c0, msg!["end"])).default(|_, _| {}).create();
    let c1 = c.clone();
    n.rcv_tag(&p, "reply", move |ctx, m| {
        ctx.snd(&c1, m);
        let me = ctx.self_id();
        ctx.unrcv(&me, "reply");
    });
    n.snd(&p, msg!["reply", "once"]);
    n.snd(&p, msg!["reply", "twice"]);
    // Through the same port, so that "end" comes after both replies.
    n.snd(&p, msg!["probe"]);
    assert_eq!(next(&mut rx).await, msg!["once"]);
    assert_eq!(next(&mut rx).await, msg!["end"]);
    n.shutdown().await;
}

#[tokio::test]
async fn p12_rcv_registrations_chain_at_creation_and_a_port_can_be_sent_before_use() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let (ca, cb) = (c.clone(), c.clone());
    let p = n
        .port_builder()
        .on("a", move |ctx, m| ctx.snd(&ca, msg!["got a", Value::from(m)]))
        .on("b", move |ctx, m| ctx.snd(&cb, msg!["got b", Value::from(m)]))
        .create();
    // Send the new port in a message before anything reached it.
    let relay = n.port_with(|ctx, m| -> aemp::Result<()> {
        let target = m.port(0)?;
        ctx.snd(&target, msg!["b", "via relay"]);
        Ok(())
    });
    n.snd(&relay, msg![&p]);
    n.snd(&p, msg!["a", 1]);
    let mut got = vec![next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|m| m.to_string());
    assert_eq!(got, vec![msg!["got a", vec![1]], msg!["got b", vec!["via relay"]]]);
    n.shutdown().await;
}

#[tokio::test]
async fn p13_messages_are_not_queued_for_later_callbacks() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let p = n.port_with(|_, _| {}); // takes and drops everything
    n.snd(&p, msg!["late", 1]);
    let c1 = c.clone();
    n.rcv_tag(&p, "late", move |ctx, m| ctx.snd(&c1, m));
    n.snd(&p, msg!["late", 2]);
    assert_eq!(next(&mut rx).await, msg![2], "the first message was not kept");
    n.shutdown().await;
}

#[tokio::test]
async fn p14_snd_takes_the_port_and_the_message() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    n.snd(&c, msg!["type", "data", 3]);
    assert_eq!(next(&mut rx).await, msg!["type", "data", 3]);
    n.shutdown().await;
}

#[tokio::test]
async fn p15_local_messages_arrive_intact_including_bytes() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let mut map = aemp::Map::new();
    map.insert("k".into(), Value::from(vec![1, 2]));
    let m = msg![aemp::Bytes(vec![0, 255, 7]), u64::MAX, -1, 1.5, Value::Null, map];
    n.snd(&c, m.clone());
    assert_eq!(next(&mut rx).await, m);
    n.shutdown().await;
}

#[tokio::test]
async fn p16_snd_inside_a_callback_to_the_same_port_neither_blocks_nor_reenters() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let inside = Arc::new(AtomicBool::new(false));
    let p = n.port_with(move |ctx, m| -> aemp::Result<()> {
        assert!(!inside.swap(true, Ordering::SeqCst), "callback re-entered");
        let k: u32 = m.get(0)?;
        if k < 100 {
            let me = ctx.self_id();
            ctx.snd(&me, msg![k + 1]);
            ctx.snd(&me, msg![k + 1000]);
        } else {
            ctx.snd(&c, msg![k]);
        }
        inside.store(false, Ordering::SeqCst);
        Ok(())
    });
    n.snd(&p, msg![98]);
    let mut got = vec![next(&mut rx).await, next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|m| m.get::<u32>(0).unwrap());
    assert_eq!(got, vec![msg![100], msg![1098], msg![1099]]);
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p17_messages_from_one_sender_arrive_in_order() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    let mut expect = 0u64;
    let p = n.port_with(move |ctx, m| -> aemp::Result<()> {
        let i: u64 = m.get(0)?;
        if i != expect {
            return Err(aemp::Error::die(format!("got {i}, expected {expect}")));
        }
        expect += 1;
        if c2.fetch_add(1, Ordering::SeqCst) + 1 == 100_000 {
            ctx.snd(&c, msg!["done"]);
        }
        Ok(())
    });
    let watch = n.dead(&p);
    // One sender outside the node, from another thread.
    let n2 = n.clone();
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || {
        for i in 0..100_000u64 {
            n2.snd(&p2, msg![i]);
        }
    });
    assert_eq!(next(&mut rx).await, msg!["done"]);
    n.kil(&p, Reason::normal());
    assert!(within(watch).await.is_normal(), "the port saw a message out of order");
    n.shutdown().await;
}

#[tokio::test]
async fn p18_an_error_or_panic_in_a_callback_kills_the_port_with_die() {
    let n = node().await;
    let p = n.port_with(|_, _| Err(aemp::Error::die("bad input")));
    let d = n.dead(&p);
    n.snd(&p, msg!["x"]);
    let r = within(d).await;
    assert_eq!(r, Reason::die("bad input"));

    let q = n.port_with(|_, _| -> () { panic!("boom") });
    let d = n.dead(&q);
    n.snd(&q, msg!["x"]);
    let r = within(d).await;
    assert_eq!(r.kind(), Some("die"));
    assert!(r.to_string().contains("boom"), "{r}");

    // Also from a tag callback, and through Msg accessors' errors.
    let t = n.rcv_tag(&n.port_with(|_, _| {}), "num", |_, m| -> aemp::Result<()> {
        let _: i64 = m.get(0)?;
        Ok(())
    });
    let d = n.dead(&t);
    n.snd(&t, msg!["num", "not a number"]);
    let r = within(d).await;
    assert!(r.to_string().contains(r#"message \"num\": argument 0 (element 1)"#), "{r}");
    n.shutdown().await;
}

#[tokio::test]
async fn p18_an_error_in_a_psub_block_kills_the_port() {
    let n = node().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let p = n.port_with(move |ctx, _| {
        let later =
            ctx.psub(|_ctx, fail: bool| if fail { Err(aemp::Error::die("psub failed")) } else { Ok(()) });
        let _ = tx.take().map(|t| t.send(later));
    });
    n.snd(&p, msg!["go"]);
    let later = within(rx).await.unwrap();
    let d = n.dead(&p);
    later.call(false);
    later.call(true);
    assert_eq!(within(d).await, Reason::die("psub failed"));
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p19_psub_remembers_self_for_later_callbacks() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let p = n.port_with(move |ctx, _| {
        let c = c.clone();
        let later = ctx.psub(move |ctx, ()| ctx.snd(&c, msg!["self", ctx.self_id()]));
        // Call it from another thread, after the callback returned.
        std::thread::spawn(move || later.call(()));
    });
    n.snd(&p, msg!["go"]);
    assert_eq!(next(&mut rx).await, msg!["self", &p]);
    n.shutdown().await;
}

#[tokio::test]
async fn p20_mon_callback_gets_the_reason_empty_when_normal() {
    let n = node().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let a = n.port();
    let b = n.port();
    let t1 = tx.clone();
    n.mon(&a, move |r: Reason| {
        let _ = t1.send(r);
    })
    .keep();
    n.mon(&b, move |r: Reason| {
        let _ = tx.send(r);
    })
    .keep();
    n.kil(&a, Reason::normal());
    assert!(within(rx.recv()).await.unwrap().is_normal());
    n.kil(&b, msg!["custom", 7]);
    assert_eq!(within(rx.recv()).await.unwrap(), Reason::from(msg!["custom", 7]));
    // A panicking monitor callback harms nobody.
    let c = n.port();
    n.mon(&c, |_r: Reason| panic!("monitor callback fails")).keep();
    n.kil(&c, "x");
    let alive = n
        .port_builder()
        .on("q", |ctx, m| -> aemp::Result<()> {
            ctx.snd(&m.port(0)?, msg!["alive"]);
            Ok(())
        })
        .create();
    assert_eq!(n.call(&alive, msg!["q"], aemp_tests::PATIENCE).await.unwrap(), msg!["alive"]);
    n.shutdown().await;
}

#[tokio::test]
async fn p21_mon_with_a_port_kills_it_only_on_abnormal_death() {
    let n = node().await;
    let watched = n.port();
    let linked = n.port_with(|_, _| {});
    n.mon(&watched, &linked).keep();
    let d_linked = n.dead(&linked);
    n.kil(&watched, Reason::normal());
    // The normal kill did not kill `linked`: it still answers.
    let (c, mut rx) = collector(&n);
    n.rcv_tag(&linked, "ping", move |ctx, _| ctx.snd(&c, msg!["alive"]));
    n.snd(&linked, msg!["ping"]);
    assert_eq!(next(&mut rx).await, msg!["alive"]);

    let watched2 = n.port();
    n.mon(&watched2, &linked).keep();
    n.kil(&watched2, msg!["crash", 1]);
    assert_eq!(within(d_linked).await, Reason::from(msg!["crash", 1]));
    n.shutdown().await;
}

#[tokio::test]
async fn p22_mon_without_action_kills_self() {
    let n = node().await;
    let watched = n.port();
    let w = watched.clone();
    let me = n.port_with(move |ctx, _| ctx.mon_self(&w).keep());
    let d = n.dead(&me);
    n.snd(&me, msg!["start monitoring"]);
    // Make sure the monitor is in place before the kill: ask the port.
    let echo = n.port_with(|ctx, m| -> aemp::Result<()> {
        ctx.snd(&m.port(0)?, msg![]);
        Ok(())
    });
    n.call(&echo, msg![], aemp_tests::PATIENCE).await.unwrap();
    n.kil(&watched, msg!["gone"]);
    assert_eq!(within(d).await, Reason::from(msg!["gone"]));
    n.shutdown().await;
}

#[tokio::test]
async fn p23_mon_with_a_message_sends_msg_then_reason() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let a = n.port();
    n.mon(&a, MonAction::send(&c, msg!["restart", "a"])).keep();
    n.kil(&a, msg!["die", "oops"]);
    assert_eq!(next(&mut rx).await, msg!["restart", "a", "die", "oops"]);
    let b = n.port();
    n.mon(&b, MonAction::send(&c, msg!["gone"])).keep();
    n.kil(&b, Reason::normal());
    assert_eq!(next(&mut rx).await, msg!["gone"]);
    n.shutdown().await;
}

#[tokio::test]
async fn p24_mon_guard_stops_monitoring_and_monitors_are_one_shot() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let a = n.port();
    let guard = n.mon(&a, MonAction::send(&c, msg!["cancelled monitor fired"]));
    drop(guard);
    n.mon(&a, MonAction::send(&c, msg!["kept monitor fired"])).keep();
    n.kil(&a, "x");
    assert_eq!(next(&mut rx).await, msg!["kept monitor fired", "x"]);
    // One-shot: killing again (a dead port) fires nothing more; monitoring
    // it now fires at once with no_such_port.
    n.kil(&a, "again");
    n.mon(&a, MonAction::send(&c, msg!["late"])).keep();
    assert_eq!(next(&mut rx).await, msg!["late", "no_such_port", "cannot monitor nonexistent port"]);
    n.shutdown().await;
}

#[tokio::test]
async fn p26_mon_guard_keeps_values_until_the_port_dies() {
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let n = node().await;
    let dropped = Arc::new(AtomicBool::new(false));
    let p = n.port_with(|_, _| {});
    n.mon_guard(&p, Flag(dropped.clone())).keep();
    // Still kept while the port lives: a round trip through the port proves
    // the dispatcher has processed the registration.
    let (c, mut rx) = collector(&n);
    n.snd(&c, msg!["sync"]);
    next(&mut rx).await;
    assert!(!dropped.load(Ordering::SeqCst));
    let d = n.dead(&p);
    n.kil(&p, Reason::normal());
    within(d).await;
    assert!(dropped.load(Ordering::SeqCst), "value released at death");

    // The guard releases them early when dropped.
    let dropped2 = Arc::new(AtomicBool::new(false));
    let q = n.port_with(|_, _| {});
    let g = n.mon_guard(&q, Flag(dropped2.clone()));
    drop(g);
    n.snd(&c, msg!["sync"]);
    next(&mut rx).await;
    assert!(dropped2.load(Ordering::SeqCst));
    n.shutdown().await;
}

#[tokio::test]
async fn p27_kil_normal_and_abnormal_as_seen_by_monitors() {
    let n = node().await;
    let a = n.port_with(|_, _| {});
    let b = n.port_with(|_, _| {});
    let (da, db) = (n.dead(&a), n.dead(&b));
    n.kil(&a, Reason::normal());
    n.kil(&b, msg!["error", "disk full"]);
    assert!(within(da).await.is_normal());
    assert_eq!(within(db).await, Reason::from(msg!["error", "disk full"]));
    // A killed port takes no more messages.
    let (c, mut rx) = collector(&n);
    let cc = c.clone();
    let e = n.port_with(move |ctx, m| ctx.snd(&cc, m));
    n.kil(&e, Reason::normal());
    n.snd(&e, msg!["after death"]);
    n.snd(&c, msg!["marker"]);
    assert_eq!(next(&mut rx).await, msg!["marker"]);
    n.shutdown().await;
}

#[tokio::test]
async fn p29_spawn_returns_the_port_id_at_once_and_it_can_be_used_immediately() {
    let n = node().await;
    n.register("Test::echo", |ctx, args| -> aemp::Result<()> {
        let prefix: String = args.get(0)?;
        let me = ctx.self_id();
        ctx.rcv(&me, move |ctx, m| -> aemp::Result<()> {
            let to = m.port(0)?;
            ctx.snd(&to, msg![prefix.clone(), m.at(1)?.clone()]);
            Ok(())
        });
        Ok(())
    });
    let (c, mut rx) = collector(&n);
    let p = n.spawn(n.id(), "Test::echo", msg!["echo:"]);
    assert_eq!(p.node(), *n.id());
    let d = n.dead(&p);
    n.snd(&p, msg![&c, "first"]);
    assert_eq!(next(&mut rx).await, msg!["echo:", "first"]);
    n.kil(&p, "done");
    assert_eq!(within(d).await, Reason::from("done"));
    n.shutdown().await;
}

#[tokio::test]
async fn p30_spawn_calls_the_named_init_function_with_args_and_unknown_names_die() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let c1 = c.clone();
    n.register("My::App::init", move |ctx, args| {
        ctx.snd(&c1, msg!["init", ctx.self_id(), Value::from(args)]);
    });
    let p = n.spawn(n.id(), "My::App::init", msg![1, "two"]);
    assert_eq!(next(&mut rx).await, msg!["init", &p, vec![Value::from(1), Value::from("two")]]);

    let q = n.spawn(n.id(), "No::Such::init", msg![]);
    let r = death(&n, &q).await;
    assert_eq!(r.kind(), Some("die"));
    assert!(r.to_string().contains("No::Such::init"), "{r}");

    n.register("Failing::init", |_, _| Err(aemp::Error::die("cannot start")));
    let f = n.spawn(n.id(), "Failing::init", msg![]);
    assert_eq!(death(&n, &f).await, Reason::die("cannot start"));
    n.shutdown().await;
}

#[tokio::test]
async fn p31_spawn_idiom_two_way_monitoring_cleans_up_both_sides() {
    let n = node().await;
    // The init function monitors the port it was given.
    n.register("Idiom::server", |ctx, args| -> aemp::Result<()> {
        let client = args.port(0)?;
        ctx.mon_self(&client).keep();
        let me = ctx.self_id();
        ctx.rcv(&me, |_, _| {});
        Ok(())
    });
    let client = n.port_with(|_, _| {});
    let server = n.spawn(n.id(), "Idiom::server", msg![&client]);
    n.mon(&server, &client).keep();
    let ds = n.dead(&server);
    // Make sure the init ran: it is the first thing the server port did.
    n.snd(&server, msg!["hello"]);
    n.kil(&client, msg!["client crashed"]);
    assert_eq!(within(ds).await, Reason::from(msg!["client crashed"]));

    // And the other way round.
    let client2 = n.port_with(|_, _| {});
    let server2 = n.spawn(n.id(), "Idiom::server", msg![&client2]);
    n.mon(&server2, &client2).keep();
    let dc = n.dead(&client2);
    n.kil(&server2, msg!["server crashed"]);
    assert_eq!(within(dc).await, Reason::from(msg!["server crashed"]));
    n.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn p32_after_sends_a_message_or_calls_a_callback_and_can_be_cancelled() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let t0 = tokio::time::Instant::now();
    n.after(Duration::from_secs(5), &c, msg!["tick"]).keep();
    let cancelled = n.after(Duration::from_secs(1), &c, msg!["cancelled"]);
    cancelled.cancel();
    assert_eq!(next(&mut rx).await, msg!["tick"]);
    assert!(t0.elapsed() >= Duration::from_secs(5));
    let (tx, done) = tokio::sync::oneshot::channel();
    n.after_fn(Duration::from_secs(2), move || {
        let _ = tx.send(());
    })
    .keep();
    within(done).await.unwrap();
    assert!(rx.try_recv().is_err(), "the cancelled timer fired");
    n.shutdown().await;
}

#[tokio::test]
async fn async_port_receives_selectively_and_dies_with_its_task() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let p = n.spawn_async(16, move |mut inbox| async move {
        // Wait for "second" first: "first" stays queued.
        let s = inbox.recv_tag("second").await.unwrap();
        let f = inbox.recv().await.unwrap();
        inbox.node().snd(&c, msg![s.tag().unwrap(), f.tag().unwrap()]);
        let bad = inbox.recv().await.unwrap();
        let _: i64 = bad.get(0)?;
        Ok::<_, aemp::Error>(())
    });
    let d = n.dead(&p);
    n.snd(&p, msg!["first"]);
    n.snd(&p, msg!["second"]);
    assert_eq!(next(&mut rx).await, msg!["second", "first"]);
    n.snd(&p, msg!["not an integer"]);
    let r = within(d).await;
    assert_eq!(r.kind(), Some("die"));
    n.shutdown().await;
}

#[tokio::test]
async fn async_port_overflow_kills_it_and_kil_cancels_its_task() {
    let n = node().await;
    let (tx, started) = tokio::sync::oneshot::channel::<()>();
    let p = n.spawn_async(2, move |_inbox| async move {
        let _ = tx.send(());
        std::future::pending::<()>().await;
        Ok::<_, aemp::Error>(())
    });
    within(started).await.unwrap();
    let d = n.dead(&p);
    for i in 0..3 {
        n.snd(&p, msg![i]);
    }
    assert_eq!(within(d).await.kind(), Some("overflow"));

    struct OnDrop(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(());
        }
    }
    let (dtx, dropped) = tokio::sync::oneshot::channel();
    let q = n.spawn_async(2, move |_inbox| async move {
        let _guard = OnDrop(Some(dtx));
        std::future::pending::<()>().await;
        Ok::<_, aemp::Error>(())
    });
    n.kil(&q, Reason::normal());
    // Resolves (with or without a value) only once the task's future is dropped.
    let _ = within(dropped).await;
    n.shutdown().await;
}

#[tokio::test]
async fn spawn_task_is_cancelled_when_its_port_dies_and_its_error_kills_the_port() {
    let n = node().await;
    let p = n.port_with(|ctx, m| {
        let fail = m.tag() == Some("fail");
        ctx.spawn_task(async move {
            if fail {
                Err("task failed")
            } else {
                std::future::pending::<Result<(), &str>>().await
            }
        });
    });
    let d = n.dead(&p);
    n.snd(&p, msg!["wait"]);
    n.snd(&p, msg!["fail"]);
    assert_eq!(within(d).await, Reason::die("task failed"));
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_task_the_node_started() {
    let n = node().await;
    for _ in 0..10 {
        n.after(Duration::from_secs(3600), &n.port(), msg!["never"]).keep();
    }
    let _p = n.spawn_async(4, |mut inbox| async move {
        while inbox.recv().await.is_some() {}
        Ok::<_, aemp::Error>(())
    });
    within(n.shutdown()).await;
    assert!(n.is_shut_down());
}

#[tokio::test]
async fn p05_initialise_node_reads_the_profile_and_becomes_the_process_node() {
    let dir = std::env::temp_dir().join(format!("aemp-p05-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.json");
    std::fs::write(
        &cfg,
        r#"{"version":1,"profile":{"p05":{"nodeid":"p05-node","binds":["127.0.0.1:0"],"secret":"x","services":["P05::service","P05::"]}}}"#,
    )
    .unwrap();
    // A service: an init function started on the node at boot.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    aemp::register_init("P05::service", move |ctx, _| {
        if let Some(t) = tx.lock().unwrap().take() {
            let _ = t.send(ctx.self_id());
        }
    });
    // The only test in this binary that sets AEMP_CONFIG.
    std::env::set_var("AEMP_CONFIG", &cfg);
    let n = aemp::initialise_node("p05").await.unwrap();
    assert_eq!(n.id().as_str(), "p05-node");
    assert_eq!(within(rx).await.unwrap().node(), *n.id(), "the service ran at boot");
    assert_eq!(n.listen_addrs().len(), 1);
    assert_eq!(aemp::node().id(), n.id());
    // A profile that does not exist: the profile name becomes the node ID,
    // read as host:port for the binds (port 4040 when none is given).
    let p = aemp::config::Config::load(&cfg).unwrap().profile("127.0.0.1:0").unwrap();
    assert_eq!(p.nodeid, "127.0.0.1:0");
    assert_eq!(p.binds, vec!["127.0.0.1:0".to_string()]);
    n.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn p30_a_port_that_kills_itself_in_its_init_reports_why_to_later_monitors() {
    let n = node().await;
    n.register("Quits::init", |ctx, _| ctx.kil_self(msg!["not today"]));
    let p = n.spawn(n.id(), "Quits::init", msg![]);
    // Monitored after the init ran: still learns the reason, not no_such_port.
    assert_eq!(death(&n, &p).await, Reason::from(msg!["not today"]));
    n.shutdown().await;
}

#[tokio::test]
async fn run_init_runs_a_registered_init_function_in_the_current_port() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let c2 = c.clone();
    n.register("Inner::init", move |ctx, args| ctx.snd(&c2, msg!["inner", ctx.self_id(), Value::from(args)]));
    let outer = n.port_with(|ctx, m| -> aemp::Result<()> {
        ctx.run_init("Inner::init", m)?;
        ctx.run_init("Missing::init", msg![])
    });
    let d = n.dead(&outer);
    n.snd(&outer, msg![1]);
    assert_eq!(next(&mut rx).await, msg!["inner", &outer, vec![1]]);
    let r = within(d).await;
    assert!(r.to_string().contains("Missing::init"), "{r}");
    n.shutdown().await;
}

//! Faults on the links between nodes, injected by a TCP proxy that cuts,
//! stalls and delays them (P03, P25, P28), backpressure, and shutdown with
//! live connections.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aemp::{msg, MonGuard, NetConfig, Node, PortId, Reason, Value};
use aemp_tests::{within, Logs, Proxy, Raw, PATIENCE};
use tokio::sync::mpsc;

const SECRET: &str = "faults-test-secret";

/// Fast reconnects: the tests cut links on purpose, often.
fn cfg(public: bool) -> NetConfig {
    let mut c = NetConfig::default();
    if public {
        c.binds = vec!["127.0.0.1:0".into()];
    }
    c.secret = Some(SECRET.into());
    c.connect_interval = 0.005;
    c.connect_timeout = 5.0;
    c.handshake_timeout = 2.0;
    c
}

async fn node(id: &str, c: NetConfig) -> Node {
    Node::builder().id(id).net_config(c).build().await.unwrap()
}

fn echo(n: &Node) -> PortId {
    n.named_port("echo", |ctx, mut m| -> aemp::Result<()> {
        let reply = m.port(m.len().saturating_sub(1))?;
        m.pop();
        ctx.snd(&reply, m);
        Ok(())
    })
    .unwrap()
}

/// A small deterministic generator (xorshift64*), seeded from
/// `AEMP_TEST_SEED` or the clock; the seed is printed to replay a run.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("AEMP_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        println!("AEMP_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// P25 under random cuts. A private node streams numbered messages through
/// a proxy to a port on a public node; the proxy cuts the link at random
/// moments. Every message carries the number of the monitor epoch it was
/// sent in: the sender starts a monitor, sends under it until it fires,
/// then starts the next. Checked: arrivals are in order; every message
/// that was lost while a later one arrived belongs to an epoch whose
/// monitor fired; an epoch whose monitor never fired lost nothing.
///
/// `AEMP_CUTS` sets the number of cuts (default 1000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p25_a_stream_cut_at_random_points_has_no_gap_its_monitor_did_not_report() {
    let target_cuts = env_usize("AEMP_CUTS", 1000);
    let mut rng = Rng::new();
    let b = node("cut-b", cfg(true)).await;
    let a = node("cut-a", cfg(false)).await;
    let proxy = Proxy::start_masking(&b.listen_addrs()[0]).await;
    a.add_node_addr(b.id(), proxy.addr());

    let (arrive_tx, mut arrivals) = mpsc::unbounded_channel::<(u64, u64)>();
    let sink = b.port_with(move |_, m| -> aemp::Result<()> {
        let _ = arrive_tx.send((m.get(0)?, m.get(1)?));
        Ok(())
    });

    // The cutter.
    let done = Arc::new(AtomicBool::new(false));
    let cuts = Arc::new(AtomicU64::new(0));
    let cutter = {
        let (done, cuts) = (done.clone(), cuts.clone());
        let mut rng = Rng(rng.below(u64::MAX) | 1);
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) && cuts.load(Ordering::Relaxed) < target_cuts as u64 {
                if proxy.live() == 0 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    continue;
                }
                // A random moment of the link's life: at once, or up to 4 ms in.
                let wait = rng.below(4000);
                if wait > 200 {
                    tokio::time::sleep(Duration::from_micros(wait)).await;
                }
                if proxy.cut() > 0 {
                    cuts.fetch_add(1, Ordering::Relaxed);
                }
            }
            proxy
        })
    };

    // The sender.
    let (fired_tx, mut fired_rx) = mpsc::unbounded_channel::<(u64, Reason)>();
    let watch = |epoch: u64| -> MonGuard {
        let tx = fired_tx.clone();
        a.mon(&sink, move |r: Reason| {
            let _ = tx.send((epoch, r));
        })
    };
    let mut epoch = 0u64;
    let mut guard = watch(epoch);
    let mut epoch_of: Vec<u64> = Vec::new();
    let mut fired: HashSet<u64> = HashSet::new();
    let t0 = Instant::now();
    let mut seq = 0u64;
    while cuts.load(Ordering::Relaxed) < target_cuts as u64 {
        assert!(t0.elapsed() < Duration::from_secs(300), "the run takes too long");
        while let Ok((k, r)) = fired_rx.try_recv() {
            assert_eq!(r.kind(), Some("transport_error"), "{r}");
            fired.insert(k);
            if k == epoch {
                epoch += 1;
                guard = watch(epoch);
            }
        }
        a.snd(&sink, msg![seq, epoch]);
        epoch_of.push(epoch);
        seq += 1;
        if seq & 15 == 0 {
            tokio::time::sleep(Duration::from_micros(100 + rng.below(400))).await;
        }
    }
    done.store(true, Ordering::Relaxed);
    let proxy = cutter.await.unwrap();
    let cut_count = cuts.load(Ordering::Relaxed);

    // Flush: a last message that arrives under a monitor that has not fired.
    let mut got: Vec<(u64, u64)> = Vec::new();
    let marker = loop {
        while let Ok((k, _)) = fired_rx.try_recv() {
            fired.insert(k);
            if k == epoch {
                epoch += 1;
                guard = watch(epoch);
            }
        }
        let (m, e) = (seq, epoch);
        a.snd(&sink, msg![m, e]);
        epoch_of.push(e);
        seq += 1;
        let arrived = within(async {
            loop {
                tokio::select! {
                    Some(x) = arrivals.recv() => {
                        got.push(x);
                        if x.0 == m { return true; }
                    }
                    Some((k, _)) = fired_rx.recv() => {
                        fired.insert(k);
                        if k == e { return false; }
                    }
                }
            }
        })
        .await;
        if arrived {
            break m;
        }
        epoch += 1;
        guard = watch(epoch);
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    while let Ok((k, _)) = fired_rx.try_recv() {
        fired.insert(k);
    }
    assert!(arrivals.try_recv().is_err(), "a message arrived after the marker");
    drop(guard);

    // In order, each at most once, with the epoch it was sent in.
    for w in got.windows(2) {
        assert!(w[0].0 < w[1].0, "out of order or duplicated: {} then {}", w[0].0, w[1].0);
    }
    for &(s, e) in &got {
        assert_eq!(epoch_of[s as usize], e);
    }
    let arrived: HashSet<u64> = got.iter().map(|g| g.0).collect();
    let mut lost = 0u64;
    for s in 0..marker {
        if arrived.contains(&s) {
            continue;
        }
        lost += 1;
        let e = epoch_of[s as usize];
        assert!(
            fired.contains(&e),
            "message {s} (epoch {e}) was lost, a later one arrived, and no monitor fired"
        );
    }
    for e in 0..=epoch {
        if !fired.contains(&e) {
            let missing =
                (0..=marker).filter(|&s| epoch_of[s as usize] == e && !arrived.contains(&s)).count();
            assert_eq!(missing, 0, "epoch {e} lost {missing} messages but its monitor never fired");
        }
    }
    println!(
        "{cut_count} cuts, {} connections, {} messages sent, {} arrived, {lost} lost, {} monitor firings, {:.1} s",
        proxy.accepted(),
        marker + 1,
        got.len(),
        fired.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(cut_count >= target_cuts as u64);
    assert!(fired.len() as u64 >= 1);
    a.shutdown().await;
    b.shutdown().await;
}

/// P03 over TCP: a node restarted with the same ID (and the same address)
/// never receives messages meant for the ports of its previous life, even
/// though the new ports have the same counter values: names carry a random
/// per-start prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p03_a_node_restarted_with_the_same_id_never_gets_messages_for_its_previous_life() {
    let a = node("life-a", cfg(true)).await;
    let (tx, mut rx) = mpsc::unbounded_channel::<(u32, Value)>();
    let ports = |n: &Node, life: u32| -> Vec<PortId> {
        (0..50)
            .map(|_| {
                let tx = tx.clone();
                n.port_with(move |_, m| {
                    let _ = tx.send((life, m[0].clone()));
                })
            })
            .collect()
    };
    let b1 = node("life-b", cfg(true)).await;
    let addr = b1.listen_addrs()[0].clone();
    a.add_node_addr(b1.id(), addr.clone());
    let old = ports(&b1, 1);
    for (i, p) in old.iter().enumerate() {
        a.snd(p, msg![format!("old {i}")]);
    }
    for _ in 0..old.len() {
        assert_eq!(within(rx.recv()).await.unwrap().0, 1);
    }
    let lost = a.dead(&old[0]);
    b1.shutdown().await;
    assert_eq!(within(lost).await.kind(), Some("transport_error"));

    // The second life, on the same address, numbering its ports from the start again.
    let mut c = cfg(true);
    c.binds = vec![addr];
    let b2 = node("life-b", c).await;
    let new = ports(&b2, 2);
    for (o, n) in old.iter().zip(&new) {
        assert_ne!(o.name(), n.name());
        assert_eq!(o.name().rsplit('.').next(), n.name().rsplit('.').next(), "same counter, other prefix");
    }
    for (i, p) in old.iter().enumerate() {
        a.snd(p, msg![format!("stale {i}")]);
    }
    for (i, p) in new.iter().enumerate() {
        a.snd(p, msg![format!("new {i}")]);
    }
    // One connection keeps order: once the new ports have everything, the
    // stale messages have been handled (and dropped).
    for i in 0..new.len() {
        let (life, v) = within(rx.recv()).await.unwrap();
        assert_eq!((life, v), (2, Value::from(format!("new {i}"))));
    }
    assert_eq!(a.dead(&old[1]).await.kind(), Some("no_such_port"));
    assert!(rx.try_recv().is_err());
    a.shutdown().await;
    b2.shutdown().await;
}

/// Backpressure: `snd` never blocks, and when the link stalls, the bytes
/// queued for it are bounded by `send_queue_limit`: beyond it the link is
/// treated as failed and the monitors say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_link_over_the_send_queue_limit_fires_monitors_instead_of_growing() {
    const LIMIT: usize = 256 << 10;
    let b = node("bp-b", cfg(true)).await;
    let e = echo(&b);
    let sink = b.port_with(|_, _| {});
    let proxy = Proxy::start(&b.listen_addrs()[0]).await;
    let mut c = cfg(false);
    c.send_queue_limit = LIMIT;
    let a = node("bp-a", c).await;
    a.add_node_addr(b.id(), proxy.addr());
    assert_eq!(a.call(&e, msg!["up"], PATIENCE).await.unwrap(), msg!["up"]);
    let payload = "x".repeat(1024);

    // Control: 4 MiB with the link flowing (and a round trip every 64 KiB)
    // never comes near the limit.
    let (tx, mut fired) = mpsc::unbounded_channel::<Reason>();
    let t = tx.clone();
    let _g = a.mon(&sink, move |r: Reason| {
        let _ = t.send(r);
    });
    for i in 0..4096 {
        a.snd(&sink, msg![i, payload.as_str()]);
        if i % 64 == 63 {
            a.call(&e, msg!["sync"], PATIENCE).await.unwrap();
        }
    }
    assert!(fired.try_recv().is_err(), "a monitor fired while the link was flowing");

    // Stall the link, then send 64 MiB: far more than the limit and the
    // socket buffers together. The loop itself must never block.
    proxy.pause(true);
    let t0 = Instant::now();
    for i in 0..65_536 {
        a.snd(&sink, msg![i, payload.as_str()]);
        if i % 256 == 255 {
            tokio::task::yield_now().await;
        }
    }
    let sending = t0.elapsed();
    let r = within(fired.recv()).await.unwrap();
    assert_eq!(r, Reason::transport_error("bp-b", "send queue limit exceeded"));
    println!("64 MiB handed to snd in {sending:?} with the link stalled");

    // The link recovers once the proxy forwards again.
    proxy.pause(false);
    proxy.cut();
    assert_eq!(a.call(&e, msg!["again"], PATIENCE).await.unwrap(), msg!["again"]);
    a.shutdown().await;
    b.shutdown().await;
}

/// A node whose old link to a peer stays up (stalled) when the peer restarts
/// and dials in again: the new link replaces the old one, and messages on
/// the new link go out at once (the old link's writer must not take the new
/// one's wake-up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_link_does_not_delay_messages_on_its_successor() {
    let mut c = cfg(true);
    // Keepalives far apart: a missed wake-up would show as a hang.
    c.monitor_timeout = 600.0;
    let a = node("rep-a", c.clone()).await;
    let ea = echo(&a);
    let b1 = node("rep-b", c.clone()).await;
    let proxy = Proxy::start(&a.listen_addrs()[0]).await;
    b1.add_node_addr(a.id(), proxy.addr());
    assert_eq!(b1.call(&ea, msg!["first life"], PATIENCE).await.unwrap(), msg!["first life"]);
    // The old link stalls: neither side notices when b1 goes away.
    proxy.pause(true);
    b1.shutdown().await;
    let b2 = node("rep-b", c).await;
    let eb = echo(&b2);
    b2.add_node_addr(a.id(), a.listen_addrs()[0].clone());
    let (sink, mut got) = aemp_tests::collector(&a);
    b2.snd(&sink, msg!["second life"]);
    assert_eq!(aemp_tests::next(&mut got).await, msg!["second life"]);
    // Both of a's writers for b are idle now; a sends on the new link.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..10 {
        let r = tokio::time::timeout(PATIENCE, a.call(&eb, msg![i], PATIENCE)).await;
        assert_eq!(r.expect("a message on the new link waited for a keepalive").unwrap(), msg![i]);
    }
    drop(proxy);
    a.shutdown().await;
    b2.shutdown().await;
}

/// P28's other half: a link that goes quiet (no messages, no keepalives)
/// is dropped once the peer's advertised timeout has passed, and the
/// monitors on that node's ports say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_goes_quiet_is_dropped_after_the_peers_timeout() {
    let mut c = cfg(true);
    // a advertises timeout=2 (monitor_timeout less network_latency).
    c.monitor_timeout = 2.5;
    c.network_latency = 0.5;
    let a = node("quiet-a", c.clone()).await;
    let ea = echo(&a);
    let b = node("quiet-b", c).await;
    let proxy = Proxy::start(&a.listen_addrs()[0]).await;
    b.add_node_addr(a.id(), proxy.addr());
    assert_eq!(b.call(&ea, msg!["up"], PATIENCE).await.unwrap(), msg!["up"]);
    let dead = b.dead(&ea);
    tokio::pin!(dead);
    // Traffic of a few seconds keeps the link: the timeout counts silence,
    // not the age of the link.
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(b.call(&ea, msg![i], PATIENCE).await.unwrap(), msg![i]);
    }
    // So do keepalives, with no messages at all for twice the timeout.
    let idle = tokio::time::timeout(Duration::from_secs(4), &mut dead).await;
    assert!(idle.is_err(), "an idle link was dropped: {:?}", idle.ok());
    proxy.pause(true);
    let reason = within(dead).await;
    assert_eq!(reason, Reason::transport_error("quiet-a", "read timeout"));
    drop(proxy);
    a.shutdown().await;
    b.shutdown().await;
}

/// Node::shutdown with live connections (an established node link, an
/// established raw client, a handshake in progress): peers see the close
/// at once (their monitors fire long before any timeout could), and no task
/// of the node is left on its runtime.
#[test]
fn shutdown_closes_live_connections_promptly_and_leaves_no_task_behind() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let peers = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    assert_eq!(rt.metrics().num_alive_tasks(), 0);
    let mut c = cfg(true);
    // Silence is tolerated for an hour: only a close can end these links soon.
    c.monitor_timeout = 3600.0;
    let s = rt.block_on(async { node("sd-s", c.clone()).await });
    let s_addr = s.listen_addrs()[0].clone();
    let es = rt.block_on(async { echo(&s) });
    let (b, mut raw, mut half, fired) = peers.block_on(async {
        let b = node("sd-b", c.clone()).await;
        b.add_node_addr(s.id(), s_addr.clone());
        assert_eq!(b.call(&es, msg!["up"], PATIENCE).await.unwrap(), msg!["up"]);
        let fired = b.dead(&es);
        let mut raw = Raw::login(&s_addr, "sd-raw", SECRET, "json").await;
        raw.send_msg(&msg!["", "info", "sd-raw#r"]).await.unwrap();
        assert_eq!(raw.msg_to("r").await.unwrap(), msg!["r", "sd-s"].into_vec());
        let mut half = Raw::connect(&s_addr).await;
        assert!(half.line().await.is_some());
        (b, raw, half, fired)
    });
    assert!(rt.metrics().num_alive_tasks() > 0);
    // s also dials out, to a node that never answers.
    rt.block_on(async {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        s.add_node_addr(&aemp::NodeId::new("sd-mute").unwrap(), l.local_addr().unwrap().to_string());
        s.snd(&aemp::NodeId::new("sd-mute").unwrap().port("x").unwrap(), msg!["hello?"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::mem::forget(l);
    });
    let t0 = Instant::now();
    rt.block_on(within(s.shutdown()));
    let took = t0.elapsed();
    peers.block_on(async {
        let r = within(fired).await;
        assert_eq!(r.kind(), Some("transport_error"), "{r}");
        assert!(raw.closed().await && half.closed().await);
        b.shutdown().await;
    });
    // Finished tasks are released shortly after they end.
    let deadline = Instant::now() + PATIENCE;
    while rt.metrics().num_alive_tasks() > 0 {
        assert!(Instant::now() < deadline, "{} tasks alive after shutdown", rt.metrics().num_alive_tasks());
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("shutdown took {took:?}; peers' monitors fired and no task is left");
}

/// A node that reconnects and monitors the same port again (as every
/// sender does after its monitor fired, P25) must not pile up remote
/// monitors on the port's node: when the port dies, it hears of it once.
#[tokio::test]
async fn remote_monitors_do_not_pile_up_across_reconnections() {
    let s = node("pile-s", cfg(true)).await;
    let target = s.named_port("target", |_, _| {}).unwrap();
    let addr = s.listen_addrs()[0].clone();
    for _ in 0..3 {
        let mut raw = Raw::login(&addr, "pile-raw", SECRET, "json").await;
        raw.send_msg(&msg!["", "mon1", "target"]).await.unwrap();
        raw.send_msg(&msg!["", "info", "pile-raw#sync"]).await.unwrap();
        raw.msg_to("sync").await.unwrap();
        // The link drops; the node forgets nothing the monitor needs.
    }
    let mut raw = Raw::login(&addr, "pile-raw", SECRET, "json").await;
    raw.send_msg(&msg!["", "mon1", "target"]).await.unwrap();
    raw.send_msg(&msg!["", "info", "pile-raw#before"]).await.unwrap();
    raw.msg_to("before").await.unwrap();
    s.kil(&target, Reason::die("gone"));
    raw.send_msg(&msg!["", "info", "pile-raw#sync"]).await.unwrap();
    let mut kils = 0;
    loop {
        let m = raw.msg().await.unwrap();
        if m == msg!["", "kil", "target", "die", "gone"].into_vec() {
            kils += 1;
        }
        if m.first() == Some(&Value::from("sync")) {
            break;
        }
    }
    assert_eq!(kils, 1, "the port's death was reported {kils} times");
    s.shutdown().await;
}

#[tokio::test]
async fn a_seed_that_connected_to_us_first_is_not_dialled_again_and_again() {
    let logs = Logs::new();
    let _g = logs.capture();
    let seed = node("sd-first-a-seed", cfg(true)).await;
    // The node reaches its seed through a stalled proxy, so the seed's own
    // dial to the node comes up first. (The seed's ID is the lower one, so
    // the node's later dial is the duplicate that both sides refuse, as a
    // 0.9 seed refuses any dial once a link is up.)
    let proxy = Proxy::start(&seed.listen_addrs()[0]).await;
    proxy.pause(true);
    let mut c = cfg(true);
    c.seeds = vec![proxy.addr()];
    // The stalled dial must not time out on a slow machine: it is the one
    // that meets the link already up.
    c.handshake_timeout = 120.0;
    let n = node("sd-first-z-node", c).await;
    seed.add_node_addr(n.id(), n.listen_addrs()[0].clone());
    seed.snd(&n.id().node_port(), msg!["time"]);
    within(n.wait_up(seed.id())).await;
    // Now the node's seed dial goes through: it meets a node it is connected
    // to already, and from then on watches that link instead of dialling.
    proxy.pause(false);
    logs.wait_for_line(&["seed is already connected", "node=sd-first-a-seed"]).await;
    assert_eq!(logs.count("seed connection failed"), 0, "{}", logs.text());
    assert!(n.up_nodes().contains(seed.id()));
    for x in [n, seed] {
        x.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p07_a_node_re_establishes_its_seed_link_after_losing_it() {
    let seed = node("p07-seed", cfg(true)).await;
    // Masking: the node learns only the proxy's address for its seed.
    let proxy = Proxy::start_masking(&seed.listen_addrs()[0]).await;
    let mut c = cfg(false);
    c.seeds = vec![proxy.addr()];
    let n = node("p07-node", c).await;
    for round in 0..3 {
        within(n.wait_up(seed.id())).await;
        // Cut every connection: the node is left with none, and dials its
        // seed again by itself.
        let down = n.dead(&seed.id().node_port());
        assert!(proxy.cut() >= 1, "round {round}: the seed link went through the proxy");
        let reason = within(down).await;
        assert_eq!(reason.0[0], Value::from("transport_error"), "round {round}: {reason}");
    }
    within(n.wait_up(seed.id())).await;
    assert!(proxy.accepted() >= 4);
    for x in [n, seed] {
        x.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_node_restarted_under_the_same_id_again_and_again_is_always_answered() {
    // Each round a private node with the same ID connects, spawns ports on
    // the server, hears from them and kills them, then goes. The server
    // forgets the departed node while the next one is already connecting;
    // nothing the server sends the new one may end up with the old entry.
    let server = node("re-server", cfg(true)).await;
    server.register("Re::init", |ctx, _m| {
        let me = ctx.self_id();
        ctx.rcv(&me, |ctx, m| -> aemp::Result<()> {
            ctx.snd(&m.port(0)?, msg!["ok"]);
            Ok(())
        });
    });
    let addr = server.listen_addrs()[0].clone();
    for round in 0..400 {
        let client = node("re-client", cfg(false)).await;
        client.add_node_addr(server.id(), addr.clone());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let me = client.port_with(move |_, m| {
            let _ = tx.send(m);
        });
        let mut deaths = Vec::new();
        for _ in 0..20 {
            let p = client.spawn(server.id(), "Re::init", msg![]);
            deaths.push(client.dead(&p));
            client.snd(&p, msg![&me]);
            client.kil(&p, Reason::normal());
        }
        for _ in 0..20 {
            let m = within(rx.recv()).await;
            assert_eq!(m, Some(msg!["ok"]), "round {round}");
        }
        for d in deaths {
            assert!(within(d).await.is_normal(), "round {round}");
        }
        client.shutdown().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_faster_than_the_node_handles_is_held_back_and_nothing_is_lost() {
    const PAYLOAD: usize = 1000;
    // Enough to fill every buffer on the way many times over if the node
    // read without limit (64 MiB); with receive-side backpressure the
    // flooder is stopped after a few MiB.
    const CAP: u64 = 64 * 1024;
    let server = node("bp-server", cfg(true)).await;
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (blocked_tx, blocked_rx) = tokio::sync::oneshot::channel();
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (mut release_rx, mut blocked_tx) = (Some(release_rx), Some(blocked_tx));
    let sink = server
        .named_port("sink", move |_, m| -> aemp::Result<()> {
            if m.tag() == Some("hold") {
                // Hold the node's dispatcher until the test lets go.
                let _ = blocked_tx.take().map(|t| t.send(()));
                let _ = release_rx.take().map(|r| r.recv());
                return Ok(());
            }
            let _ = seen_tx.send(m.get::<u64>(1)?);
            Ok(())
        })
        .unwrap();
    server.snd(&sink, msg!["hold"]);
    within(blocked_rx).await.unwrap();
    let mut raw = Raw::login(&server.listen_addrs()[0], "bp-flooder", SECRET, "msgpack").await;
    let payload = "x".repeat(PAYLOAD);
    let mut written = 0u64;
    let mut held_back = false;
    while written < CAP {
        let m = msg!["sink", "n", written, payload.as_str()];
        match tokio::time::timeout(Duration::from_millis(500), raw.send_msg(&m)).await {
            Ok(r) => r.unwrap(),
            Err(_) => {
                held_back = true;
                break;
            }
        }
        written += 1;
    }
    assert!(
        held_back,
        "the node kept reading {CAP} messages of {PAYLOAD} bytes while it could not handle them"
    );
    assert!(
        written * PAYLOAD as u64 <= 32 << 20,
        "{written} messages were taken before the flooder was held back"
    );
    // Let go: every message taken arrives, in order.
    release_tx.send(()).unwrap();
    for i in 0..written {
        assert_eq!(within(seen_rx.recv()).await, Some(i));
    }
    server.shutdown().await;
}

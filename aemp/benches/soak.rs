//! Load and soak runs that print their figures (no pass/fail on timing):
//!
//! `cargo bench -p aemp --bench soak` runs them all, or name some:
//! `cargo bench -p aemp --bench soak -- two-process mesh ports memory`.
//!
//! - `two-process`: 1 M numbered messages from one OS process to another
//!   (this bench starts a copy of itself as the receiver); the receiver
//!   checks that every number arrives once and in order, and the sender's
//!   monitor on the receiving port must not fire.
//! - `mesh`: 20 nodes in one process find each other through a seed until
//!   every node is connected to the 19 others; then every node calls a port
//!   on every other node.
//! - `ports`: 100 k ports on one node, one message to each, then all killed.
//! - `memory`: `AEMP_SOAK_SECS` seconds (default 60) of rounds, each of
//!   which restarts a client node (same ID), has it spawn and monitor 1000
//!   ports on the server, exchange messages with them and kill them (each
//!   death confirmed by its monitor); resident memory and the server's port
//!   count are sampled as it goes and must level off.
//!
//! The 1,000-cut property run of the link fault tests is a soak too:
//! `AEMP_CUTS=20000 cargo test --release -p aemp-tests --test faults p25 -- --nocapture`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aemp::{msg, NetConfig, Node, NodeId, Reason};

#[path = "support/child.rs"]
mod child;

const SECRET: &str = "soak-secret";
const MESSAGES: u64 = 1_000_000;
const MESH: usize = 20;
const PORTS: usize = 100_000;

fn cfg(public: bool) -> NetConfig {
    let mut c = NetConfig::default();
    if public {
        c.binds = vec!["127.0.0.1:0".into()];
    }
    c.secret = Some(SECRET.into());
    c.connect_interval = 0.05;
    c
}

/// Resident and peak resident memory of this process, in MiB.
fn rss() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| -> f64 {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

// ---- two processes -------------------------------------------------------------

/// The receiving process: a sink that checks the numbers it gets.
async fn receiver() {
    let node = Node::builder().id("soak-receiver").net_config(cfg(true)).build().await.unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let (n, w) = (next.clone(), wrong.clone());
    node.named_port("sink", move |_, m| -> aemp::Result<()> {
        let seq: u64 = m.get(0)?;
        if seq != n.load(Ordering::Relaxed) {
            w.fetch_add(1, Ordering::Relaxed);
        }
        n.store(seq + 1, Ordering::Relaxed);
        Ok(())
    })
    .unwrap();
    node.named_port("report", move |ctx, m| -> aemp::Result<()> {
        let (received, wrong) = (next.load(Ordering::Relaxed), wrong.load(Ordering::Relaxed));
        ctx.snd(&m.port(0)?, msg![received, wrong, rss().1]);
        Ok(())
    })
    .unwrap();
    child::announce_and_serve(&node.listen_addrs()[0]).await;
    node.shutdown().await;
}

async fn two_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("AEMP_SOAK_ROLE", "receiver")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut addr).unwrap();
    let server = NodeId::new("soak-receiver").unwrap();
    let node = Node::builder().net_config(cfg(false)).build().await.unwrap();
    node.add_node_addr(&server, addr.trim());
    let sink = server.port("sink").unwrap();
    let report = server.port("report").unwrap();
    node.call(&report, msg![], Duration::from_secs(10)).await.unwrap();
    let lost = node.dead(&sink);
    let t0 = Instant::now();
    for i in 0..MESSAGES {
        node.snd(&sink, msg![i]);
        if i % 4096 == 4095 {
            tokio::task::yield_now().await;
        }
    }
    let queued = t0.elapsed();
    let r = node.call(&report, msg![], Duration::from_secs(120)).await.unwrap();
    let took = t0.elapsed();
    let (received, wrong, peer_mb): (u64, u64, f64) =
        (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap());
    let fired = tokio::time::timeout(Duration::from_millis(100), lost).await.ok();
    println!(
        "two-process: {MESSAGES} sent (handed to snd in {queued:.2?}), {received} received, {} lost, {wrong} out of order, \
         {:.2} M msgs/s, monitor fired: {}, peak RSS sender {:.0} MiB / receiver {peer_mb:.0} MiB",
        MESSAGES - received,
        MESSAGES as f64 / took.as_secs_f64() / 1e6,
        fired.map_or("no".to_owned(), |r| r.to_string()),
        rss().1,
    );
    node.shutdown().await;
    drop(child.stdin.take());
    let _ = child.wait();
}

// ---- a 20-node mesh ------------------------------------------------------------

async fn mesh() {
    let t0 = Instant::now();
    let seed = Node::builder().id("mesh-0").net_config(cfg(true)).build().await.unwrap();
    let mut c = cfg(true);
    c.seeds = vec![seed.listen_addrs()[0].clone()];
    let mut nodes = vec![seed];
    for i in 1..MESH {
        nodes.push(Node::builder().id(format!("mesh-{i}")).net_config(c.clone()).build().await.unwrap());
    }
    for n in &nodes {
        n.named_port("echo", |ctx, m| -> aemp::Result<()> {
            ctx.snd(&m.port(0)?, msg!["pong"]);
            Ok(())
        })
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes.iter().any(|n| n.up_nodes().len() < MESH - 1) {
        assert!(Instant::now() < deadline, "the mesh did not form within 60 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let formed = t0.elapsed();
    let t1 = Instant::now();
    let mut calls = 0;
    for a in &nodes {
        for b in &nodes {
            if a.id() != b.id() {
                let r = a.call(&b.id().port("echo").unwrap(), msg![], Duration::from_secs(10)).await.unwrap();
                assert_eq!(r, msg!["pong"]);
                calls += 1;
            }
        }
    }
    println!(
        "mesh: {MESH} nodes fully connected ({} links) in {formed:.2?}; {calls} calls across it in {:.2?}",
        MESH * (MESH - 1) / 2,
        t1.elapsed()
    );
    for n in nodes {
        n.shutdown().await;
    }
}

// ---- 100 k ports ---------------------------------------------------------------

async fn ports() {
    let node = Node::builder().build().await.unwrap();
    let before = rss().0;
    let got = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut ids = Vec::with_capacity(PORTS);
    for _ in 0..PORTS {
        let g = got.clone();
        ids.push(node.port_with(move |_, _| {
            g.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for p in &ids {
        node.snd(p, msg!["hello"]);
    }
    let live = node.port_count().await;
    while got.load(Ordering::Relaxed) < PORTS as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let made = t0.elapsed();
    let with = rss().0;
    for p in &ids {
        node.kil(p, Reason::normal());
    }
    let left = node.port_count().await;
    println!(
        "ports: {PORTS} created and messaged in {made:.2?} ({live} live), {:.0} bytes each; \
         after killing them {left} left, RSS {before:.0} -> {with:.0} -> {:.0} MiB",
        (with - before) * 1024.0 * 1024.0 / PORTS as f64,
        rss().0
    );
    node.shutdown().await;
}

// ---- memory over a long run ----------------------------------------------------

async fn memory() {
    let secs: u64 = std::env::var("AEMP_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let server = Node::builder().id("mem-server").net_config(cfg(true)).build().await.unwrap();
    server.register("Soak::init", |ctx, _m| {
        let me = ctx.self_id();
        ctx.rcv(&me, |ctx, m| -> aemp::Result<()> {
            ctx.snd(&m.port(0)?, msg!["ok"]);
            Ok(())
        });
    });
    let addr = server.listen_addrs()[0].clone();
    let t0 = Instant::now();
    let mut samples = Vec::new();
    let mut rounds = 0u64;
    let mut messages = 0u64;
    while t0.elapsed() < Duration::from_secs(secs) {
        let client = Node::builder().id("mem-client").net_config(cfg(false)).build().await.unwrap();
        client.add_node_addr(server.id(), addr.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let me = client.port_with(move |_, m| {
            let _ = tx.send(m);
        });
        let (dead_tx, mut dead) = tokio::sync::mpsc::unbounded_channel();
        let mut spawned = Vec::new();
        for _ in 0..1000 {
            let p = client.spawn(server.id(), "Soak::init", msg![]);
            let d = dead_tx.clone();
            client
                .mon(&p, move |r: Reason| {
                    let _ = d.send(r);
                })
                .keep();
            client.snd(&p, msg![&me]);
            spawned.push(p);
        }
        for _ in 0..1000 {
            rx.recv().await.unwrap();
        }
        for p in &spawned {
            client.kil(p, Reason::normal());
        }
        // Every kill is confirmed by the port's monitor before the client goes.
        for _ in 0..1000 {
            assert!(dead.recv().await.unwrap().is_normal());
        }
        messages += 2000;
        client.call(&server.id().node_port(), msg!["info"], Duration::from_secs(10)).await.unwrap();
        client.shutdown().await;
        rounds += 1;
        if rounds.is_multiple_of(10) {
            samples.push((t0.elapsed().as_secs_f64(), rss().0, server.port_count().await));
        }
    }
    let line: Vec<String> = samples
        .iter()
        .step_by((samples.len() / 8).max(1))
        .map(|(t, m, p)| format!("{t:.0}s {m:.1}MiB/{p}p"))
        .collect();
    let q = samples.len() / 4;
    let (early, late) = (samples.get(q).map_or(0.0, |s| s.1), samples.last().map_or(0.0, |s| s.1));
    println!(
        "memory: {rounds} rounds ({messages} messages, {} spawned ports, {rounds} client restarts) in {secs} s; \
         RSS after the first quarter {early:.1} MiB, at the end {late:.1} MiB ({:+.1}%); samples: {}",
        rounds * 1000,
        (late - early) / early.max(1.0) * 100.0,
        line.join(", ")
    );
    server.shutdown().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var("AEMP_SOAK_ROLE").as_deref() == Ok("receiver") {
        rt.block_on(receiver());
        return;
    }
    let all = ["two-process", "mesh", "ports", "memory"];
    let mut chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter(|a| all.contains(&a.as_str()))
        .collect();
    if chosen.is_empty() {
        chosen = all.iter().map(|s| (*s).to_owned()).collect();
    }
    for c in chosen {
        match c.as_str() {
            "two-process" => rt.block_on(two_process()),
            "mesh" => rt.block_on(mesh()),
            "ports" => rt.block_on(ports()),
            _ => rt.block_on(memory()),
        }
    }
}

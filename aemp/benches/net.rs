//! Network benchmarks between two OS processes on 127.0.0.1, each beside raw
//! length-framed TCP measured in the same run:
//!
//! `cargo bench -p aemp --bench net` (both processes on all CPUs), and
//! `taskset -c 0 cargo bench -p aemp --bench net` (both on one CPU).
//!
//! The bench starts a copy of itself as the server process.
//! `AEMP_BENCH_ONLY=msgpack|json|setup` runs only one framing's figures,
//! or only the connection set-up.
//!
//! Set-up is sampled one at a time, each kind in turn (bare TCP, aemp link
//! up, aemp first request, the same with TLS), and each sample starts the
//! same way: the server has seen the previous sample's node go, and one
//! untimed bare TCP set-up to the server process has just run. The median
//! and the mean of the samples are printed. Round trips run in alternating
//! blocks of aemp and raw TCP, from a task on the runtime's workers.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aemp::tls::TlsSetup;
use aemp::{msg, NetConfig, Node, NodeId, PortId};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};

#[path = "support/child.rs"]
mod child;
#[path = "support/mode.rs"]
mod mode;

fn round_trips() -> u32 {
    mode::count(20_000, 200)
}
fn one_way() -> u64 {
    mode::count(1_000_000, 10_000)
}
fn setups() -> u32 {
    mode::count(600, 5)
}
const SECRET: &str = "bench-secret";

fn cfg(binds: bool, framing: &str, tls: Option<&str>) -> NetConfig {
    let mut c = NetConfig::default();
    if binds {
        c.binds = vec!["127.0.0.1:0".into()];
    }
    c.secret = Some(SECRET.into());
    c.framings = vec![framing.to_owned()];
    if framing == "msgpack" {
        c.framings.push("json".into());
    }
    c.cert_pem = tls.map(str::to_owned);
    c
}

// ---- the server process -------------------------------------------------------

async fn raw_server(l: TcpListener) {
    loop {
        let Ok((s, _)) = l.accept().await else { return };
        let _ = s.set_nodelay(true);
        // Reads are buffered, as aemp's are: a fair baseline for small frames.
        let mut s = tokio::io::BufReader::with_capacity(64 * 1024, s);
        tokio::spawn(async move {
            let mut len = [0u8; 4];
            let mut buf = vec![0u8; 1 << 16];
            let mut count = 0u64;
            loop {
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let n = u32::from_be_bytes(len) as usize;
                if n == 0 {
                    // A line-style handshake probe: answer one byte.
                    if s.get_mut().write_all(&[1]).await.is_err() {
                        return;
                    }
                    continue;
                }
                if s.read_exact(&mut buf[..n]).await.is_err() {
                    return;
                }
                match buf[0] {
                    b'P' => {
                        // Echo the frame (round trip).
                        let mut out = len.to_vec();
                        out.extend_from_slice(&buf[..n]);
                        if s.get_mut().write_all(&out).await.is_err() {
                            return;
                        }
                    }
                    _ => {
                        // Count; answer once the expected number arrived.
                        count += 1;
                        if count == one_way() {
                            count = 0;
                            if s.get_mut().write_all(&[2]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
    }
}

/// The baseline for TLS set-up: rustls with the nodes' certificate scheme,
/// then one short frame each way.
async fn raw_tls_server(l: TcpListener, pem: String) {
    let acceptor = tokio_rustls::TlsAcceptor::from(TlsSetup::from_pem(&pem).unwrap().server_config());
    loop {
        let Ok((s, _)) = l.accept().await else { return };
        let _ = s.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut s) = acceptor.accept(s).await else { return };
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).await.is_ok() {
                let _ = s.write_all(&[1]).await;
                let _ = s.flush().await;
            }
        });
    }
}

async fn server(pem: String) {
    let raw = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_addr = raw.local_addr().unwrap();
    tokio::spawn(raw_server(raw));
    let raw_tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_tls_addr = raw_tls.local_addr().unwrap();
    tokio::spawn(raw_tls_server(raw_tls, pem.clone()));
    let plain =
        Node::builder().id("bench-server").net_config(cfg(true, "msgpack", None)).build().await.unwrap();
    let tls =
        Node::builder().id("bench-tls").net_config(cfg(true, "msgpack", Some(&pem))).build().await.unwrap();
    for n in [&plain, &tls] {
        n.named_port("echo", |ctx, m| -> aemp::Result<()> {
            ctx.snd(&m.port(0)?, msg![m.at(1)?.clone()]);
            Ok(())
        })
        .unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        n.named_port("sink", move |ctx, m| -> aemp::Result<()> {
            if seen.fetch_add(1, Ordering::Relaxed) + 1 == one_way() {
                seen.store(0, Ordering::Relaxed);
                ctx.snd(&m.port(0)?, msg!["done"]);
            }
            Ok(())
        })
        .unwrap();
    }
    let addrs =
        format!("{} {} {} {}", plain.listen_addrs()[0], tls.listen_addrs()[0], raw_addr, raw_tls_addr);
    child::announce_and_serve(&addrs).await;
}

// ---- the client process -------------------------------------------------------

/// The time of `n` round trips of a local port bouncing a counter off a
/// remote echo port (callback to callback, as aemp programs do).
async fn aemp_rtt(node: &Node, echo: &PortId, n: u32) -> Duration {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let echo2 = echo.clone();
    let pinger = node.port_with(move |ctx, m| -> aemp::Result<()> {
        let i: u32 = m.get(0)?;
        if i == n {
            let _ = tx.take().map(|t| t.send(Instant::now()));
            ctx.kil_self(aemp::Reason::normal());
        } else {
            let me = ctx.self_id();
            ctx.snd(&echo2, msg![me, i + 1]);
        }
        Ok(())
    });
    let t0 = Instant::now();
    node.snd(echo, msg![&pinger, 1]);
    rx.await.unwrap() - t0
}

/// A first round trip over the link (connection set-up).
async fn aemp_warm_up(node: &Node, echo: &PortId) {
    let (wtx, mut wrx) = tokio::sync::mpsc::unbounded_channel();
    let warm = node.port_with(move |ctx, _| {
        let _ = wtx.send(());
        ctx.kil_self(aemp::Reason::normal());
    });
    node.snd(echo, msg![&warm, 0]);
    wrx.recv().await.unwrap();
}

/// The frame a raw round trip carries: the size of aemp's msgpack frame.
fn raw_frame(tag: u8, len: usize) -> Vec<u8> {
    let mut f = (len as u32).to_be_bytes().to_vec();
    f.push(tag);
    f.resize(4 + len, b'x');
    f
}

/// The time of `n` round trips of a raw frame over `s`.
async fn raw_rtt(s: &mut TcpStream, n: u32) -> Duration {
    let frame = raw_frame(b'P', 40);
    let mut back = vec![0u8; frame.len()];
    let t0 = Instant::now();
    for _ in 0..n {
        s.write_all(&frame).await.unwrap();
        s.read_exact(&mut back).await.unwrap();
    }
    t0.elapsed()
}

/// Mean round trips, aemp's and raw TCP's, measured in alternating blocks
/// so that a slow spell of a shared machine hits both alike.
async fn rtts(node: &Node, echo: &PortId, raw: &str) -> (Duration, Duration) {
    const BLOCKS: u32 = 10;
    let mut s = TcpStream::connect(raw).await.unwrap();
    s.set_nodelay(true).unwrap();
    raw_rtt(&mut s, 1).await;
    aemp_warm_up(node, echo).await;
    let (mut ours, mut base) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..BLOCKS {
        ours += aemp_rtt(node, echo, round_trips() / BLOCKS).await;
        base += raw_rtt(&mut s, round_trips() / BLOCKS).await;
    }
    let n = round_trips() / BLOCKS * BLOCKS;
    (ours / n, base / n)
}

async fn aemp_one_way(node: &Node, sink: &PortId) -> f64 {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let me = node.port_with(move |_, _| {
        let _ = tx.take().map(|t| t.send(()));
    });
    let t0 = Instant::now();
    for _ in 0..one_way() {
        node.snd(sink, msg![&me, 1]);
    }
    rx.await.unwrap();
    one_way() as f64 / t0.elapsed().as_secs_f64()
}

async fn raw_one_way(addr: &str) -> f64 {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (mut rd, wr) = s.into_split();
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    let frame = raw_frame(b'O', 40);
    let t0 = Instant::now();
    for _ in 0..one_way() {
        w.write_all(&frame).await.unwrap();
    }
    w.flush().await.unwrap();
    let mut done = [0u8; 1];
    rd.read_exact(&mut done).await.unwrap();
    one_way() as f64 / t0.elapsed().as_secs_f64()
}

/// The time from a fresh node's first use of a server until the link is
/// up (TCP connect, greeting and auth lines each way: `Node::connect`), or
/// with `first_request`, until a first request is answered over it.
/// The node is shut down and the server has seen it go (see `settle`).
async fn aemp_setup(
    (control, server): (&Node, &NodeId),
    addr: &str,
    tls: Option<&str>,
    first_request: bool,
) -> Duration {
    let node = Node::builder().net_config(cfg(false, "msgpack", tls)).build().await.unwrap();
    node.add_node_addr(server, addr);
    let t0 = Instant::now();
    if first_request {
        node.call(&server.node_port(), msg!["info"], Duration::from_secs(10)).await.unwrap();
    } else {
        node.connect(server, Duration::from_secs(10)).await.unwrap();
    }
    let t = t0.elapsed();
    node.shutdown().await;
    settle(control, server, node.id()).await;
    t
}

/// Asks the server (over `control`'s link) which nodes it is linked to,
/// until `gone` is not among them: the next sample then starts with no
/// work left over from this one, on either side.
async fn settle(control: &Node, server: &NodeId, gone: &NodeId) {
    loop {
        let up = control.call(&server.node_port(), msg!["up_nodes"], Duration::from_secs(10)).await.unwrap();
        if !up.iter().any(|v| v.as_str() == Some(gone.as_str())) {
            return;
        }
    }
}

/// The time of a bare TCP connect plus one short frame each way.
async fn raw_setup(addr: &str) -> Duration {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr.parse::<std::net::SocketAddr>().unwrap()).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&[0, 0, 0, 0]).await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    t0.elapsed()
}

/// [`raw_setup`] under TLS: a TLS handshake with the nodes' certificate
/// scheme (the client checks the server's certificate), then one short
/// frame each way.
async fn raw_tls_setup(addr: &str, tls: &TlsSetup) -> Duration {
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let t0 = Instant::now();
    let s = TcpStream::connect(addr.parse::<std::net::SocketAddr>().unwrap()).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut s = connector.connect(aemp::tls::server_name(), s).await.unwrap();
    s.write_all(&[0, 0, 0, 0]).await.unwrap();
    s.flush().await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    t0.elapsed()
}

/// The median and the mean of some times.
fn p50_mean(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v.iter().sum::<Duration>() / v.len() as u32)
}

fn cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Cpus_allowed_list"))
                .map(|l| l.split_whitespace().last().unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

fn line(what: &str, ours: String, base: String, ratio: f64, target: &str) {
    line_against("raw TCP", what, ours, base, ratio, target);
}

fn line_against(baseline: &str, what: &str, ours: String, base: String, ratio: f64, target: &str) {
    println!("{what:<40} aemp {ours:>12}   {baseline} {base:>12}   ratio {ratio:>5.2}   target {target}");
}

async fn client() {
    let pem = aemp::generate_cert_pem("AnyEvent::MP").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("AEMP_BENCH_ROLE", "server")
        .env("AEMP_BENCH_FULL", mode::env_value())
        .env("AEMP_BENCH_PEM", &pem)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addrs: Vec<String> = first.split_whitespace().map(str::to_owned).collect();
    let (plain, tls_addr, raw, raw_tls) = (&addrs[0], &addrs[1], &addrs[2], &addrs[3]);
    println!("CPUs allowed: {} (server process inherits the same)", cpus());
    let server = NodeId::new("bench-server").unwrap();
    let only = std::env::var("AEMP_BENCH_ONLY").ok();
    let wants = |what: &str| only.as_deref().is_none_or(|o| o == what);
    for framing in ["msgpack", "json"] {
        if !wants(framing) {
            continue;
        }
        let node = Node::builder().net_config(cfg(false, framing, None)).build().await.unwrap();
        node.add_node_addr(&server, plain.as_str());
        let echo = server.port("echo").unwrap();
        let sink = server.port("sink").unwrap();
        // From a task on the runtime's workers, as a service's code runs
        // (the baseline too), not from the thread that blocks on the runtime.
        let (ours, base) = {
            let (node, echo, raw) = (node.clone(), echo.clone(), raw.clone());
            tokio::spawn(async move { rtts(&node, &echo, &raw).await }).await.unwrap()
        };
        let target = if framing == "msgpack" { "<= 1.1x (one CPU)" } else { "<= 1.25x" };
        line(
            &format!("round trip ({framing})"),
            format!("{ours:?}"),
            format!("{base:?}"),
            ours.as_secs_f64() / base.as_secs_f64(),
            target,
        );
        let ours = aemp_one_way(&node, &sink).await;
        let base = raw_one_way(raw).await;
        let target = if framing == "msgpack" { ">= 5 M/s (2 CPUs)" } else { ">= 1.5 M/s (2 CPUs)" };
        line(
            &format!("one-way ({framing}, msgs/s)"),
            format!("{:.2} M", ours / 1e6),
            format!("{:.2} M", base / 1e6),
            ours / base,
            target,
        );
        node.shutdown().await;
    }
    if wants("setup") {
        // Set-up is measured from a task on the runtime's workers, as a
        // service's code runs (the baseline too), not from the thread that
        // blocks on the runtime: a task the dial spawns then starts on the
        // caller's worker instead of waking a parked one.
        let (raw_s, plain_s, tls_s, pem_s) = (raw.clone(), plain.clone(), tls_addr.clone(), pem.clone());
        let raw_tls_s = raw_tls.clone();
        let tls_setup = TlsSetup::from_pem(&pem).unwrap();
        // Long-lived nodes linked to each server, to let every sample start
        // from the same quiet state.
        let control = Node::builder().net_config(cfg(false, "msgpack", None)).build().await.unwrap();
        control.add_node_addr(&server, plain.as_str());
        control.connect(&server, Duration::from_secs(10)).await.unwrap();
        let tls_server = NodeId::new("bench-tls").unwrap();
        let tls_control =
            Node::builder().net_config(cfg(false, "msgpack", Some(&pem))).build().await.unwrap();
        tls_control.add_node_addr(&tls_server, tls_addr.as_str());
        tls_control.connect(&tls_server, Duration::from_secs(10)).await.unwrap();
        // One sample of each in turn, so that a slow spell of a shared
        // machine hits all of them alike. Each sample starts the same way:
        // nothing left over from the one before (see `settle`), and one
        // untimed bare set-up to the same server process just done, so
        // that raw and aemp samples alike start warm.
        let [base, up, first, tls_base, tls_up, tls_first] = tokio::spawn(async move {
            let mut all: [Vec<Duration>; 6] = Default::default();
            for _ in 0..setups() {
                for (i, a) in all.iter_mut().enumerate() {
                    raw_setup(&raw_s).await;
                    a.push(match i {
                        0 => raw_setup(&raw_s).await,
                        1 => aemp_setup((&control, &server), &plain_s, None, false).await,
                        2 => aemp_setup((&control, &server), &plain_s, None, true).await,
                        3 => raw_tls_setup(&raw_tls_s, &tls_setup).await,
                        4 => aemp_setup((&tls_control, &tls_server), &tls_s, Some(&pem_s), false).await,
                        _ => aemp_setup((&tls_control, &tls_server), &tls_s, Some(&pem_s), true).await,
                    });
                }
            }
            all.map(p50_mean)
        })
        .await
        .unwrap();
        for (what, ours, base, baseline, target) in [
            ("connection set-up (link up)", up, base, "raw TCP", "<= 2x"),
            ("set-up + first request answered", first, base, "raw TCP", "(reported)"),
            ("TLS set-up (link up)", tls_up, tls_base, "raw TLS", "(reported)"),
            ("TLS set-up + first request answered", tls_first, tls_base, "raw TLS", "(reported)"),
        ] {
            for (stat, ours, base) in [("median", ours.0, base.0), ("mean", ours.1, base.1)] {
                line_against(
                    baseline,
                    &format!("{what}, {stat}"),
                    format!("{ours:.1?}"),
                    format!("{base:.1?}"),
                    ours.as_secs_f64() / base.as_secs_f64(),
                    target,
                );
            }
        }
    }
    drop(child.stdin.take());
    let _ = child.wait();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var("AEMP_BENCH_ROLE").as_deref() == Ok("server") {
        let pem = std::env::var("AEMP_BENCH_PEM").unwrap_or_default();
        rt.block_on(server(pem));
    } else {
        mode::banner();
        rt.block_on(client());
        // The book shows a second run with both processes on one CPU; the
        // smoke run (under `cargo test`) makes it too, where taskset exists.
        if !mode::full() && std::env::var_os("AEMP_BENCH_PINNED").is_none() {
            pinned_smoke_run();
        }
    }
}

/// Runs this benchmark again under `taskset -c 0`, when there is a taskset.
fn pinned_smoke_run() {
    let exe = std::env::current_exe().unwrap();
    match Command::new("taskset").arg("-c").arg("0").arg(exe).env("AEMP_BENCH_PINNED", "1").status() {
        Ok(status) => assert!(status.success(), "the run under taskset failed: {status}"),
        Err(e) => println!("taskset not available ({e}): the run on one CPU is skipped"),
    }
}

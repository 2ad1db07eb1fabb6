//! Benchmarks of the core runtime, each beside a baseline measured in the
//! same run: `cargo bench -p aemp --bench core`.
//!
//! Prints one line per figure with the ratio to its baseline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aemp::{msg, Msg, Node};

/// Counts live heap bytes while `COUNTING` is on (a cheap load otherwise).
struct Counting;
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[path = "support/mode.rs"]
mod mode;

fn sends() -> u64 {
    mode::count(4_000_000, 20_000)
}
fn round_trips() -> u64 {
    mode::count(200_000, 2_000)
}
fn ports() -> u64 {
    mode::count(1_000_000, 10_000)
}
const EMPTY: bool = false;

fn count(m: &Msg, seen: &AtomicU64) -> u64 {
    std::hint::black_box(m);
    seen.fetch_add(1, Ordering::Relaxed) + 1
}

/// Messages per second from one sender thread to a port's callback.
async fn snd_throughput(node: &Node) -> f64 {
    let total = sends();
    let seen = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let s = seen.clone();
    let port = node.port_with(move |_, m| {
        if count(&m, &s) == total {
            let _ = tx.take().map(|t| t.send(()));
        }
    });
    let node2 = node.clone();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        for i in 0..total {
            node2.snd(&port, if EMPTY { Msg::new() } else { msg![i] });
        }
    });
    rx.await.unwrap();
    total as f64 / t0.elapsed().as_secs_f64()
}

/// The same with a tokio unbounded channel and a receiving task.
async fn mpsc_throughput() -> f64 {
    let total = sends();
    let seen = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let s = seen.clone();
    let t0 = Instant::now();
    let consumer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if count(&m, &s) == total {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for i in 0..total {
            let _ = tx.send(if EMPTY { Msg::new() } else { msg![i] });
        }
    });
    consumer.await.unwrap();
    total as f64 / t0.elapsed().as_secs_f64()
}

/// Mean round trip between two ports of one node.
async fn ping_pong(node: &Node) -> Duration {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let ponger = node.port_with(|ctx, m| -> aemp::Result<()> {
        let back = m.port(0)?;
        ctx.snd(&back, msg![m.at(1)?.clone()]);
        Ok(())
    });
    let p2 = ponger.clone();
    let pinger = node.port_with(move |ctx, m| -> aemp::Result<()> {
        let i: u64 = m.get(0)?;
        if i == round_trips() {
            let _ = tx.take().map(|t| t.send(()));
        } else {
            let me = ctx.self_id();
            ctx.snd(&p2, msg![me, i + 1]);
        }
        Ok(())
    });
    let t0 = Instant::now();
    node.snd(&ponger, msg![&pinger, 0]);
    rx.await.unwrap();
    t0.elapsed() / round_trips() as u32
}

/// The same between two tasks over two tokio unbounded channels.
async fn mpsc_ping_pong() -> Duration {
    let (to_b, mut b_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let (to_a, mut a_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let b = tokio::spawn(async move {
        while let Some(m) = b_rx.recv().await {
            if to_a.send(msg![m.at(1).unwrap().clone()]).is_err() {
                break;
            }
        }
    });
    let t0 = Instant::now();
    to_b.send(msg!["a", 0]).unwrap();
    while let Some(m) = a_rx.recv().await {
        let i: u64 = m.get(0).unwrap();
        if i == round_trips() {
            break;
        }
        to_b.send(msg!["a", i + 1]).unwrap();
    }
    let d = t0.elapsed() / round_trips() as u32;
    drop(to_b);
    b.await.unwrap();
    d
}

/// Ports created per second, and heap bytes per idle port (counted by the
/// allocator while the ports are made, IDs dropped, queues drained).
async fn port_creation(node: &Node) -> (f64, f64) {
    LIVE.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    let mut keep = 0usize;
    for _ in 0..ports() {
        let p = node.port();
        keep += p.as_str().len();
    }
    // The ports exist once the dispatcher has processed the requests.
    let n = node.port_count().await;
    let rate = ports() as f64 / t0.elapsed().as_secs_f64();
    assert!(n as u64 >= ports());
    std::hint::black_box(keep);
    // Let the dispatcher give back its queue memory, then read the count.
    node.port_count().await;
    COUNTING.store(false, Ordering::SeqCst);
    (rate, LIVE.load(Ordering::SeqCst) as f64 / ports() as f64)
}

type BaselineCallback = Box<dyn FnMut(Msg) + Send>;

/// The baseline for ports: a `HashMap` of optional boxed callbacks filled
/// from a second thread through a channel, with a string ID made per entry.
fn baseline_creation() -> f64 {
    let t0 = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let table = std::thread::spawn(move || {
        let mut t: std::collections::HashMap<u64, Option<BaselineCallback>> = Default::default();
        while let Ok(i) = rx.recv() {
            t.insert(i, None);
        }
        t.len()
    });
    let mut keep = 0usize;
    for i in 0..ports() {
        keep += format!("bench#prefix.{i}").len();
        tx.send(i).unwrap();
    }
    drop(tx);
    assert_eq!(table.join().unwrap() as u64, ports());
    std::hint::black_box(keep);
    ports() as f64 / t0.elapsed().as_secs_f64()
}

fn line(what: &str, ours: String, base: String, ratio: f64, target: &str) {
    println!("{what:<34} aemp {ours:>14}   baseline {base:>14}   ratio {ratio:>5.2}   target {target}");
}

/// A line for a rate, in millions per second.
fn rate_line(what: &str, ours: f64, base: f64, target: &str) {
    line(what, format!("{:.2} M", ours / 1e6), format!("{:.2} M", base / 1e6), ours / base, target);
}

/// Whether the figure named `what` was asked for: `cargo bench -p aemp
/// --bench core -- snd` runs only the figures whose name contains `snd`.
fn wanted(what: &str) -> bool {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    filter.is_empty() || filter.iter().any(|f| what.contains(f.as_str()))
}

fn main() {
    mode::banner();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        // Ports first, on a fresh node, so that the resident-memory reading is
        // not blurred by what the other benchmarks allocated and freed.
        if wanted("ports") {
            let fresh = Node::builder().id("bench-ports").build().await.unwrap();
            let base = baseline_creation();
            let (ours, bytes) = port_creation(&fresh).await;
            rate_line("port creation (ports/s)", ours, base, ">= 5 M/s");
            println!(
                "{:<34} aemp {:>12.0} B   (1 M idle ports: {:.0} MB of heap)   target <= 150 B",
                "memory per idle port", bytes, bytes
            );
            fresh.shutdown().await;
        }
        let node = Node::builder().id("bench").build().await.unwrap();
        // Best of three runs each, alternating, to damp this machine's noise.
        if wanted("snd") {
            let (mut ours, mut base) = (0f64, 0f64);
            for _ in 0..3 {
                ours = ours.max(snd_throughput(&node).await);
                base = base.max(mpsc_throughput().await);
            }
            rate_line("snd -> callback (msgs/s)", ours, base, ">= 12 M/s and >= 1.2x");
        }
        if wanted("ping") {
            let (mut ours, mut base) = (Duration::MAX, Duration::MAX);
            for _ in 0..3 {
                ours = ours.min(ping_pong(&node).await);
                base = base.min(mpsc_ping_pong().await);
            }
            line(
                "local ping-pong (round trip)",
                format!("{:?}", ours),
                format!("{:?}", base),
                ours.as_secs_f64() / base.as_secs_f64(),
                "<= 1.2x",
            );
        }
        node.shutdown().await;
    });
}

//! Benchmarks of the core runtime, each beside a baseline measured in the
//! same run: `cargo bench -p aemp --bench core`.
//!
//! Prints one line per figure with the ratio to its baseline. Each baseline
//! is the strongest configuration of the same work that we know: the same
//! message type, and both ends of a ping-pong on one thread as both ports
//! are on the dispatcher's.

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

/// The same with a tokio unbounded channel of the same messages, from a
/// thread to a task, on a runtime of the given flavour (the task runs on
/// the runtime's own thread with the current-thread flavour).
fn channel_throughput(multi_thread: bool) -> f64 {
    let total = sends();
    let seen = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let t0 = Instant::now();
    let consumer = async move {
        while let Some(m) = rx.recv().await {
            if count(&m, &seen) == total {
                break;
            }
        }
    };
    let sender = std::thread::spawn(move || {
        for i in 0..total {
            let _ = tx.send(if EMPTY { Msg::new() } else { msg![i] });
        }
    });
    if multi_thread {
        runtime().block_on(async { tokio::spawn(consumer).await.unwrap() });
    } else {
        current_thread().block_on(consumer);
    }
    let rate = total as f64 / t0.elapsed().as_secs_f64();
    sender.join().unwrap();
    rate
}

type Dispatch = Arc<dyn Fn(Msg) + Send + Sync>;

/// The same through the barest dispatch: the sender appends to a
/// `Mutex<Vec<Msg>>`, a consumer thread that never sleeps takes the whole
/// batch and calls an `Arc<dyn Fn>` per message (what a dispatcher does,
/// without ports, wake-ups or anything else).
fn bare_dispatch_throughput() -> f64 {
    let total = sends();
    let seen = Arc::new(AtomicU64::new(0));
    let queue = Arc::new(parking_lot::Mutex::new(Vec::<Msg>::with_capacity(1024)));
    let s = seen.clone();
    let callback: Dispatch = Arc::new(move |m| {
        count(&m, &s);
    });
    let t0 = Instant::now();
    let q = queue.clone();
    let consumer = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(1024);
        while seen.load(Ordering::Relaxed) < total {
            std::mem::swap(&mut *q.lock(), &mut batch);
            if batch.is_empty() {
                std::hint::spin_loop();
            }
            for m in batch.drain(..) {
                callback(m);
            }
        }
    });
    for i in 0..total {
        queue.lock().push(if EMPTY { Msg::new() } else { msg![i] });
    }
    consumer.join().unwrap();
    total as f64 / t0.elapsed().as_secs_f64()
}

/// Mean round trip between two ports of one node (one dispatcher thread):
/// the ping carries the pinger's port ID, the pong a counter.
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

/// The same between two tasks over two tokio unbounded channels on a
/// current-thread runtime (both ends on one thread, as both ports are on
/// the dispatcher's), with the same messages: the ping carries a string as
/// long as the pinger's port ID.
fn channel_ping_pong(id_len: usize) -> Duration {
    current_thread().block_on(async {
        let (to_b, mut b_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
        let (to_a, mut a_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
        let b = tokio::spawn(async move {
            while let Some(m) = b_rx.recv().await {
                std::hint::black_box(m.str(0).unwrap());
                if to_a.send(msg![m.at(1).unwrap().clone()]).is_err() {
                    break;
                }
            }
        });
        // A task too, not the future the runtime blocks on (which tokio
        // wakes through the thread's parker, a slower path).
        let a = tokio::spawn(async move {
            let me = "x".repeat(id_len);
            let t0 = Instant::now();
            to_b.send(msg![&me, 0]).unwrap();
            while let Some(m) = a_rx.recv().await {
                let i: u64 = m.get(0).unwrap();
                if i == round_trips() {
                    break;
                }
                to_b.send(msg![&me, i + 1]).unwrap();
            }
            t0.elapsed() / round_trips() as u32
        });
        let d = a.await.unwrap();
        b.await.unwrap();
        d
    })
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

/// The runtime the node runs on: two workers, what `#[tokio::main]` gives
/// on two CPUs.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// One figure beside its baseline: `baseline` says what the baseline is.
fn line(what: &str, ours: String, baseline: &str, base: String, ratio: f64, target: &str) {
    println!("{what:<30} aemp {ours:>9}   {baseline:<34} {base:>9}   ratio {ratio:>5.2}   target {target}");
}

/// A line for a rate, in millions per second.
fn rate_line(what: &str, ours: f64, baseline: &str, base: f64, target: &str) {
    let m = |r: f64| format!("{:.2} M", r / 1e6);
    line(what, m(ours), baseline, m(base), ours / base, target);
}

/// Whether the figure named `what` was asked for: `cargo bench -p aemp
/// --bench core -- snd` runs only the figures whose name contains `snd`.
fn wanted(what: &str) -> bool {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    filter.is_empty() || filter.iter().any(|f| what.contains(f.as_str()))
}

fn main() {
    mode::banner();
    let rt = runtime();
    // Ports first, on a fresh node, so that the resident-memory reading is
    // not blurred by what the other benchmarks allocated and freed.
    if wanted("ports") {
        let fresh = rt.block_on(Node::builder().id("bench-ports").build()).unwrap();
        let base = baseline_creation();
        let (ours, bytes) = rt.block_on(port_creation(&fresh));
        rate_line("port creation (ports/s)", ours, "HashMap filled through a channel", base, ">= 5 M/s");
        println!(
            "{:<30} aemp {:>7.0} B   (1 M idle ports: {:.0} MB of heap)   target <= 64 B",
            "memory per idle port", bytes, bytes
        );
        rt.block_on(fresh.shutdown());
    }
    let node = rt.block_on(Node::builder().id("bench").build()).unwrap();
    // Best of five runs each, taking turns, to damp this machine's noise.
    const RUNS: usize = 5;
    if wanted("snd") {
        let (mut ours, mut ct, mut mt, mut bare) = (0f64, 0f64, 0f64, 0f64);
        for _ in 0..RUNS {
            ours = ours.max(rt.block_on(snd_throughput(&node)));
            ct = ct.max(channel_throughput(false));
            mt = mt.max(channel_throughput(true));
            bare = bare.max(bare_dispatch_throughput());
        }
        let (flavour, base) = if ct >= mt { ("1 thread", ct) } else { ("2 workers", mt) };
        rate_line(
            "snd -> callback (msgs/s)",
            ours,
            &format!("tokio unbounded, thread->task, {flavour}"),
            base,
            ">= 1.0x",
        );
        rate_line("snd -> callback (msgs/s)", ours, "Mutex<Vec> + Arc<dyn Fn>, spinning", bare, "(reported)");
    }
    if wanted("ping") {
        let id_len = node.port().as_str().len();
        let (mut ours, mut base) = (Duration::MAX, Duration::MAX);
        for _ in 0..RUNS {
            ours = ours.min(rt.block_on(ping_pong(&node)));
            base = base.min(channel_ping_pong(id_len));
        }
        line(
            "local ping-pong (round trip)",
            format!("{ours:?}"),
            "two tokio tasks, current-thread",
            format!("{base:?}"),
            ours.as_secs_f64() / base.as_secs_f64(),
            "<= 1.2x",
        );
    }
    rt.block_on(node.shutdown());
}

//! The lab's node program (`aemp-lab node ...`, run inside a host
//! namespace): an aemp node with a short link timeout that runs sequenced
//! streams to the receiver ports of the other nodes, takes part in the
//! supervision scenario, and appends every event to its history file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aemp::{msg, GroupEvent, MonGuard, NetConfig, Node, NodeEvent, PortId, Reason};
use aemp_supervisor::{ChildSpec, Intensity, Restart, Strategy, Supervisor, SupervisorSpec};

use crate::history::{Event, Writer};

/// The group every node's receiver port joins.
pub const RX_GROUP: &str = "lab-rx";
/// The group of the nodes that may host the supervised child.
pub const WORKER_GROUP: &str = "lab-workers";
/// The supervised child's init function.
pub const CHILD_INIT: &str = "AempLab::child";

/// The node program's settings (its command line).
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// The node ID.
    #[arg(long)]
    pub id: String,
    /// The listener address (`ip:port`).
    #[arg(long)]
    pub bind: String,
    /// The seed (`name:port`).
    #[arg(long)]
    pub seed: String,
    /// The shared secret.
    #[arg(long)]
    pub secret: String,
    /// The history file to append to.
    #[arg(long)]
    pub history: PathBuf,
    /// Milliseconds between the messages of a stream.
    #[arg(long, default_value_t = 20)]
    pub interval_ms: u64,
    /// `monitor_timeout`, seconds.
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
    /// `network_latency`, seconds.
    #[arg(long, default_value_t = 0.5)]
    pub latency: f64,
    /// Run the supervisor (its child goes to a node of the worker group).
    #[arg(long)]
    pub supervisor: bool,
    /// Offer this node for the supervised child.
    #[arg(long)]
    pub worker: bool,
}

type Log = Arc<Mutex<Writer>>;

fn log(w: &Log, ev: Event) {
    w.lock().unwrap_or_else(|e| e.into_inner()).log(ev);
}

struct Stream {
    id: String,
    rx: PortId,
    seq: u64,
    fired: Arc<AtomicBool>,
    _guard: MonGuard,
}

/// Runs the node until SIGTERM: then it stops sending, waits for what is
/// in flight, logs `exit` and returns.
///
/// # Errors
/// When the node cannot start.
pub async fn run(a: NodeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let w: Log = Arc::new(Mutex::new(Writer::open(&a.history, &a.id)?));
    log(&w, Event::Start { pid: std::process::id() });
    let mut cfg = NetConfig::default();
    cfg.binds = vec![a.bind.clone()];
    cfg.seeds = vec![a.seed.clone()];
    cfg.secret = Some(a.secret.clone());
    cfg.monitor_timeout = a.timeout;
    cfg.network_latency = a.latency;
    cfg.connect_interval = 0.5;
    cfg.connect_timeout = 5.0;
    cfg.handshake_timeout = 2.0;
    aemp_supervisor::install();
    let child_log = w.clone();
    aemp::register_init(CHILD_INIT, move |ctx, _args| {
        let me = ctx.self_id();
        log(&child_log, Event::ChildStart { port: me.to_string() });
        ctx.rcv(&me, |_ctx, _m| {});
        let l = child_log.clone();
        let p = me.to_string();
        ctx.mon(&me, move |r: Reason| log(&l, Event::ChildStop { port: p, reason: r.to_string() })).keep();
    });
    let node = Node::builder().id(a.id.clone()).net_config(cfg).build().await?;

    let l = w.clone();
    node.mon_nodes(move |ev| match ev {
        NodeEvent::Up(n) => log(&l, Event::LinkUp { peer: n.to_string() }),
        NodeEvent::Down(n, r) => log(&l, Event::LinkDown { peer: n.to_string(), reason: r.to_string() }),
    });
    let l = w.clone();
    node.mon_group(RX_GROUP, move |ev| match ev {
        GroupEvent::Joined(p) => log(&l, Event::GroupJoin { port: p.to_string() }),
        GroupEvent::Left(p) => log(&l, Event::GroupLeave { port: p.to_string() }),
    });
    let l = w.clone();
    let rx = node.port_with(move |_ctx, m| -> aemp::Result<()> {
        let stream: String = m.get(1)?;
        let seq: u64 = m.get(2)?;
        log(&l, Event::Recv { stream, seq });
        Ok(())
    });
    log(&w, Event::Registered { port: rx.to_string() });
    node.register_group(&rx, RX_GROUP)?;
    if a.worker {
        let p = node.port_with(|_ctx, _m| {});
        node.register_group(&p, WORKER_GROUP)?;
    }
    if a.supervisor {
        let n = node.clone();
        tokio::spawn(async move { supervise(n).await });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (node, w, stop) = (node.clone(), w.clone(), stop.clone());
        let interval = Duration::from_millis(a.interval_ms.max(1));
        tokio::spawn(async move { send_loop(node, w, stop, interval).await })
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    stop.store(true, Ordering::SeqCst);
    let _ = sender.await;
    log(&w, Event::StopSending);
    // What was sent is on the wire or in a queue: give it time to arrive
    // (or for its monitor to fire).
    tokio::time::sleep(Duration::from_secs_f64(a.timeout * 0.7)).await;
    log(&w, Event::Exit);
    Ok(())
}

async fn send_loop(node: Node, w: Log, stop: Arc<AtomicBool>, interval: Duration) {
    let me = node.id().clone();
    let sender = node.port_with(|_ctx, _m| {});
    let mut streams: HashMap<PortId, Stream> = HashMap::new();
    let mut last_start: HashMap<PortId, Instant> = HashMap::new();
    let mut n = 0u64;
    let pid = std::process::id();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::SeqCst) {
        tick.tick().await;
        streams.retain(|_, s| !s.fired.load(Ordering::SeqCst));
        for rx in node.find_group(RX_GROUP) {
            if rx.node() == me || streams.contains_key(&rx) {
                continue;
            }
            if last_start.get(&rx).is_some_and(|t| t.elapsed() < Duration::from_millis(300)) {
                continue;
            }
            n += 1;
            let id = format!("{me}.{pid}.{n}");
            log(
                &w,
                Event::StreamStart {
                    stream: id.clone(),
                    sender: sender.to_string(),
                    receiver: rx.to_string(),
                },
            );
            let fired = Arc::new(AtomicBool::new(false));
            let (f, l, sid) = (fired.clone(), w.clone(), id.clone());
            let guard = node.mon(&rx, move |r: Reason| {
                f.store(true, Ordering::SeqCst);
                log(&l, Event::MonFired { stream: sid, reason: r.to_string() });
            });
            last_start.insert(rx.clone(), Instant::now());
            streams.insert(rx.clone(), Stream { id, rx, seq: 0, fired, _guard: guard });
        }
        for s in streams.values_mut() {
            if s.fired.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst) {
                continue;
            }
            s.seq += 1;
            // Logged once `snd` returned: the monitor can fire on another
            // thread between the check above and the send, and a message
            // sent after its monitor fired may go over the next link. A
            // `sent` before `mon_fired` is then one sent before it fired.
            node.snd(&s.rx, msg!["d", s.id.as_str(), s.seq]);
            log(&w, Event::Sent { stream: s.id.clone(), seq: s.seq });
        }
    }
}

/// Keeps a supervisor running on this node with one child placed on a
/// node of the worker group.
async fn supervise(node: Node) {
    loop {
        while node.find_group(WORKER_GROUP).is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(Intensity::new(10_000, Duration::from_secs(1)))
            .child(ChildSpec::new("child", CHILD_INIT).in_group(WORKER_GROUP).restart(Restart::Permanent));
        match Supervisor::start(&node, spec).await {
            Ok(sup) => {
                let r = sup.dead().await;
                tracing::warn!("lab supervisor died: {r}");
            }
            Err(e) => tracing::warn!("lab supervisor did not start: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

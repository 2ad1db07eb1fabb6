//! How a dynamic (simple-one-for-one) supervisor scales with its number of
//! children, beside a plain node doing the same work without a supervisor:
//! `cargo bench -p aemp-supervisor --bench dynamic`.
//!
//! One batch, for `n` children: add them one by one (each request waits
//! for its answer), make every child exit at once and wait until each has
//! been started again, then remove them one by one. The batch runs with
//! `n` and with `10 n` children; a supervisor whose per-child costs do not
//! grow with its size takes about 10 times as long for the second. The
//! baseline is a plain port that does the same with a hash map: spawns
//! each child on request, starts it again when its monitor fires, and
//! stops it on request, waiting for its exit.
//!
//! Prints the time of each batch and the ratio, for both.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aemp::{msg, MonAction, Node, PortId, Reason};
use aemp_supervisor::{ChildSpec, Intensity, Strategy, Supervisor, SupervisorSpec};
use tokio::sync::mpsc;

#[path = "../../aemp/benches/support/mode.rs"]
mod mode;

/// The child: stops on `["shutdown"]`, ignores everything else.
fn register() {
    aemp::register_init("Bench::child", |ctx, _args| {
        let me = ctx.self_id();
        ctx.rcv(&me, |_ctx, _m| {});
        ctx.rcv_tag(&me, "shutdown", |ctx, _m| ctx.kil_self(Reason::normal()));
    });
}

/// A port that counts the messages tagged `tag` it gets on a channel.
fn counter(node: &Node, tag: &'static str) -> (PortId, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let port = node.port_with(move |_ctx, m| {
        if m.tag() == Some(tag) {
            let _ = tx.send(());
        }
    });
    (port, rx)
}

async fn wait_for(rx: &mut mpsc::UnboundedReceiver<()>, n: usize) {
    for _ in 0..n {
        rx.recv().await.expect("counter closed");
    }
}

/// The batch on a simple-one-for-one supervisor.
async fn supervisor_batch(node: &Node, n: usize) -> Duration {
    let (observer, mut started) = counter(node, "started");
    let template = ChildSpec::new("c", "Bench::child");
    let spec = SupervisorSpec::new(Strategy::SimpleOneForOne)
        .child(template)
        .intensity(Intensity::new(u32::MAX, Duration::from_secs(1)))
        .observer(&observer);
    let sup = Supervisor::start(node, spec).await.expect("supervisor starts");
    let t0 = Instant::now();
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        children.push(sup.start_dynamic(msg![]).await.expect("child starts"));
    }
    wait_for(&mut started, n).await;
    for (_, port) in &children {
        node.kil(port, msg!["bench", "exit"]);
    }
    wait_for(&mut started, n).await;
    for (id, _) in &children {
        sup.remove_child(id.as_str()).await.expect("child removed");
    }
    let t = t0.elapsed();
    sup.stop().await.expect("supervisor stops");
    node.kil(&observer, Reason::normal());
    t
}

/// The same batch on a plain port: a map from number to child port.
async fn plain_batch(node: &Node, n: usize) -> Duration {
    let (observer, mut started) = counter(node, "started");
    let mut kids: HashMap<u64, PortId> = HashMap::new();
    let mut removing: HashMap<u64, PortId> = HashMap::new();
    let mut next = 0u64;
    let start = move |ctx: &mut aemp::Ctx<'_>, i: u64| -> PortId {
        let me = ctx.self_id();
        let node_id = ctx.node_id().clone();
        let p = ctx.spawn(&node_id, "Bench::child", msg![]);
        ctx.mon(&p, MonAction::send(&me, msg!["exit", i])).keep();
        ctx.snd(&observer, msg!["started"]);
        p
    };
    let manager = node.port_with(move |ctx, m| -> aemp::Result<()> {
        match m.tag() {
            Some("add") => {
                next += 1;
                let p = start(ctx, next);
                kids.insert(next, p.clone());
                ctx.snd(&m.port(1)?, msg![next, p]);
            }
            Some("exit") => {
                let i: u64 = m.get(1)?;
                if let Some(reply) = removing.remove(&i) {
                    ctx.snd(&reply, msg!["ok"]);
                } else if kids.contains_key(&i) {
                    let p = start(ctx, i);
                    kids.insert(i, p);
                }
            }
            Some("remove") => {
                let i: u64 = m.get(1)?;
                if let Some(p) = kids.remove(&i) {
                    ctx.snd(&p, msg!["shutdown"]);
                    removing.insert(i, m.port(2)?);
                }
            }
            _ => {}
        }
        Ok(())
    });
    let patience = Duration::from_secs(60);
    let t0 = Instant::now();
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        let r = node.call(&manager, msg!["add"], patience).await.expect("child starts");
        children.push((r.get::<u64>(0).expect("number"), r.port(1).expect("port")));
    }
    wait_for(&mut started, n).await;
    for (_, port) in &children {
        node.kil(port, msg!["bench", "exit"]);
    }
    wait_for(&mut started, n).await;
    for (i, _) in &children {
        node.call(&manager, msg!["remove", *i], patience).await.expect("child removed");
    }
    let t = t0.elapsed();
    node.kil(&manager, Reason::normal());
    t
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    mode::banner();
    register();
    let small = mode::count(1_000, 100);
    let large = small * 10;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let node = Node::builder().id("bench-sup").build().await.unwrap();
        // Warm up, then take the best of three runs of each, alternating.
        supervisor_batch(&node, small).await;
        plain_batch(&node, small).await;
        let mut best = [Duration::MAX; 4];
        for _ in 0..3 {
            best[0] = best[0].min(supervisor_batch(&node, small).await);
            best[1] = best[1].min(supervisor_batch(&node, large).await);
            best[2] = best[2].min(plain_batch(&node, small).await);
            best[3] = best[3].min(plain_batch(&node, large).await);
        }
        println!("batch: add n children, make each exit once and wait for its restart, remove them");
        println!(
            "{:<22} {:>12} {:>12} {:>14}",
            "",
            format!("n = {small}"),
            format!("n = {large}"),
            "ratio (ideal 10)"
        );
        for (name, a, b) in
            [("dynamic supervisor", best[0], best[1]), ("plain node (baseline)", best[2], best[3])]
        {
            println!("{name:<22} {:>12} {:>12} {:>14.1}", ms(a), ms(b), b.as_secs_f64() / a.as_secs_f64());
        }
        node.shutdown().await;
    });
}

//! A supervised service spread over three nodes that survives the loss of
//! one: a supervisor on node A keeps two services running on the nodes of
//! the group "workers" (B and C). Node B is shut down; the service that ran
//! there is restarted on C, and answers again.
//!
//! Run it with `cargo run --example supervised` (`RUST_LOG=aemp_supervisor=info`
//! shows the supervisor's tracing events too).

// ANCHOR: imports
use std::collections::BTreeSet;
use std::time::Duration;

use aemp::{msg, GroupEvent, NetConfig, Node, NodeId, PortId};
use aemp_supervisor::{ChildSpec, EventKind, EventStream, Intensity, Strategy, Supervisor, SupervisorSpec};
// ANCHOR_END: imports

fn net(seeds: Vec<String>) -> NetConfig {
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.seeds = seeds;
    c.secret = Some("supervised example".into());
    c
}

// ANCHOR: service_init
/// The service: answers `["hello", reply]` with its name and node, and
/// stops at once when its supervisor asks (without `on_shutdown`, it would
/// be killed after the 5 s shutdown timeout).
fn service_init(ctx: &mut aemp::Ctx<'_>, args: aemp::Msg) -> aemp::Result<()> {
    let name: String = args.get(0)?;
    let me = ctx.self_id();
    let node = ctx.node_id().clone();
    ctx.rcv_tag(&me, "hello", move |ctx, m| {
        ctx.snd(&m.port(0)?, msg!["hello from", &name, &node]);
        Ok(())
    });
    aemp_supervisor::on_shutdown(ctx, |_ctx| {});
    Ok(())
}
// ANCHOR_END: service_init

/// A worker node: it can run the service and says so by joining "workers".
async fn worker_node(id: &str, seed: &str) -> aemp::Result<Node> {
    let node = Node::builder().id(id).net_config(net(vec![seed.to_owned()])).build().await?;
    // ANCHOR: worker_node
    aemp_supervisor::install();
    node.register("Example::service", service_init);
    let presence = node.port_with(|_ctx, _m| {});
    node.register_group(&presence, "workers")?;
    // ANCHOR_END: worker_node
    Ok(node)
}

/// Prints the supervisor's children.
async fn show(sup: &Supervisor) -> Result<(), aemp_supervisor::Error> {
    // ANCHOR: which_children
    for child in sup.which_children().await? {
        println!(
            "   {:<8} {:<9} restarts {} ({} recent)  on {}",
            child.id,
            child.status.as_str(),
            child.total_restarts,
            child.recent_restarts,
            child.node.as_ref().map_or("-", NodeId::as_str)
        );
    }
    // ANCHOR_END: which_children
    Ok(())
}

/// Waits until `node` knows `count` nodes in the group "workers".
async fn wait_for_workers(node: &Node, count: usize) -> Result<BTreeSet<NodeId>, Box<dyn std::error::Error>> {
    let (tx, mut joined) = tokio::sync::mpsc::unbounded_channel();
    let watch = node.mon_group("workers", move |ev| {
        if let GroupEvent::Joined(p) = ev {
            let _ = tx.send(p.node());
        }
    });
    let mut workers = BTreeSet::new();
    while workers.len() < count {
        workers.insert(joined.recv().await.ok_or("group monitor closed")?);
    }
    node.unmon_group("workers", watch);
    Ok(workers)
}

async fn hello(node: &Node, port: &PortId) -> aemp::Result<String> {
    let m = node.call(port, msg!["hello"], Duration::from_secs(10)).await?;
    Ok(format!("{} {} on {}", m.str(0)?, m.str(1)?, m.str(2)?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .try_init();
    let step = |s: &str| println!("\n== {s}");

    step("three nodes on 127.0.0.1: A runs the supervisor, B and C the services");
    let a = Node::builder().id("sup-a").net_config(net(vec![])).build().await?;
    let seed = a.listen_addrs()[0].clone();
    // The workers come up one after the other, each once A knows the one
    // before, so that the group lists them in the same order on every run.
    let b = worker_node("sup-b", &seed).await?;
    wait_for_workers(&a, 1).await?;
    let c = worker_node("sup-c", &seed).await?;
    let workers = wait_for_workers(&a, 2).await?;
    println!("   group \"workers\": {workers:?}");

    step("starting the supervisor on A");
    // ANCHOR: start_supervisor
    let mut events = EventStream::new(&a);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(5, Duration::from_secs(30)))
        .observer(events.port())
        .child(ChildSpec::new("greeter", "Example::service").args(msg!["greeter"]).in_group("workers"))
        .child(ChildSpec::new("counter", "Example::service").args(msg!["counter"]).in_group("workers"));
    let sup = Supervisor::start(&a, spec).await?;
    // ANCHOR_END: start_supervisor
    show(&sup).await?;
    let kids = sup.which_children().await?;
    let greeter = kids[0].port.clone().ok_or("greeter has no port")?;
    println!("   {}", hello(&a, &greeter).await?);

    // ANCHOR: lose_node
    step("losing the node that runs the greeter");
    let lost = greeter.node();
    let victim = if lost == *b.id() { &b } else { &c };
    victim.shutdown().await;
    println!("   {lost} is down");
    // The supervisor's events: the two first starts, then the greeter lost
    // with its node, the restart decision, and its start on a surviving node.
    let moved = loop {
        let e = events.next().await.ok_or("observer closed")?;
        println!("   event {}: {:?}", e.seq, e.kind);
        if let EventKind::Started { id, port, .. } = e.kind {
            if id == "greeter" && port != greeter {
                break port;
            }
        }
    };
    // ANCHOR_END: lose_node
    println!("   {}", hello(&a, &moved).await?);
    show(&sup).await?;
    assert_ne!(moved.node(), lost, "the greeter moved to a surviving node");

    step("done: stopping the supervisor and the nodes");
    sup.stop().await?;
    for n in [&a, &b, &c] {
        if !n.is_shut_down() {
            n.shutdown().await;
        }
    }
    Ok(())
}

//! The main demonstration: three nodes on 127.0.0.1 in one process, messages
//! flowing between them, a port spawned on another node by name, and a
//! crash noticed by a monitor.
//!
//! Run it with `cargo run --example demo`.

// ANCHOR: imports
use std::time::Duration;

use aemp::{msg, NetConfig, Node, Reason};
use aemp_supervisor::{ChildSpec, EventKind, EventStream, Strategy, Supervisor, SupervisorSpec};
// ANCHOR_END: imports

fn net(seeds: Vec<String>) -> NetConfig {
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.seeds = seeds;
    c.secret = Some("demo secret".into());
    c
}

// ANCHOR: counter_init
/// An init function: a counter that answers `["add", n, reply]` with the
/// new total, and crashes on `["crash"]`.
fn counter_init(ctx: &mut aemp::Ctx<'_>, args: aemp::Msg) -> aemp::Result<()> {
    let mut total: i64 = args.get(0)?;
    let me = ctx.self_id();
    ctx.rcv(&me, move |ctx, m| match m.tag() {
        Some("add") => {
            total += m.get::<i64>(1)?;
            ctx.snd(&m.port(2)?, msg!["total", total]);
            Ok(())
        }
        Some("crash") => Err(aemp::Error::die("asked to crash")),
        _ => Ok(()),
    });
    Ok(())
}
// ANCHOR_END: counter_init

#[tokio::main]
async fn main() -> aemp::Result<()> {
    let step = |s: &str| println!("\n== {s}");
    step("starting three nodes on 127.0.0.1: a seed, a worker and a client");
    let seed = Node::builder().id("demo-seed").net_config(net(vec![])).build().await?;
    let seed_addr = seed.listen_addrs()[0].clone();
    let worker = Node::builder().id("demo-worker").net_config(net(vec![seed_addr.clone()])).build().await?;
    worker.register("Demo::counter", counter_init);
    // Lets supervisors on other nodes start children here.
    aemp_supervisor::install();
    let client = Node::builder().id("demo-client").net_config(net(vec![seed_addr.clone()])).build().await?;
    println!("   seed   {} listens on {seed_addr}", seed.id());
    println!("   worker {} listens on {}", worker.id(), worker.listen_addrs()[0]);
    println!("   client {} listens on {}", client.id(), client.listen_addrs()[0]);

    step("a message from the client to a port on the seed, and the answer");
    let echo = seed.port_with(|ctx, m| {
        println!("   seed got {m}");
        ctx.snd(&m.port(0)?, msg!["pong", m.at(1)?.clone()]);
        Ok(())
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let inbox = client.port_with(move |_ctx, m| {
        let _ = tx.send(m);
    });
    client.snd(&echo, msg![&inbox, "hello from the client"]);
    println!("   client got {}", rx.recv().await.expect("reply"));

    step("spawning a counter on the worker node by init-function name");
    let counter = client.spawn(worker.id(), "Demo::counter", msg![10]);
    println!("   spawn returned {counter} at once");
    for n in [1, 2, 3] {
        client.snd(&counter, msg!["add", n, &inbox]);
        println!("   client got {}", rx.recv().await.expect("total"));
    }

    step("monitoring the counter, then making it crash");
    let (dtx, drx) = tokio::sync::oneshot::channel();
    client
        .mon(&counter, move |reason: Reason| {
            let _ = dtx.send(reason);
        })
        .keep();
    client.snd(&counter, msg!["crash"]);
    let reason =
        tokio::time::timeout(Duration::from_secs(10), drx).await.expect("monitor fired").expect("reason");
    println!("   the client's monitor fired: the counter died with {reason}");

    step("a supervisor on the client keeps a counter running on the worker");
    let mut events = EventStream::new(&client);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .observer(events.port())
        .child(ChildSpec::new("counter", "Demo::counter").args(msg![100]).on_node(worker.id()));
    let sup = Supervisor::start(&client, spec).await.map_err(aemp::Error::die)?;
    let first =
        sup.which_children().await.map_err(aemp::Error::die)?[0].port.clone().expect("a running child");
    println!("   supervised counter {first}");
    client.snd(&first, msg!["crash"]);
    let restarted = loop {
        let e = events.next().await.expect("supervisor event");
        println!("   supervisor event {}: {:?}", e.seq, e.kind);
        if let EventKind::Started { port, .. } = e.kind {
            if port != first {
                break port;
            }
        }
    };
    client.snd(&restarted, msg!["add", 1, &inbox]);
    println!("   the restarted counter answers {}", rx.recv().await.expect("total"));
    let kids = sup.which_children().await.map_err(aemp::Error::die)?;
    println!("   child {} has been restarted {} time(s)", kids[0].id, kids[0].total_restarts);
    sup.stop().await.map_err(aemp::Error::die)?;

    step("losing a whole node: monitors on its ports fire with transport_error");
    let survivor = client.spawn(worker.id(), "Demo::counter", msg![0]);
    client.snd(&survivor, msg!["add", 1, &inbox]);
    rx.recv().await.expect("total");
    let dead = client.dead(&survivor);
    worker.shutdown().await;
    println!("   worker shut down; the client saw: {}", dead.await);

    step("done");
    client.shutdown().await;
    seed.shutdown().await;
    Ok(())
}

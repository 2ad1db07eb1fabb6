//! Two nodes on 127.0.0.1, a port on each, bouncing a counter.
//!
//! `cargo run --example ping_pong`

// ANCHOR: imports
use aemp::{msg, NetConfig, Node};
// ANCHOR_END: imports

#[tokio::main]
async fn main() -> aemp::Result<()> {
    // ANCHOR: nodes
    let mut cfg = NetConfig::default();
    cfg.binds = vec!["127.0.0.1:0".into()];
    cfg.secret = Some("ping-pong".into());
    let a = Node::builder().id("ping").net_config(cfg.clone()).build().await?;
    cfg.seeds = a.listen_addrs();
    let b = Node::builder().id("pong").net_config(cfg).build().await?;
    // ANCHOR_END: nodes

    // ANCHOR: ports
    // On node b: answer every ["ping", n, reply] with ["pong", n].
    let ponger = b
        .port_builder()
        .on("ping", |ctx, m| {
            let n: u32 = m.get(0)?;
            ctx.snd(&m.port(1)?, msg!["pong", n]);
            Ok(())
        })
        .create();
    // On node a: count the pongs and stop after five.
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let mut done_tx = Some(done_tx);
    let pinger = a
        .port_builder()
        .on("pong", move |ctx, m| {
            let n: u32 = m.get(0)?;
            println!("{} got pong {n}", ctx.node_id());
            if n == 5 {
                if let Some(tx) = done_tx.take() {
                    let _ = tx.send(());
                }
            } else {
                let me = ctx.self_id();
                ctx.snd(&ponger, msg!["ping", n + 1, me]);
            }
            Ok(())
        })
        .create();
    // ANCHOR_END: ports
    a.snd(&pinger, msg!["pong", 0]);
    done.await.expect("five round trips");
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

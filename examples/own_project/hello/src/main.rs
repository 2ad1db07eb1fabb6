use std::time::Duration;

use aemp::{msg, Node};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> aemp::Result<()> {
    // aemp reports through `tracing`: without a subscriber, refused
    // connections and dying ports are silent. RUST_LOG=aemp=debug shows more.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let node = Node::builder().build().await?;
    // A port that answers ["add", a, b, reply] with ["sum", a + b].
    let adder = node
        .port_builder()
        .on("add", |ctx, m| {
            let (a, b): (i64, i64) = (m.get(0)?, m.get(1)?);
            let reply = m.port(2)?;
            ctx.snd(&reply, msg!["sum", a + b]);
            Ok(())
        })
        .create();
    // `call` appends a reply port to the message and waits for the answer.
    let answer = node.call(&adder, msg!["add", 2, 3], Duration::from_secs(5)).await?;
    println!("2 + 3 = {}", answer.get::<i64>(1)?);
    node.shutdown().await;
    Ok(())
}

//! A counter service and its client, as two processes:
//!
//! ```text
//! cargo run -- server          # listens on 127.0.0.1:4040 until Ctrl-C
//! cargo run -- client 5        # adds 5 to the count and prints the total
//! ```
//!
//! An address can follow: `cargo run -- server 127.0.0.1:5000`, then
//! `cargo run -- client 5 127.0.0.1:5000`.

use std::process::ExitCode;
use std::time::Duration;

use aemp::{msg, Node, NodeId};
use tracing_subscriber::EnvFilter;

/// Both sides must know it: a connection with another secret is refused.
const SECRET: &str = "counter example secret";
/// The server's node ID: the client names the counter port with it.
const SERVER: &str = "counter-server";
const ADDR: &str = "127.0.0.1:4040";

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &'static str| args.get(i).map_or(default, String::as_str);
    let result = match (arg(0, ""), arg(1, "1").parse::<i64>()) {
        ("server", _) => server(arg(1, ADDR)).await,
        ("client", Ok(n)) => client(n, arg(2, ADDR)).await,
        _ => {
            eprintln!("usage: counter server [ADDR] | counter client [NUMBER [ADDR]]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("counter: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A node that listens on `addr`, with a port of the fixed name `counter`
/// that adds what it is sent and answers with the total.
async fn server(addr: &str) -> aemp::Result<()> {
    let node = Node::builder().id(SERVER).bind(addr).secret(SECRET).build().await?;
    let mut total = 0;
    // ["add", n, reply] -> ["total", total]
    node.named_port("counter", move |ctx, m| {
        total += m.get::<i64>(1)?;
        ctx.snd(&m.port(2)?, msg!["total", total]);
        Ok(())
    })?;
    println!("counter server listening on {}", node.listen_addrs().join(" "));
    tokio::signal::ctrl_c().await?;
    node.shutdown().await;
    Ok(())
}

/// A node without a listener that reaches the server at `addr` (its seed)
/// and adds `n`.
async fn client(n: i64, addr: &str) -> aemp::Result<()> {
    let node = Node::builder().seed(addr).secret(SECRET).build().await?;
    let server = NodeId::new(SERVER)?;
    // The seed's connection comes up in the background: wait for it.
    let patience = Duration::from_secs(10);
    if tokio::time::timeout(patience, node.wait_up(&server)).await.is_err() {
        node.shutdown().await;
        return Err(aemp::Error::Timeout(format!("no connection to {SERVER} at {addr}")));
    }
    let answer = node.call(&server.port("counter")?, msg!["add", n], patience).await;
    node.shutdown().await;
    println!("added {n}: the total is {}", answer?.get::<i64>(1)?);
    Ok(())
}

//! The chat server as a program: the typed server of the book's last
//! chapters, registered in the Global group `eg_chat_server`, with the
//! session init function that clients spawn on its node.
//!
//! ```text
//! cargo run --example chat_server -- --id chat-server --bind 127.0.0.1:4040 --secret SECRET
//! cargo run --example chat_server -- --profile chat-server
//! ```
//!
//! Without `--bind` (and without `--profile`) it listens on
//! 127.0.0.1:4040. It runs until Ctrl-C.

// ANCHOR: imports
use std::process::ExitCode;

use aemp_examples::chat::{self, typed};
use aemp_examples::cli::{init_logging, NodeArgs};
// ANCHOR_END: imports

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let mut args = match NodeArgs::parse(std::env::args().skip(1)) {
        Ok(a) if a.nick.is_none() => a,
        Ok(_) => return fail("the server takes no --nick"),
        Err(e) => return fail(&e),
    };
    if args.profile.is_none() && args.binds.is_empty() {
        args.binds.push("127.0.0.1:4040".into());
    }
    // ANCHOR: main
    let node = match args.start_node("chat-server").await {
        Ok(node) => node,
        Err(e) => return fail(&e.to_string()),
    };
    let server = match typed::start(&node) {
        Ok(server) => server,
        Err(e) => return fail(&e.to_string()),
    };
    println!("chat server {server} in group {}, listening on {}", chat::GROUP, node.listen_addrs().join(" "));
    let _ = tokio::signal::ctrl_c().await;
    node.shutdown().await;
    // ANCHOR_END: main
    ExitCode::SUCCESS
}

fn fail(text: &str) -> ExitCode {
    eprintln!("chat_server: {text}");
    ExitCode::FAILURE
}

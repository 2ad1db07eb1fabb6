//! The chat client as a program: reads lines from stdin and says them in
//! the chat; prints what happens there. Finds the server in the Global
//! group `eg_chat_server`, spawns its session on the server's node, and
//! when the server goes away, looks for it again.
//!
//! ```text
//! cargo run --example chat_client -- --nick bob --seed 127.0.0.1:4040 --secret SECRET
//! ```
//!
//! Without `--seed` it uses 127.0.0.1:4040; without `--id` the node gets
//! a random `anon/...` ID; without `--bind` it is a private node (it can
//! reach public nodes, which is all a chat client needs). End of input
//! (Ctrl-D) leaves the chat.

// ANCHOR: imports
use std::process::ExitCode;
use std::time::Duration;

use aemp::{Node, TypedPortId};
use aemp_examples::chat::{self, typed};
use aemp_examples::cli::{init_logging, NodeArgs};
use tokio::sync::mpsc::UnboundedReceiver;
// ANCHOR_END: imports

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let mut args = match NodeArgs::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    if args.profile.is_none() && args.seeds.is_empty() {
        args.seeds.push("127.0.0.1:4040".into());
    }
    let nick = args.nick.clone().unwrap_or_else(|| "guest".into());
    let node = match args.start_node("anon/").await {
        Ok(node) => node,
        Err(e) => return fail(&e.to_string()),
    };
    let result = chat(&node, &nick, stdin_lines()).await;
    node.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

// ANCHOR: reconnect
/// Joins the chat, says every input line, and joins again whenever the
/// connection to the server is lost. Returns at the end of the input.
async fn chat(node: &Node, nick: &str, mut input: UnboundedReceiver<String>) -> aemp::Result<()> {
    loop {
        println!("* looking for a server in group {}", chat::GROUP);
        let found = match chat::find_server(node, Duration::from_secs(3600)).await {
            Ok(port) => port,
            Err(_) => continue,
        };
        let server = TypedPortId::new_unchecked(found);
        let conn = typed::connect(node, &server, nick, |line| println!("{line}"))?;
        println!("* joined {server} as {nick}");
        // The client's port dies (through its link to the session) when
        // the session dies abnormally, also when the server's node is lost.
        let mut lost = std::pin::pin!(node.dead(conn.me.id()));
        loop {
            tokio::select! {
                line = input.recv() => match line {
                    Some(text) if text.trim().is_empty() => {}
                    Some(text) => conn.say(node, &text)?,
                    None => {
                        conn.leave(node).await;
                        return Ok(());
                    }
                },
                reason = &mut lost => {
                    println!("* lost the server: {reason}");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
// ANCHOR_END: reconnect

/// The lines of stdin, read on a thread of their own.
fn stdin_lines() -> UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn fail(text: &str) -> ExitCode {
    eprintln!("chat_client: {text}");
    ExitCode::FAILURE
}

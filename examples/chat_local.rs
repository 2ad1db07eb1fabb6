//! The chat service in one process: a server node and three client nodes
//! on 127.0.0.1, a short conversation as bob sees it, a normal quit and a
//! lost node.
//!
//! `cargo run --example chat_local`

// ANCHOR: imports
use std::time::Duration;

use aemp::{msg, NetConfig, Node};
use aemp_examples::chat;
use tokio::sync::mpsc::UnboundedReceiver;
// ANCHOR_END: imports

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

// ANCHOR: net
/// The network settings of every node here: listen on any free port of
/// 127.0.0.1, contact the given seeds, one shared secret.
fn net(seeds: &[String]) -> NetConfig {
    let mut net = NetConfig::default();
    net.binds = vec!["127.0.0.1:0".into()];
    net.seeds = seeds.to_vec();
    net.secret = Some("chat-local secret".into());
    net
}
// ANCHOR_END: net

/// Waits for the next line on bob's screen and checks how it starts.
async fn expect(screen: &mut UnboundedReceiver<String>, start: &str) -> Res {
    let line = tokio::time::timeout(Duration::from_secs(20), screen.recv())
        .await
        .map_err(|_| format!("waited in vain for {start:?}"))?
        .ok_or("bob's port is gone")?;
    println!("  bob sees: {line}");
    if !line.starts_with(start) {
        return Err(format!("expected {start:?}, got {line:?}").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Res {
    aemp_examples::cli::init_logging();
    let patience = Duration::from_secs(20);

    // ANCHOR: start
    // The server's node is the seed of the others.
    let hub = Node::builder().id("chat-hub").net_config(net(&[])).build().await?;
    let server = chat::server::start(&hub)?;
    let seed = hub.listen_addrs();
    println!("server {server} listens on {seed:?}");

    // bob: a node of his own, a client port whose lines go to `screen`.
    let bob_node = Node::builder().id("bob-node").net_config(net(&seed)).build().await?;
    let (to_screen, mut screen) = tokio::sync::mpsc::unbounded_channel();
    let bob = chat::client::client_port(&bob_node, move |line| {
        let _ = to_screen.send(line);
    });
    let found = chat::find_server(&bob_node, patience).await?;
    bob_node.snd(&found, msg!["join", &bob, "bob"]);
    // ANCHOR_END: start
    expect(&mut screen, "bob joins").await?;

    // ANCHOR: talk
    let alice_node = Node::builder().id("alice-node").net_config(net(&seed)).build().await?;
    let alice = chat::client::client_port(&alice_node, |_line| {});
    let found = chat::find_server(&alice_node, patience).await?;
    alice_node.snd(&found, msg!["join", &alice, "alice"]);
    alice_node.snd(&found, msg!["privmsg", "alice", "hi bob"]);
    // ANCHOR_END: talk
    expect(&mut screen, "alice joins").await?;
    expect(&mut screen, "<alice> hi bob").await?;
    bob_node.snd(&found, msg!["privmsg", "bob", "hello alice"]);
    expect(&mut screen, "<bob> hello alice").await?;

    println!("alice leaves: her port is killed normally");
    chat::leave(&alice_node, &alice, &found).await;
    expect(&mut screen, "alice quits (normal)").await?;

    println!("carol joins, then her node goes away");
    let carol_node = Node::builder().id("carol-node").net_config(net(&seed)).build().await?;
    let carol = chat::client::client_port(&carol_node, |_line| {});
    carol_node.snd(&chat::find_server(&carol_node, patience).await?, msg!["join", &carol, "carol"]);
    expect(&mut screen, "carol joins").await?;
    carol_node.shutdown().await;
    expect(&mut screen, "carol quits ([\"transport_error\"").await?;

    for node in [alice_node, bob_node, hub] {
        node.shutdown().await;
    }
    Ok(())
}

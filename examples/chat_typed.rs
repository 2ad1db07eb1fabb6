//! The typed chat spread over nodes, in one process: the server's node
//! runs the typed server and the session init function; alice and bob
//! each spawn a session there; carol, an untyped client, joins the same
//! server with plain messages.
//!
//! `cargo run --example chat_typed`

// ANCHOR: imports
use std::time::Duration;

use aemp::{msg, NetConfig, Node, TypedPortId};
use aemp_examples::chat::{self, typed};
use tokio::sync::mpsc::UnboundedReceiver;
// ANCHOR_END: imports

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn net(seeds: &[String]) -> NetConfig {
    let mut net = NetConfig::default();
    net.binds = vec!["127.0.0.1:0".into()];
    net.seeds = seeds.to_vec();
    net.secret = Some("chat-typed secret".into());
    net
}

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
    let hub = Node::builder().id("typed-hub").net_config(net(&[])).build().await?;
    typed::start(&hub)?;
    let seed = hub.listen_addrs();

    // ANCHOR: bob
    let bob_node = Node::builder().id("bob-node").net_config(net(&seed)).build().await?;
    let server = TypedPortId::new_unchecked(chat::find_server(&bob_node, patience).await?);
    let (to_screen, mut screen) = tokio::sync::mpsc::unbounded_channel();
    let bob = typed::connect(&bob_node, &server, "bob", move |line| {
        let _ = to_screen.send(line);
    })?;
    println!("bob's session {} runs on {}", bob.session, bob.session.id().node());
    // ANCHOR_END: bob
    expect(&mut screen, "bob joins").await?;

    let alice_node = Node::builder().id("alice-node").net_config(net(&seed)).build().await?;
    let alice = typed::connect(&alice_node, &server, "alice", |_line| {})?;
    expect(&mut screen, "alice joins").await?;
    alice.say(&alice_node, "hello from a session")?;
    expect(&mut screen, "<alice> hello from a session").await?;

    println!("carol joins without types or a session: the wire is the same");
    let carol_node = Node::builder().id("carol-node").net_config(net(&seed)).build().await?;
    let carol = chat::client::client_port(&carol_node, |_line| {});
    carol_node.snd(server.id(), msg!["join", &carol, "carol"]);
    carol_node.snd(server.id(), msg!["privmsg", "carol", "hi all"]);
    expect(&mut screen, "carol joins").await?;
    expect(&mut screen, "<carol> hi all").await?;

    println!("alice leaves: her session is killed remotely, then her port");
    alice.leave(&alice_node).await;
    expect(&mut screen, "alice quits (normal)").await?;
    println!("carol's node goes away");
    carol_node.shutdown().await;
    expect(&mut screen, "carol quits ([\"transport_error\"").await?;

    bob.leave(&bob_node).await;
    for node in [alice_node, bob_node, hub] {
        node.shutdown().await;
    }
    Ok(())
}

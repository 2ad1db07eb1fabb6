//! Snippets of the chapter "Nodes, profiles, seeds and the aemp tool".

// ANCHOR: imports
use std::time::Duration;

use aemp::config::Config;
use aemp::{msg, Node, NodeBuilder};
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    builders().await?;
    from_config().await
}

// ANCHOR: builders
/// Three kinds of node.
///
/// # Errors
/// When a node cannot start or does not answer.
pub async fn builders() -> aemp::Result<()> {
    // No network at all: a random ID, ports that talk among themselves.
    let alone = Node::builder().build().await?;
    assert!(alone.id().as_str().starts_with("anon/"));

    // A public node: a fixed ID, a listener, a secret.
    let public = Node::builder().id("db-1").bind("127.0.0.1:0").secret("s3cret").build().await?;
    let addr = public.listen_addrs()[0].clone();

    // A private node: no listener, only a seed. It reaches public nodes
    // (over connections it opens), which is all a client needs.
    let private = Node::builder().seed(addr).secret("s3cret").build().await?;
    let patience = Duration::from_secs(10);
    let who = private.call(&public.id().node_port(), msg!["info"], patience).await?;
    assert_eq!(who, msg!["db-1"]);
    let up = private.call(&public.id().node_port(), msg!["up_nodes"], patience).await?;
    assert_eq!(up, msg![private.id()]);

    for node in [private, public, alone] {
        node.shutdown().await;
    }
    Ok(())
}
// ANCHOR_END: builders

// ANCHOR: config
/// Starting a node from a profile of a configuration file.
///
/// # Errors
/// When the text does not parse or the node cannot start.
pub async fn from_config() -> aemp::Result<()> {
    let text = r#"{
        "version": 1,
        "secret": "the chat's secret",      # shared by every profile
        "profile": {
            "chat-server": { "binds": ["127.0.0.1:0"] },
            "chat-client": { "nodeid": "anon/", "seeds": ["127.0.0.1:4040"] },
        },
    }"#;
    let config = Config::parse(text, "example")?;
    let server = config.profile("chat-server")?;
    assert_eq!(server.nodeid, "chat-server"); // the profile's name
    assert_eq!(server.secret.as_deref(), Some("the chat's secret"));
    let client = config.profile("chat-client")?;
    assert!(client.binds.is_empty()); // anon/: a private node

    // What `aemp::initialise_node("chat-server")` does with the file.
    let node = NodeBuilder::from_profile(&server)?.build().await?;
    assert_eq!(node.id().as_str(), "chat-server");
    node.shutdown().await;
    Ok(())
}
// ANCHOR_END: config

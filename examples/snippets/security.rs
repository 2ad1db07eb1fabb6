//! Snippets of the chapter "Security".

// ANCHOR: imports
use std::time::Duration;

use aemp::{msg, NetConfig, Node, Reason};
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    wrong_secret().await?;
    tls().await?;
    ca().await?;
    refusals().await
}

/// A node that gives up on connections after one second.
fn impatient(mut net: NetConfig) -> NetConfig {
    net.connect_timeout = 1.0;
    net
}

// ANCHOR: wrong_secret
/// A node with the wrong secret never gets a connection.
///
/// # Errors
/// When a node cannot start.
pub async fn wrong_secret() -> aemp::Result<()> {
    let vault = Node::builder().id("vault").bind("127.0.0.1:0").secret("right").build().await?;
    let mut net = NetConfig::default();
    net.secret = Some("wrong".into());
    let intruder = Node::builder().net_config(impatient(net)).build().await?;
    intruder.add_node_addr(vault.id(), vault.listen_addrs()[0].clone());
    // Monitoring the node port makes the node try to connect.
    let reason = intruder.dead(&vault.id().node_port()).await;
    assert_eq!(reason, Reason::transport_error("vault", "unable to connect"));
    intruder.shutdown().await;
    vault.shutdown().await;
    Ok(())
}
// ANCHOR_END: wrong_secret

// ANCHOR: tls
/// TLS with one self-signed certificate shared by the nodes of a network.
///
/// # Errors
/// When a node cannot start or does not answer.
pub async fn tls() -> aemp::Result<()> {
    // Key and certificate in one PEM, as `aemp gencert` stores them.
    let pem = aemp::generate_cert_pem("chat network")?;
    let a = Node::builder().id("tls-a").bind("127.0.0.1:0").cert_pem(pem.clone()).build().await?;
    let addr = a.listen_addrs()[0].clone();
    // No secret needed: the certificate authenticates.
    let b = Node::builder().id("tls-b").seed(addr.clone()).cert_pem(pem).build().await?;
    let who = b.call(&a.id().node_port(), msg!["info"], Duration::from_secs(10)).await?;
    assert_eq!(who, msg!["tls-a"]);

    // A node with a certificate of its own is not trusted.
    let mut net = NetConfig::default();
    net.cert_pem = Some(aemp::generate_cert_pem("stranger")?);
    let stranger = Node::builder().net_config(impatient(net)).build().await?;
    stranger.add_node_addr(a.id(), addr);
    assert_eq!(stranger.dead(&a.id().node_port()).await.kind(), Some("transport_error"));
    for node in [stranger, b, a] {
        node.shutdown().await;
    }
    Ok(())
}
// ANCHOR_END: tls

// ANCHOR: ca
/// TLS with a certificate authority: each node has its own key.
///
/// # Errors
/// When a certificate cannot be made or a node does not answer.
pub async fn ca() -> aemp::Result<()> {
    // Made once, kept offline: the CA's key signs the nodes' certificates.
    let ca = aemp::generate_cert_pem("chat CA")?;
    // Each PEM: the node's key, its certificate, then the CA certificate
    // (which is also what the node trusts). No CA key in it.
    let pem_a = aemp::tls::generate_signed_by(&ca, "node-a")?;
    let pem_b = aemp::tls::generate_signed_by(&ca, "node-b")?;
    let a = Node::builder().id("ca-a").bind("127.0.0.1:0").cert_pem(pem_a).build().await?;
    let b = Node::builder().id("ca-b").seed(a.listen_addrs()[0].clone()).cert_pem(pem_b).build().await?;
    let who = b.call(&a.id().node_port(), msg!["info"], Duration::from_secs(10)).await?;
    assert_eq!(who, msg!["ca-a"]);
    b.shutdown().await;
    a.shutdown().await;
    Ok(())
}
// ANCHOR_END: ca

// ANCHOR: refusals
/// What an authenticated peer still may not do.
///
/// # Errors
/// When the nodes do not answer.
pub async fn refusals() -> aemp::Result<()> {
    let (a, b) = super::two_nodes("strict-a", "strict-b").await?;
    let node_port = a.id().node_port();
    let patience = Duration::from_secs(10);
    // Perl code sent for `eval` is never run; the caller gets an answer
    // shaped like a failed eval, so it is not left waiting.
    let answer = b.call(&node_port, msg!["eval", "unlink glob '*'"], patience).await?;
    assert_eq!(answer, msg!["eval is not supported by aemp"]);
    // Only init functions registered on `a` can be spawned there.
    let port = b.spawn(a.id(), "Some::init", msg![]);
    assert_eq!(b.dead(&port).await.kind(), Some("die"));
    // The node port itself cannot be killed.
    b.kil(&node_port, "go away");
    assert_eq!(b.call(&node_port, msg!["info"], patience).await?, msg!["strict-a"]);
    b.shutdown().await;
    a.shutdown().await;
    Ok(())
}
// ANCHOR_END: refusals

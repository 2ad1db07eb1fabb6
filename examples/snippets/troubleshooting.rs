//! Snippets of the chapter "Troubleshooting".

// ANCHOR: imports
use aemp::{msg, NetConfig, Node, PortId, Reason, Value};
// ANCHOR_END: imports

/// Runs the chapter's snippets.
///
/// # Errors
/// When a snippet fails.
pub async fn run() -> aemp::Result<()> {
    let node = Node::builder().build().await?;
    let reason = no_such_port(&node).await?;
    println!("{}", explain(&reason));
    let reason = overflow(&node).await;
    println!("{}", explain(&reason));
    node.shutdown().await;
    let reason = unreachable().await?;
    println!("{}", explain(&reason));
    assert_eq!(explain(&Reason::normal()), "killed normally");
    Ok(())
}

// ANCHOR: explain
/// Says in words what a monitor's reason means.
pub fn explain(reason: &Reason) -> String {
    let text = |i: usize| match reason.values().get(i) {
        Some(Value::Str(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    match (reason.kind(), reason.values().len()) {
        (None, 0) => "killed normally".into(),
        (Some("die"), _) => format!("a callback or init function failed: {}", text(1)),
        (Some("transport_error"), 2) => "the connection to the node was replaced".into(),
        (Some("transport_error"), _) => format!("lost touch with node {}: {}", text(1), text(2)),
        (Some("no_such_port"), _) => "the port did not exist (any more) when monitored".into(),
        (Some("overflow"), _) => format!("an async port's inbox was full: {}", text(1)),
        _ => format!("killed with the reason {reason}"),
    }
}
// ANCHOR_END: explain

// ANCHOR: no_such_port
/// Monitoring a port that is not there fires at once.
///
/// # Errors
/// When the port ID does not parse.
pub async fn no_such_port(node: &Node) -> aemp::Result<Reason> {
    let never: PortId = format!("{}#never-was", node.id()).parse()?;
    let reason = node.dead(&never).await;
    assert_eq!(reason, Reason::no_such_port());
    Ok(reason)
}
// ANCHOR_END: no_such_port

// ANCHOR: overflow
/// An async port whose task does not keep up dies of overflow.
pub async fn overflow(node: &Node) -> Reason {
    let slow = node.spawn_async(2, |_inbox| async {
        std::future::pending::<()>().await;
        Ok::<(), aemp::Error>(())
    });
    let death = node.dead(&slow);
    for n in 0..3 {
        node.snd(&slow, msg!["job", n]);
    }
    let reason = death.await;
    assert_eq!(reason.kind(), Some("overflow"));
    reason
}
// ANCHOR_END: overflow

// ANCHOR: unreachable
/// Messages to a node that cannot be reached: after `connect_timeout`,
/// monitors fire with `unable to connect`.
///
/// # Errors
/// When the node cannot start.
pub async fn unreachable() -> aemp::Result<Reason> {
    let mut net = NetConfig::default();
    net.secret = Some("s".into());
    net.connect_timeout = 0.5;
    let node = Node::builder().net_config(net).build().await?;
    // Nobody told this node where "nowhere" listens.
    let port: PortId = "nowhere#p1".parse()?;
    let death = node.dead(&port);
    node.snd(&port, msg!["hello?"]);
    let reason = death.await;
    assert_eq!(
        reason,
        Reason::transport_error("nowhere", "unable to connect (last attempt: no known address)")
    );
    node.shutdown().await;
    Ok(reason)
}
// ANCHOR_END: unreachable

//! Helpers shared by the supervisor tests: test init functions, collectors,
//! and waits that fail the test after a generous patience (a guard against
//! hangs, never a synchronisation).

#![allow(dead_code)]

use std::sync::Once;
use std::time::Duration;

use aemp::{msg, Msg, NetConfig, Node, PortId, Reason};
use aemp_supervisor::{ChildSpec, Event, EventKind, EventStream};
use tokio::sync::mpsc;

pub const PATIENCE: Duration = Duration::from_secs(30);

/// Registers the test init functions for every node of the process.
///
/// `Test::worker [collector, name]` reports `["up", name, port, node]` from
/// its init and `["down", name]` when asked to shut down, and answers
/// `crash` (panics), `ping reply` (`["pong", name, node]`).
/// `Test::stubborn [collector, name]` reports `["up", name, port]`, and
/// `["asked", name]` when asked to shut down, which it ignores.
/// `Test::graceful [collector, name]` reports `["up", name, port]` and
/// stops through [`aemp_supervisor::on_shutdown`], whose cleanup reports
/// `["cleanup", name]`.
/// `Test::deferred [collector, name]` defers its start, reports `["up",
/// name, port]`, and confirms its start when it gets `["ready"]`.
/// `Test::failing` fails in its init.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        aemp_supervisor::install();
        aemp::register_init("Test::worker", |ctx, args| -> aemp::Result<()> {
            let collector = args.port(0)?;
            let name: String = args.get(1)?;
            let me = ctx.self_id();
            let node = ctx.node_id().clone();
            ctx.snd(&collector, msg!["up", &name, &me, &node]);
            ctx.rcv(&me, move |ctx, m| -> aemp::Result<()> {
                match m.tag() {
                    Some("crash") => panic!("crash requested"),
                    Some("ping") => ctx.snd(&m.port(1)?, msg!["pong", &name, &node]),
                    Some("shutdown") => {
                        ctx.snd(&collector, msg!["down", &name]);
                        ctx.kil_self(Reason::normal());
                    }
                    _ => {}
                }
                Ok(())
            });
            Ok(())
        });
        aemp::register_init("Test::stubborn", |ctx, args| -> aemp::Result<()> {
            let collector = args.port(0)?;
            let name: String = args.get(1)?;
            let me = ctx.self_id();
            ctx.snd(&collector, msg!["up", &name, &me]);
            ctx.rcv(&me, move |ctx, m| {
                if m.tag() == Some("shutdown") {
                    ctx.snd(&collector, msg!["asked", &name]);
                }
            });
            Ok(())
        });
        aemp::register_init("Test::graceful", |ctx, args| -> aemp::Result<()> {
            let collector = args.port(0)?;
            let name: String = args.get(1)?;
            let me = ctx.self_id();
            ctx.snd(&collector, msg!["up", &name, &me]);
            ctx.rcv(&me, |_ctx, _m| {});
            aemp_supervisor::on_shutdown(ctx, move |ctx| ctx.snd(&collector, msg!["cleanup", &name]));
            Ok(())
        });
        aemp::register_init("Test::deferred", |ctx, args| -> aemp::Result<()> {
            let collector = args.port(0)?;
            let name: String = args.get(1)?;
            let me = ctx.self_id();
            let mut token = Some(aemp_supervisor::defer_start(ctx));
            ctx.snd(&collector, msg!["up", &name, &me]);
            ctx.rcv(&me, move |_ctx, m| {
                if m.tag() == Some("ready") {
                    if let Some(t) = token.take() {
                        t.confirm();
                    }
                }
            });
            Ok(())
        });
        aemp::register_init("Test::failing", |_ctx, _args| Err(aemp::Error::die("cannot start")));
    });
}

/// A `Test::worker` child named `id` reporting to `collector`.
pub fn worker(id: &str, collector: &PortId) -> ChildSpec {
    ChildSpec::new(id, "Test::worker").args(msg![collector, id])
}

/// Installs a tracing subscriber once (RUST_LOG controls it).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A node without network.
pub async fn node() -> Node {
    register();
    init_tracing();
    Node::builder().build().await.expect("node starts")
}

/// Network settings: 127.0.0.1, port 0, a shared secret.
pub fn net(seeds: Vec<String>) -> NetConfig {
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.seeds = seeds;
    c.secret = Some("supervisor-test-secret".into());
    c.connect_timeout = 3.0;
    c
}

/// A node on 127.0.0.1 with the given seeds.
pub async fn net_node(id: &str, seeds: Vec<String>) -> Node {
    register();
    init_tracing();
    Node::builder().id(id).net_config(net(seeds)).build().await.expect("node starts")
}

/// A port that forwards every message to a channel.
pub fn collector(node: &Node) -> (PortId, mpsc::UnboundedReceiver<Msg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let port = node.port_with(move |_ctx, m| {
        let _ = tx.send(m);
    });
    (port, rx)
}

/// The next message of a collector.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Msg>) -> Msg {
    tokio::time::timeout(PATIENCE, rx.recv()).await.expect("timed out waiting for a message").expect("closed")
}

/// The next message whose tag is `tag` and whose element `at` is `value`,
/// skipping others.
pub async fn until(rx: &mut mpsc::UnboundedReceiver<Msg>, tag: &str, at: usize, value: &str) -> Msg {
    loop {
        let m = next(rx).await;
        if m.tag() == Some(tag) && m.str(at).ok() == Some(value) {
            return m;
        }
    }
}

/// The next `["up", name, port, ...]` report; returns the port.
pub async fn up(rx: &mut mpsc::UnboundedReceiver<Msg>, name: &str) -> PortId {
    let m = next(rx).await;
    assert_eq!((m.tag(), m.str(1).ok()), (Some("up"), Some(name)), "expected {name} up, got {m}");
    m.port(2).unwrap()
}

/// The next `["down", name]` report.
pub async fn down(rx: &mut mpsc::UnboundedReceiver<Msg>, name: &str) {
    let m = next(rx).await;
    assert_eq!(m, msg!["down", name], "expected {name} down");
}

/// Waits for a port's death.
pub async fn death(node: &Node, port: &PortId) -> Reason {
    tokio::time::timeout(PATIENCE, node.dead(port)).await.expect("timed out waiting for a death")
}

/// Waits for a future.
pub async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(PATIENCE, f).await.expect("timed out")
}

/// The next event of a stream.
pub async fn event(events: &mut EventStream) -> Event {
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("timed out waiting for an event")
        .expect("closed")
}

/// The next event that `pick` selects, skipping others.
pub async fn event_where(events: &mut EventStream, pick: impl Fn(&EventKind) -> bool) -> Event {
    loop {
        let e = event(events).await;
        if pick(&e.kind) {
            return e;
        }
    }
}

/// The next event of this kind (`"started"`, ...) about child `id`.
pub async fn event_of(events: &mut EventStream, kind: &str, id: &str) -> EventKind {
    event_where(events, |k| k.as_str() == kind && k.child() == id).await.kind
}

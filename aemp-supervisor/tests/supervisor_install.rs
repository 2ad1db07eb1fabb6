//! A node whose process never called `aemp_supervisor::install()` cannot
//! host children; what goes wrong says exactly what to do. The host runs
//! in a separate process (this test binary, started again to run the
//! ignored helper test below), since `install` registers for a whole
//! process. This file must not call `install` itself outside the tests
//! that start supervisors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aemp::{NetConfig, Node, NodeId};
use aemp_supervisor::{ChildSpec, Error, Strategy, Supervisor, SupervisorSpec};

const HELPER: &str = "AEMP_SUPERVISOR_TEST_HOST";
const SECRET: &str = "install-test-secret";
const PATIENCE: Duration = Duration::from_secs(30);

fn net() -> NetConfig {
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some(SECRET.into());
    c
}

/// The host: a node that registers a child's init function but never calls
/// `install`. Prints `addr ADDRESS`, runs until its standard input closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper process for a_node_whose_process_did_not_call_install_says_what_to_do"]
async fn helper_host_without_install() {
    let Ok(id) = std::env::var(HELPER) else { return };
    let node = Node::builder().id(id).net_config(net()).build().await.unwrap();
    node.register("Host::worker", |ctx, _args| {
        let me = ctx.self_id();
        ctx.rcv(&me, |_ctx, _m| {});
    });
    println!("addr {}", node.listen_addrs()[0]);
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await.unwrap();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_process_did_not_call_install_says_what_to_do() {
    let host = NodeId::new("install-host").unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_host_without_install", "--ignored", "--nocapture"])
        .env(HELPER, host.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the helper's output to its end (it must not find its pipe closed).
    let out = helper.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reader = std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("addr ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.to_owned());
                }
            }
        }
    });
    let addr = tokio::time::timeout(PATIENCE, rx).await.unwrap().expect("the helper prints its address");
    let node = Node::builder().id("install-sup").net_config(net()).build().await.unwrap();
    node.add_node_addr(&host, addr);

    let spec =
        SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new("w", "Host::worker").on_node(&host));
    match tokio::time::timeout(PATIENCE, Supervisor::start(&node, spec)).await.unwrap() {
        Err(Error::StartFailed { id, reason }) => {
            assert_eq!(id, "w");
            let text = reason.to_string();
            assert!(
                text.contains("node install-host") && text.contains("call aemp_supervisor::install()"),
                "{text}"
            );
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
    let started = Supervisor::start_on(&node, &host, SupervisorSpec::new(Strategy::OneForOne));
    match tokio::time::timeout(PATIENCE, started).await.unwrap() {
        Err(e @ Error::NotInstalled(_)) => {
            assert!(matches!(&e, Error::NotInstalled(n) if *n == host));
            assert!(e.to_string().contains("call aemp_supervisor::install()"), "{e}");
        }
        other => panic!("expected NotInstalled, got {other:?}"),
    }
    drop(helper.stdin.take());
    assert!(helper.wait().unwrap().success());
    reader.join().unwrap();
    node.shutdown().await;
}

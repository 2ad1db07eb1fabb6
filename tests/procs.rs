//! Nodes in separate OS processes talking over TCP on 127.0.0.1 (P14, P28,
//! P29, P33, P35). The other processes run `test-node` (tests/bin).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use aemp::{msg, NetConfig, Node, NodeId, Reason};
use aemp_tests::{collector, death, next, within};

const SECRET: &str = "procs-secret";

struct Proc {
    child: Child,
    addr: String,
}

impl Proc {
    fn start(id: &str, extra: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_test-node"))
            .arg(id)
            .arg(SECRET)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("test-node starts");
        let mut addr = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut addr).unwrap();
        Proc { child, addr: addr.trim().to_owned() }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn local(id: &str, cert: Option<String>) -> Node {
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some(SECRET.into());
    c.cert_pem = cert;
    c.connect_timeout = 5.0;
    Node::builder().id(id).net_config(c).build().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p14_p29_ping_pong_and_remote_spawn_with_another_process() {
    let p = Proc::start("proc-echo", &[]);
    let n = local("proc-local", None).await;
    let other = NodeId::new("proc-echo").unwrap();
    n.add_node_addr(&other, p.addr.clone());
    let (c, mut rx) = collector(&n);
    for i in 0..50 {
        n.snd(&other.port("echo").unwrap(), msg![&c, i]);
        assert_eq!(next(&mut rx).await, msg![i]);
    }
    let s = n.spawn(&other, "Test::echo", msg![]);
    let d = n.dead(&s);
    n.snd(&s, msg![&c, "spawned"]);
    assert_eq!(next(&mut rx).await, msg!["spawned"]);
    n.kil(&s, msg!["done"]);
    assert_eq!(within(d).await, Reason::from(msg!["done"]));
    // Killing the process fires the monitors with transport_error.
    let e = other.port("echo").unwrap();
    let d = n.dead(&e);
    p.kill();
    let r = within(d).await;
    assert_eq!(r.kind(), Some("transport_error"), "{r}");
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p35_a_private_process_reaches_a_third_process_through_a_seed() {
    let seed = Proc::start("proc-seed", &[]);
    let third = Proc::start("proc-third", &["--seed", &seed.addr]);
    // The private node is this process; it knows only the seed.
    let mut c = NetConfig::default();
    c.secret = Some(SECRET.into());
    c.seeds = vec![seed.addr.clone()];
    c.connect_timeout = 10.0;
    let n = Node::builder().id("proc-private").net_config(c).build().await.unwrap();
    let (col, mut rx) = collector(&n);
    n.snd(&NodeId::new("proc-third").unwrap().port("echo").unwrap(), msg![&col, "through the seed"]);
    assert_eq!(next(&mut rx).await, msg!["through the seed"]);
    n.shutdown().await;
    drop(third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p33_another_process_with_a_wrong_secret_is_refused() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-node"))
        .args(["proc-wrong", "not the secret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut addr).unwrap();
    let n = local("proc-right", None).await;
    let other = NodeId::new("proc-wrong").unwrap();
    n.add_node_addr(&other, addr.trim());
    let r = death(&n, &other.port("echo").unwrap()).await;
    assert_eq!(r, Reason::transport_error("proc-wrong", "unable to connect"));
    let _ = child.kill();
    let _ = child.wait();
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p33_tls_between_processes_with_a_shared_certificate() {
    let pem = aemp::generate_cert_pem("AnyEvent::MP").unwrap();
    let file = std::env::temp_dir().join(format!("aemp-procs-{}.pem", std::process::id()));
    std::fs::write(&file, &pem).unwrap();
    let p = Proc::start("proc-tls", &["--cert-file", file.to_str().unwrap()]);
    let n = local("proc-tls-local", Some(pem)).await;
    let other = NodeId::new("proc-tls").unwrap();
    n.add_node_addr(&other, p.addr.clone());
    let (c, mut rx) = collector(&n);
    n.snd(&other.port("echo").unwrap(), msg![&c, "over tls"]);
    assert_eq!(next(&mut rx).await, msg!["over tls"]);
    n.shutdown().await;
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_dials_itself_refuses_the_link_and_keeps_serving() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-node"))
        .args(["proc-self", SECRET, "--dial-self"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut addr = String::new();
    out.read_line(&mut addr).unwrap();
    // Its monitor on a port of the "other" node at its own address fires.
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        l
    });
    let line = within(line).await.unwrap();
    assert_eq!(line.trim(), r#"["transport_error","ghost","unable to connect"]"#);
    // And it still serves others.
    let n = local("proc-self-client", None).await;
    let other = NodeId::new("proc-self").unwrap();
    n.add_node_addr(&other, addr.trim());
    let (c, mut rx) = collector(&n);
    n.snd(&other.port("echo").unwrap(), msg![&c, "still here"]);
    assert_eq!(next(&mut rx).await, msg!["still here"]);
    n.shutdown().await;
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_refuses_a_version_mismatch_and_a_duplicate_of_a_live_link() {
    let p = Proc::start("proc-strict", &[]);
    let n = local("proc-linked", None).await;
    let other = NodeId::new("proc-strict").unwrap();
    n.add_node_addr(&other, p.addr.clone());
    let (c, mut rx) = collector(&n);
    n.snd(&other.port("echo").unwrap(), msg![&c, "linked"]);
    assert_eq!(next(&mut rx).await, msg!["linked"]);
    // Protocol version 1: closed without a word.
    let mut raw = aemp_tests::Raw::connect(&p.addr).await;
    let nonce = aemp::wire::greeting::new_nonce();
    raw.send(format!("aemp;1;proc-future;hmac_blake3_256;json\n{nonce}\n").as_bytes()).await.unwrap();
    assert!(raw.closed().await, "a version-1 greeting was not refused");
    // A second connection claiming the ID of the node already linked (as a
    // 0.9 node would make it): refused, and the real link carries on.
    let mut raw = aemp_tests::Raw::connect(&p.addr).await;
    let _ = raw.greet("proc-linked", "json", "").await;
    assert!(raw.closed().await, "a duplicate of a live link was not refused");
    for i in 0..3 {
        n.snd(&other.port("echo").unwrap(), msg![&c, i]);
        assert_eq!(next(&mut rx).await, msg![i]);
    }
    n.shutdown().await;
}

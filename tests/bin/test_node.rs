//! A node in its own process for the cross-process tests: it prints its
//! listen address on stdout, then serves until its stdin closes.
//!
//! `test-node ID SECRET [--seed ADDR] [--private] [--cert-file FILE] [--dial-self]`
//!
//! It has a port named `echo` (answers `[reply, data...]` with `[data...]`),
//! and the init function `Test::echo` that makes such a port.
//!
//! With `--dial-self` it is told that a node `ghost` listens at its own
//! address, monitors a port there, and prints the monitor's reason on a
//! second stdout line (dialling itself must fail, and nothing else).

use std::io::BufRead;

use aemp::{msg, NetConfig, Node};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (id, secret) = (args[1].clone(), args[2].clone());
    let mut cfg = NetConfig::default();
    cfg.secret = Some(secret);
    cfg.binds = vec!["127.0.0.1:0".into()];
    let mut dial_self = false;
    let mut i = 3;
    while i < args.len() {
        match args[i].as_str() {
            "--seed" => {
                cfg.seeds.push(args[i + 1].clone());
                i += 1;
            }
            "--private" => cfg.binds.clear(),
            "--dial-self" => {
                dial_self = true;
                cfg.connect_timeout = 2.0;
            }
            "--cert-file" => {
                cfg.cert_pem = Some(std::fs::read_to_string(&args[i + 1]).expect("cert file"));
                i += 1;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 1;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let node = Node::builder().id(id).net_config(cfg).build().await.expect("node starts");
    let echo = |ctx: &mut aemp::Ctx<'_>, m: aemp::Msg| -> aemp::Result<()> {
        let reply = m.port(0)?;
        ctx.snd(&reply, m.rest(1));
        Ok(())
    };
    node.named_port("echo", echo).expect("echo port");
    node.register("Test::echo", move |ctx, _args| {
        let me = ctx.self_id();
        ctx.rcv(&me, echo);
    });
    let addr = node.listen_addrs().first().cloned().unwrap_or_else(|| "private".into());
    println!("{addr}");
    if dial_self {
        let ghost = aemp::NodeId::new("ghost").expect("a node ID");
        node.add_node_addr(&ghost, addr.clone());
        let reason = node.dead(&ghost.port("x").expect("a port ID")).await;
        println!("{reason}");
    }
    let _ = msg![];
    tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        let _ = std::io::stdin().lock().read_line(&mut s);
    })
    .await
    .unwrap();
    node.shutdown().await;
}

//! An echo service, reachable from aemp and AnyEvent::MP nodes alike.
//!
//! `cargo run --example echo_server -- [--id ID] [--bind IP:PORT] [--seed HOST:PORT]... [--secret S]`
//!
//! - The port named `echo` answers `["ping", reply, data...]` with
//!   `["pong", data...]` to `reply`, kills itself on `["quit", reason...]`
//!   with that reason, and echoes any other `[tag, reply, data...]` as
//!   `[tag, data...]` to `reply`.
//! - A second port with a generated name does the same and is registered in
//!   the Global group `echo`.
//! - The init function `echo::init` (argument: a reply port) spawns such a
//!   port and sends `["spawned", its port ID]` to the reply port.

use aemp::{msg, Ctx, Msg, NetConfig, Node, Reason, Value};

// ANCHOR: echo
/// The echo behaviour, as a callback for any port.
fn echo(ctx: &mut Ctx<'_>, m: Msg) -> aemp::Result<()> {
    let tag = m.str(0)?.to_owned();
    if tag == "quit" {
        ctx.kil_self(Reason::from(m.rest(1)));
        return Ok(());
    }
    let reply = m.port(1)?;
    let mut out = vec![Value::from(if tag == "ping" { "pong" } else { tag.as_str() })];
    out.extend(m[2..].iter().cloned());
    ctx.snd(&reply, Msg::from(out));
    Ok(())
}
// ANCHOR_END: echo

fn args() -> (String, NetConfig) {
    let mut id = "echo-server".to_owned();
    let mut cfg = NetConfig::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--id" => id = val(),
            "--bind" => cfg.binds.push(val()),
            "--seed" => cfg.seeds.push(val()),
            "--secret" => cfg.secret = Some(val()),
            other => {
                eprintln!("unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    if cfg.binds.is_empty() {
        cfg.binds.push("127.0.0.1:4040".into());
    }
    if cfg.secret.is_none() {
        cfg.secret = Some("echo".into());
    }
    (id, cfg)
}

#[tokio::main]
async fn main() -> aemp::Result<()> {
    let (id, cfg) = args();
    let node = Node::builder().id(id).net_config(cfg).build().await?;
    let named = node.named_port("echo", echo)?;
    let grouped = node.port_with(echo);
    node.register_group(&grouped, "echo")?;
    node.register("echo::init", |ctx, args| {
        let reply = args.port(0)?;
        let me = ctx.self_id();
        ctx.rcv(&me, echo);
        ctx.snd(&reply, msg!["spawned", me.clone()]);
        Ok(())
    });
    println!("{} listening on {:?}", node.id(), node.listen_addrs());
    println!("echo ports: {named} and {grouped} (group \"echo\")");
    let _ = tokio::signal::ctrl_c().await;
    node.shutdown().await;
    Ok(())
}

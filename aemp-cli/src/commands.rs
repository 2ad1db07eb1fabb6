//! The commands that talk to a running network (`snd`, `rpc`, `mon`,
//! `ping`, `nodes`, `trace`, `supervisors`) from an anonymous client node,
//! and `aemp run`; [`run`] hands the configuration commands to
//! [`configure`].

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use aemp::config::Config;
use aemp::{Msg, NetConfig, Node, NodeEvent, NodeId, PortId, Value};

use crate::args::{Cli, Cmd};
use crate::configure::configure;
use crate::events::{self, ConnEvent};
use crate::supervisors::supervisors;
use crate::{config_path, Res};

/// A message argument: a JSON literal where it parses, else a string.
fn arg_value(s: &str) -> Value {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) => Value::from(v),
        Err(_) => Value::from(s),
    }
}

/// A port ID argument.
pub(crate) fn port_arg(s: &str) -> Res<PortId> {
    PortId::new(s).map_err(|e| e.to_string())
}

/// An anonymous private node for client commands, once the node at one of
/// its seeds is known.
///
/// # Errors
/// When no seed answered: each seed's failure, as soon as every seed has
/// failed once (or the timeout is over).
async fn client(cli: &Cli) -> Res<Node> {
    let (node, seeds) = client_node(cli).await?;
    if let Err(e) = events::wait_for_seeds(&node, &seeds, timeout(cli)).await {
        node.shutdown().await;
        return Err(e);
    }
    Ok(node)
}

/// An anonymous private node for client commands, and its seeds.
async fn client_node(cli: &Cli) -> Res<(Node, Vec<String>)> {
    let path = config_path(cli);
    let cfg = Config::load(&path).map_err(|e| e.to_string())?;
    let name = cli.profile.clone().unwrap_or_else(aemp::config::hostname);
    let p = cfg.profile(&name).map_err(|e| e.to_string())?;
    let mut net = NetConfig::default();
    net.seeds = p.seeds.clone();
    net.seeds.extend(cli.seeds.iter().cloned());
    net.secret = cli.secret.clone().or(p.secret.clone());
    net.cert_pem = p.cert.clone();
    net.connect_timeout = cli.timeout;
    if net.seeds.is_empty() {
        return Err("no seeds: configure some (aemp addseed HOST:PORT) or pass --seed".into());
    }
    let seeds = net.seeds.clone();
    let node = Node::builder().id("anon/").net_config(net).build().await.map_err(|e| e.to_string())?;
    Ok((node, seeds))
}

/// How long to wait for an answer (`--timeout`).
fn timeout(cli: &Cli) -> Duration {
    Duration::from_secs_f64(cli.timeout.max(0.01))
}

/// Runs the command.
pub(crate) async fn run(cli: Cli) -> Res {
    match &cli.cmd {
        Cmd::Snd { port, args } => {
            let port = port_arg(port)?;
            let node = client(&cli).await?;
            node.snd(&port, args.iter().map(|a| arg_value(a)).collect());
            // A request to the same node behind it proves the message went out.
            let r = node.call(&port.node().node_port(), aemp::msg!["info"], timeout(&cli)).await;
            node.shutdown().await;
            r.map(|_| ()).map_err(|e| format!("message may not have been delivered: {e}"))
        }
        Cmd::Rpc { port, args, reply_at } => {
            let port = port_arg(port)?;
            let mut msg: Msg = args.iter().map(|a| arg_value(a)).collect();
            let at = reply_at.unwrap_or(msg.len());
            if at > msg.len() {
                return Err(format!("--reply-at {at}: the message has only {} elements", msg.len()));
            }
            let node = client(&cli).await?;
            let make = |reply: &PortId| {
                msg.insert(at, reply);
                msg
            };
            let r = node.call_with(&port, make, timeout(&cli)).await;
            node.shutdown().await;
            let reply = r.map_err(|e| e.to_string())?;
            println!("{}", Value::from(reply));
            Ok(())
        }
        Cmd::Mon { port } => {
            let port = port_arg(port)?;
            let node = client(&cli).await?;
            let r = mon(&node, &port, timeout(&cli), cli.json).await;
            node.shutdown().await;
            r
        }
        Cmd::Ping { node: id } => {
            let id = NodeId::new(id).map_err(|e| e.to_string())?;
            let node = client(&cli).await?;
            let t0 = Instant::now();
            let r = node.call(&id.node_port(), aemp::msg!["info"], timeout(&cli)).await;
            let rtt = t0.elapsed();
            node.shutdown().await;
            let m = r.map_err(|e| e.to_string())?;
            if cli.json {
                println!(
                    "{{\"node\":{},\"rtt_ms\":{:.3}}}",
                    m.at(0).map_err(|e| e.to_string())?,
                    rtt.as_secs_f64() * 1e3
                );
            } else {
                println!(
                    "{} answered in {:.3} ms (including connection set-up)",
                    m.str(0).unwrap_or("?"),
                    rtt.as_secs_f64() * 1e3
                );
            }
            Ok(())
        }
        Cmd::Nodes { node: target } => {
            let node = client(&cli).await?;
            let target = match target {
                Some(t) => NodeId::new(t).map_err(|e| e.to_string())?,
                // The first seed's node; `client` waited for a link, and
                // the first links are to seeds.
                None => node
                    .seed_nodes()
                    .into_iter()
                    .next()
                    .or_else(|| node.up_nodes().into_iter().next())
                    .ok_or("no seed answered")?,
            };
            let me = node.id().clone();
            let np = target.node_port();
            let known = node.call(&np, aemp::msg!["known_nodes"], timeout(&cli)).await;
            let up = node.call(&np, aemp::msg!["up_nodes"], timeout(&cli)).await;
            node.shutdown().await;
            let (known, up) = (known.map_err(|e| e.to_string())?, up.map_err(|e| e.to_string())?);
            let clean = |m: Msg| -> Vec<String> {
                let mut v: Vec<String> = m.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                v.sort();
                v.dedup();
                v
            };
            let (known, up) = (clean(known), clean(up));
            if cli.json {
                let v = serde_json::json!({ "node": target.as_str(), "known": known, "up": up, "tool": me.as_str() });
                println!("{v}");
            } else {
                println!("node {target}");
                for k in &known {
                    let state = if k == target.as_str() {
                        "self"
                    } else if up.contains(k) {
                        "up"
                    } else {
                        "known"
                    };
                    let tool = if k == me.as_str() { " (this tool's own node)" } else { "" };
                    println!("  {k:<40} {state}{tool}");
                }
            }
            Ok(())
        }
        Cmd::Trace { node: id } => {
            let id = id.as_deref().map(NodeId::new).transpose().map_err(|e| e.to_string())?;
            trace(&cli, id).await
        }
        Cmd::Supervisors { node: id } => {
            let id = NodeId::new(id).map_err(|e| e.to_string())?;
            let node = client(&cli).await?;
            let r = supervisors(&node, &id, timeout(&cli), cli.json).await;
            node.shutdown().await;
            r
        }
        Cmd::Run { profile } => {
            if let Some(c) = &cli.config {
                std::env::set_var("AEMP_CONFIG", c);
            }
            let node =
                aemp::initialise_node(profile.as_deref().unwrap_or("")).await.map_err(|e| e.to_string())?;
            tracing::info!(node = %node.id(), listen = ?node.listen_addrs(), "node running");
            eprintln!("aemp: node {} running on {:?}", node.id(), node.listen_addrs());
            wait_for_signal().await;
            tracing::info!("shutting down");
            node.shutdown().await;
            Ok(())
        }
        other => configure(&cli, None, other),
    }
}

/// `aemp mon PORT`: prints the reason `port` dies with.
///
/// # Errors
/// When the port does not exist (the reason is printed too) or its node
/// does not answer, so that the monitor may not be in place.
async fn mon(node: &Node, port: &PortId, t: Duration, json: bool) -> Res {
    let mut dead = Box::pin(node.dead(port));
    // The monitor request went out before this request, on the same link:
    // once the answer is here, the monitor is in place, or has fired with
    // `no_such_port` if there is no such port.
    node.call(&port.node().node_port(), aemp::msg!["info"], t)
        .await
        .map_err(|e| format!("cannot monitor {port}: its node does not answer: {e}"))?;
    let (reason, early) = match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut dead).poll(cx))).await {
        Poll::Ready(r) => (r, true),
        Poll::Pending => {
            eprintln!("aemp: monitoring {port}");
            (dead.await, false)
        }
    };
    if json {
        println!("{}", Value::Array(reason.0.clone()));
    } else {
        println!("{reason}");
    }
    match reason.kind() {
        Some("no_such_port") if early => Err(format!("{port} does not exist")),
        _ => Ok(()),
    }
}

/// `aemp trace [NODE]`: prints every connection event until SIGINT or
/// SIGTERM: links up (again, after a loss) and down with the reason from
/// the node's view, and aemp's log events about seeds and addresses (failed
/// and refused attempts, replaced connections).
async fn trace(cli: &Cli, target: Option<NodeId>) -> Res {
    // Watching before the node starts: its first attempts are events too.
    let mut conn = events::watch();
    let (node, _) = client_node(cli).await?;
    let (tx, mut links) = tokio::sync::mpsc::unbounded_channel();
    let watch = node.mon_nodes(move |ev| {
        let _ = tx.send(ev.clone());
    });
    if let Some(id) = target {
        let node = node.clone();
        let t = timeout(cli);
        tokio::spawn(async move {
            if let Err(e) = node.call(&id.node_port(), aemp::msg!["info"], t).await {
                println!("failed {id}: {e}");
            }
        });
    }
    let json = cli.json;
    let mut lost = HashSet::new();
    let signal = wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            Some(ev) = links.recv() => print_link(&ev, &mut lost, json),
            Some(ev) = conn.recv() => print_conn(&ev, json),
            _ = &mut signal => break,
        }
    }
    node.unmon_nodes(watch);
    node.shutdown().await;
    Ok(())
}

/// `up NODE`, `up NODE (reconnected)` or `down NODE: REASON`.
fn print_link(ev: &NodeEvent, lost: &mut HashSet<NodeId>, json: bool) {
    let (what, node, detail) = match ev {
        NodeEvent::Up(n) if lost.remove(n) => ("up", n, Some("reconnected".to_owned())),
        NodeEvent::Up(n) => ("up", n, None),
        NodeEvent::Down(n, reason) => {
            lost.insert(n.clone());
            ("down", n, Some(reason.to_string()))
        }
    };
    if json {
        println!("{}", serde_json::json!({ "event": what, "node": node.as_str(), "detail": detail }));
    } else {
        match (what, detail) {
            ("down", Some(d)) => println!("down {node}: {d}"),
            (_, Some(d)) => println!("{what} {node} ({d})"),
            (_, None) => println!("{what} {node}"),
        }
    }
}

/// `refused PLACE: TEXT` (a warning: a refusal), `failed PLACE: TEXT` (an
/// attempt that failed), `event PLACE: TEXT` (anything else).
fn print_conn(ev: &ConnEvent, json: bool) {
    let what = match ev.level {
        tracing::Level::ERROR | tracing::Level::WARN => "refused",
        tracing::Level::DEBUG | tracing::Level::TRACE => "failed",
        _ => "event",
    };
    if json {
        println!("{}", serde_json::json!({ "event": what, "place": ev.place, "detail": ev.text }));
    } else {
        println!("{what} {ev}");
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

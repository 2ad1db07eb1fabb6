//! The commands that talk to a running network (`snd`, `rpc`, `mon`,
//! `ping`, `nodes`, `trace`, `supervisors`) from an anonymous client node,
//! and `aemp run`; [`run`] hands the configuration commands to
//! [`configure`].

use std::time::{Duration, Instant};

use aemp::config::Config;
use aemp::{Msg, NetConfig, Node, NodeId, PortId, Value};

use crate::args::{Cli, Cmd};
use crate::configure::configure;
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

/// An anonymous private node for client commands.
async fn client(cli: &Cli) -> Res<Node> {
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
    Node::builder().id("anon/").net_config(net).build().await.map_err(|e| e.to_string())
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
        Cmd::Rpc { port, args } => {
            let port = port_arg(port)?;
            let node = client(&cli).await?;
            let r = node.call(&port, args.iter().map(|a| arg_value(a)).collect(), timeout(&cli)).await;
            node.shutdown().await;
            let reply = r.map_err(|e| e.to_string())?;
            println!("{}", Value::from(reply));
            Ok(())
        }
        Cmd::Mon { port } => {
            let port = port_arg(port)?;
            let node = client(&cli).await?;
            let reason = node.dead(&port).await;
            node.shutdown().await;
            if cli.json {
                println!("{}", Value::Array(reason.0));
            } else {
                println!("{reason}");
            }
            Ok(())
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
                None => {
                    // The first seed's node.
                    let deadline = Instant::now() + timeout(&cli);
                    loop {
                        if let Some(n) = node.seed_nodes().into_iter().next() {
                            break n;
                        }
                        if Instant::now() > deadline {
                            node.shutdown().await;
                            return Err("no seed answered".into());
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            };
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
                println!("{}", serde_json::json!({ "node": target.as_str(), "known": known, "up": up }));
            } else {
                println!("node {target}");
                for k in &known {
                    let state = if up.contains(k) {
                        "up"
                    } else if k == target.as_str() {
                        "self"
                    } else {
                        "known"
                    };
                    println!("  {k:<40} {state}");
                }
            }
            Ok(())
        }
        Cmd::Trace { node: id } => {
            let id = NodeId::new(id).map_err(|e| e.to_string())?;
            let node = client(&cli).await?;
            let r = node
                .call(&id.node_port(), aemp::msg!["info"], timeout(&cli))
                .await
                .map_err(|e| e.to_string())?;
            println!("{} is up", r.str(0).unwrap_or("?"));
            let reason = node.dead(&id.node_port()).await;
            println!("{id} is down: {reason}");
            node.shutdown().await;
            Ok(())
        }
        Cmd::Supervisors { node: id } => {
            let id = NodeId::new(id).map_err(|e| e.to_string())?;
            let node = client(&cli).await?;
            let r = supervisors(&node, &id, timeout(&cli), cli.json).await;
            node.shutdown().await;
            r
        }
        Cmd::Run { profile, metrics } => {
            if let Some(c) = &cli.config {
                std::env::set_var("AEMP_CONFIG", c);
            }
            let node =
                aemp::initialise_node(profile.as_deref().unwrap_or("")).await.map_err(|e| e.to_string())?;
            tracing::info!(node = %node.id(), listen = ?node.listen_addrs(), "node running");
            eprintln!("aemp: node {} running on {:?}", node.id(), node.listen_addrs());
            if let Some(addr) = metrics {
                let at = node.serve_metrics(addr).await.map_err(|e| e.to_string())?;
                eprintln!("aemp: metrics at http://{at}/metrics");
            }
            wait_for_signal().await;
            tracing::info!("shutting down");
            node.shutdown().await;
            Ok(())
        }
        Cmd::Observe(args) => {
            let node = client(&cli).await?;
            let r = crate::observe::observe(&node, args, timeout(&cli)).await;
            node.shutdown().await;
            r
        }
        other => configure(&cli, None, other),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn wait_for_signal() {
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

//! The `aemp` command-line tool: talk to a running aemp or AnyEvent::MP
//! network, run a node, and edit the configuration (SPEC A.11).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aemp::config::Config;
use aemp::{Msg, NetConfig, Node, NodeId, PortId, Value};
use clap::{Parser, Subcommand};

/// Erlang-style message passing: send, call, monitor, run nodes, configure.
#[derive(Parser, Debug)]
#[command(name = "aemp", version, about, long_about = None)]
struct Cli {
    /// The configuration file (default: $AEMP_CONFIG, else the per-user file).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The profile whose secret, certificate and seeds client commands use.
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// A seed address for client commands (repeatable; adds to the profile's).
    #[arg(long = "seed", global = true, value_name = "HOST:PORT")]
    seeds: Vec<String>,
    /// The shared secret for client commands (overrides the profile's).
    #[arg(long, global = true)]
    secret: Option<String>,
    /// Seconds to wait for an answer.
    #[arg(long, global = true, default_value_t = 10.0)]
    timeout: f64,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Send a message: `aemp snd PORT ARGS...` (arguments are JSON literals where they parse, else strings).
    Snd {
        port: String,
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Send a message with a reply port appended and print the reply.
    Rpc {
        port: String,
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Monitor a port: wait until it dies and print the reason.
    Mon { port: String },
    /// Ask a node's node port for its ID (`info`) and print the round trip.
    Ping { node: String },
    /// List the known and connected nodes of a running node (default: the first seed's).
    Nodes { node: Option<String> },
    /// Print connection events for a node until interrupted.
    Trace { node: String },
    /// Show the supervision trees (aemp-supervisor) running on a node.
    Supervisors { node: String },
    /// Run a node from a profile until SIGINT or SIGTERM.
    Run { profile: Option<String> },
    /// Set the node ID.
    Setnodeid { id: String },
    /// Remove the node ID.
    Delnodeid,
    /// Generate and store a random secret.
    Gensecret,
    /// Store a secret.
    Setsecret { secret: String },
    /// Remove the secret.
    Delsecret,
    /// Generate a key and self-signed certificate (in-process) and store them.
    Gencert,
    /// Store a key and certificate from a PEM file.
    Setcert { file: PathBuf },
    /// Remove the certificate.
    Delcert,
    /// Set the listen addresses.
    Setbinds { binds: Vec<String> },
    /// Remove the listen addresses (back to the default from the node ID).
    Delbinds,
    /// Add a listen address.
    Addbind { bind: String },
    /// Remove a listen address.
    Delbind { bind: String },
    /// Set the seeds.
    Setseeds { seeds: Vec<String> },
    /// Remove the seeds.
    Delseeds,
    /// Add a seed.
    Addseed { seed: String },
    /// Remove a seed.
    Delseed { seed: String },
    /// Set the services (init functions started at boot).
    Setservices { services: Vec<String> },
    /// Remove the services.
    Delservices,
    /// Add a service.
    Addservice { service: String },
    /// Remove a service.
    Delservice { service: String },
    /// Run a configuration command on a profile: `aemp profile NAME setseeds ...`.
    Profile {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Delete a profile.
    Delprofile { name: String },
    /// Show a profile as stored.
    Showprofile { name: String },
    /// Show the whole configuration, or the merged view of one profile.
    Showconfig { profile: Option<String> },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aemp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aemp: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res<T = ()> = Result<T, String>;

fn config_path(cli: &Cli) -> PathBuf {
    cli.config.clone().unwrap_or_else(Config::default_path)
}

/// A message argument: a JSON literal where it parses, else a string.
fn arg_value(s: &str) -> Value {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) => Value::from(v),
        Err(_) => Value::from(s),
    }
}

fn port_arg(s: &str) -> Res<PortId> {
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

fn timeout(cli: &Cli) -> Duration {
    Duration::from_secs_f64(cli.timeout.max(0.01))
}

async fn run(cli: Cli) -> Res {
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

/// `aemp supervisors NODE`: asks `NODE#aemp_supervisors` for `["list"]`
/// (the node's supervisor ports), then every supervisor, and every child
/// supervisor found on the way (on any node), for `["which_children"]` (a
/// map, see aemp-supervisor's `SupervisorInfo`), and prints the trees whose
/// root has no parent on that node.
async fn supervisors(node: &Node, id: &NodeId, t: Duration, json: bool) -> Res {
    use std::collections::BTreeMap;
    let dir = id.port("aemp_supervisors").map_err(|e| e.to_string())?;
    let list =
        node.call(&dir, aemp::msg!["list"], t).await.map_err(|e| format!("no supervisors on {id}: {e}"))?;
    let listed: Vec<String> = list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let mut infos: BTreeMap<String, Value> = BTreeMap::new();
    let mut todo = listed.clone();
    while let Some(p) = todo.pop() {
        if infos.contains_key(&p) {
            continue;
        }
        let m = node
            .call(&port_arg(&p)?, aemp::msg!["which_children"], t)
            .await
            .map_err(|e| format!("{p}: {e}"))?;
        let info = m.into_iter().next().unwrap_or(Value::Null);
        for c in children_of(&info) {
            if field(c, "kind") == "supervisor" && !field(c, "port").is_empty() {
                todo.push(field(c, "port"));
            }
        }
        infos.insert(p, info);
    }
    let roots: Vec<&String> =
        listed.iter().filter(|p| !listed.contains(&field(&infos[*p], "parent"))).collect();
    if json {
        let trees: Vec<serde_json::Value> = roots.iter().map(|p| tree_json(p, &infos)).collect();
        println!("{}", serde_json::json!({ "node": id.as_str(), "supervisors": trees }));
        return Ok(());
    }
    if roots.is_empty() {
        println!("no supervisors on {id}");
    }
    for p in roots {
        print_tree(p, &infos, "");
    }
    Ok(())
}

fn field(v: &Value, key: &str) -> String {
    match v.as_map().and_then(|m| m.get(key)) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn children_of(info: &Value) -> &[Value] {
    info.as_map().and_then(|m| m.get("children")).and_then(Value::as_array).unwrap_or(&[])
}

fn print_tree(port: &str, infos: &std::collections::BTreeMap<String, Value>, indent: &str) {
    let Some(info) = infos.get(port) else { return };
    if indent.is_empty() {
        println!("{port}  {}  restarts {}", field(info, "strategy"), field(info, "restarts"));
    }
    let kids = children_of(info);
    for (i, c) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let p = field(c, "port");
        println!(
            "{indent}{} {:<12} {:<9} {:<10} restarts {:<3} {}",
            if last { "└─" } else { "├─" },
            field(c, "id"),
            field(c, "status"),
            field(c, "kind"),
            field(c, "restarts"),
            if p.is_empty() { "-".to_owned() } else { p.clone() }
        );
        if field(c, "kind") == "supervisor" && infos.contains_key(&p) {
            print_tree(&p, infos, &format!("{indent}{}", if last { "   " } else { "│  " }));
        }
    }
}

fn tree_json(port: &str, infos: &std::collections::BTreeMap<String, Value>) -> serde_json::Value {
    let mut v = infos.get(port).cloned().map(to_json).unwrap_or(serde_json::Value::Null);
    if let Some(kids) = v.get_mut("children").and_then(serde_json::Value::as_array_mut) {
        for k in kids {
            let p = k.get("port").and_then(serde_json::Value::as_str).unwrap_or("").to_owned();
            if k.get("kind").and_then(serde_json::Value::as_str) == Some("supervisor")
                && infos.contains_key(&p)
            {
                k["supervisor"] = tree_json(&p, infos);
            }
        }
    }
    v
}

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

fn configure(cli: &Cli, profile: Option<&str>, cmd: &Cmd) -> Res {
    let path = config_path(cli);
    let mut cfg = Config::load(&path).map_err(|e| e.to_string())?;
    let e = |e: aemp::Error| e.to_string();
    let list = |v: &[String]| Value::from(v.to_vec());
    let mut changed = true;
    match cmd {
        Cmd::Setnodeid { id } => {
            NodeId::new(id).map_err(e)?;
            cfg.set(profile, "nodeid", serde_json::Value::String(id.clone())).map_err(e)?;
        }
        Cmd::Delnodeid => drop(cfg.delete(profile, "nodeid").map_err(e)?),
        Cmd::Gensecret => {
            let s = random_secret();
            cfg.set(profile, "secret", serde_json::Value::String(s)).map_err(e)?;
        }
        Cmd::Setsecret { secret } => {
            cfg.set(profile, "secret", serde_json::Value::String(secret.clone())).map_err(e)?
        }
        Cmd::Delsecret => drop(cfg.delete(profile, "secret").map_err(e)?),
        Cmd::Gencert => {
            let pem = aemp::generate_cert_pem("AnyEvent::MP").map_err(e)?;
            cfg.set(profile, "cert", serde_json::Value::String(pem)).map_err(e)?;
        }
        Cmd::Setcert { file } => {
            let pem = std::fs::read_to_string(file)
                .map_err(|err| format!("cannot read {}: {err}", file.display()))?;
            aemp::check_cert_pem(&pem).map_err(e)?;
            cfg.set(profile, "cert", serde_json::Value::String(pem)).map_err(e)?;
        }
        Cmd::Delcert => drop(cfg.delete(profile, "cert").map_err(e)?),
        Cmd::Setbinds { binds } => cfg.set(profile, "binds", to_json(list(binds))).map_err(e)?,
        Cmd::Delbinds => drop(cfg.delete(profile, "binds").map_err(e)?),
        Cmd::Addbind { bind } => drop(cfg.add_to_list(profile, "binds", bind).map_err(e)?),
        Cmd::Delbind { bind } => drop(cfg.remove_from_list(profile, "binds", bind).map_err(e)?),
        Cmd::Setseeds { seeds } => cfg.set(profile, "seeds", to_json(list(seeds))).map_err(e)?,
        Cmd::Delseeds => drop(cfg.delete(profile, "seeds").map_err(e)?),
        Cmd::Addseed { seed } => drop(cfg.add_to_list(profile, "seeds", seed).map_err(e)?),
        Cmd::Delseed { seed } => drop(cfg.remove_from_list(profile, "seeds", seed).map_err(e)?),
        Cmd::Setservices { services } => cfg.set(profile, "services", to_json(list(services))).map_err(e)?,
        Cmd::Delservices => drop(cfg.delete(profile, "services").map_err(e)?),
        Cmd::Addservice { service } => drop(cfg.add_to_list(profile, "services", service).map_err(e)?),
        Cmd::Delservice { service } => drop(cfg.remove_from_list(profile, "services", service).map_err(e)?),
        Cmd::Profile { name, command } => {
            if profile.is_some() {
                return Err("profile commands do not nest".into());
            }
            let mut argv = vec!["aemp".to_owned()];
            argv.extend(command.iter().cloned());
            let sub = Cli::try_parse_from(argv)
                .map_err(|err| err.to_string().lines().next().unwrap_or("").to_owned())?;
            return configure(cli, Some(name), &sub.cmd);
        }
        Cmd::Delprofile { name } => {
            if !cfg.delete_profile(name).map_err(e)? {
                return Err(format!("no profile {name:?}"));
            }
        }
        Cmd::Showprofile { name } => {
            changed = false;
            let v = cfg.as_map().get("profile").and_then(|p| p.get(name)).cloned();
            match v {
                Some(v) => println!("{}", serde_json::to_string_pretty(&hide(v)).unwrap_or_default()),
                None => return Err(format!("no profile {name:?}")),
            }
        }
        Cmd::Showconfig { profile: p } => {
            changed = false;
            let v = match p {
                Some(p) => cfg.merged_json(p),
                None => serde_json::Value::Object(cfg.as_map().clone()),
            };
            println!("{}", serde_json::to_string_pretty(&hide(v)).unwrap_or_default());
        }
        other => return Err(format!("{other:?} is not a configuration command")),
    }
    if changed {
        cfg.save(&path).map_err(e)?;
    }
    Ok(())
}

fn to_json(v: Value) -> serde_json::Value {
    serde_json::from_str(&v.to_string()).unwrap_or(serde_json::Value::Null)
}

/// Hides secrets and keys in shown configuration.
fn hide(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        for (k, x) in o.iter_mut() {
            if k == "secret" || k == "cert" {
                *x = serde_json::Value::String("<hidden>".into());
            } else {
                *x = hide(x.take());
            }
        }
    }
    v
}

fn random_secret() -> String {
    use rand::Rng;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = rand::rng();
    (0..43).map(|_| A[r.random_range(0..A.len())] as char).collect()
}

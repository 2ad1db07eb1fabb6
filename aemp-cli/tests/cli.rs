//! The `aemp` tool run as a subprocess: configuration commands on a
//! temporary file, and client commands against a live node.

use std::process::{Command, Output};

use aemp::{msg, NetConfig, Node};

fn aemp(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aemp"))
        .env("AEMP_CONFIG", config)
        .env("HOME", config.parent().unwrap())
        .args(args)
        .output()
        .expect("aemp runs")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "aemp failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Starts `aemp run PROFILE` on a config with that profile (node ID `id`,
/// bind 127.0.0.1:0, the given secret), and a local node `watcher` linked
/// to it. Returns the process, the local node and the run node's ID.
async fn run_and_watch(
    dir: &std::path::Path,
    profile: &str,
    id: &str,
    secret: &str,
    watcher: &str,
) -> (std::process::Child, Node, aemp::NodeId) {
    use std::io::BufRead;
    let cfg = dir.join("config.json");
    let text = format!(
        r#"{{"version":1,"secret":"{secret}","profile":{{"{profile}":{{"nodeid":"{id}","binds":["127.0.0.1:0"]}}}}}}"#
    );
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aemp"))
        .env("AEMP_CONFIG", &cfg)
        .args(["run", profile])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `aemp run` says where it listens.
    let stderr = child.stderr.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        let mut r = std::io::BufReader::new(stderr);
        while r.read_line(&mut l).unwrap() > 0 && !l.contains("running on") {
            l.clear();
        }
        l
    })
    .await
    .unwrap();
    let addr = line.split('"').nth(1).expect("an address").to_owned();
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some(secret.into());
    let node = Node::builder().id(watcher).net_config(c).build().await.unwrap();
    let other = aemp::NodeId::new(id).unwrap();
    node.add_node_addr(&other, addr);
    // Prove the link is up with a request.
    let info = node.call(&other.node_port(), msg!["info"], std::time::Duration::from_secs(20)).await.unwrap();
    assert_eq!(info, msg![id]);
    (child, node, other)
}

#[test]
fn configuration_commands_edit_the_file_and_profiles_merge() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    ok(&aemp(&cfg, &["setsecret", "s3cret"]));
    ok(&aemp(&cfg, &["addseed", "127.0.0.1:4040"]));
    ok(&aemp(&cfg, &["profile", "web", "setnodeid", "web-1"]));
    ok(&aemp(&cfg, &["profile", "web", "setbinds", "127.0.0.1:4041", "127.0.0.1:4042"]));
    let shown: serde_json::Value = serde_json::from_str(&ok(&aemp(&cfg, &["showconfig", "web"]))).unwrap();
    assert_eq!(shown["nodeid"], "web-1");
    assert_eq!(shown["seeds"], serde_json::json!(["127.0.0.1:4040"]));
    assert_eq!(shown["binds"], serde_json::json!(["127.0.0.1:4041", "127.0.0.1:4042"]));
    assert_eq!(shown["secret"], "<hidden>");
    let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(raw["secret"], "s3cret");
    ok(&aemp(&cfg, &["gencert"]));
    let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert!(raw["cert"].as_str().unwrap().contains("BEGIN CERTIFICATE"));
    ok(&aemp(&cfg, &["delprofile", "web"]));
    let o = aemp(&cfg, &["showprofile", "web"]);
    assert!(!o.status.success());
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    assert!(err.contains("no profile"), "{err}");
}

#[test]
fn a_malformed_config_file_is_an_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, "{\n  \"secret\": \"x\",\n  \"seeds\": [1 2]\n}\n").unwrap();
    let o = aemp(&cfg, &["showconfig"]);
    assert!(!o.status.success());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("line 3"), "{err}");
    // Nothing was reset.
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("[1 2]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_snd_and_mon_against_a_live_node() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some("cli-secret".into());
    let node = Node::builder().id("cli-target").net_config(c).build().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    node.named_port("echo", move |ctx, m| -> aemp::Result<()> {
        let _ = tx.send(m.clone());
        if let Some(reply) = m.last().and_then(|v| v.as_str()).and_then(|s| aemp::PortId::new(s).ok()) {
            if m.tag() == Some("ping") {
                ctx.snd(&reply, msg!["pong", m[1].clone()]);
            }
        }
        Ok(())
    })
    .unwrap();
    let addr = node.listen_addrs()[0].clone();
    let base = ["--seed", addr.as_str(), "--secret", "cli-secret"];
    let run = |args: Vec<String>| {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            aemp(&cfg, &a)
        })
    };
    let args = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };

    let out = run(args(&["rpc", "cli-target#echo", "ping", "{\"n\":1}"])).await.unwrap();
    assert_eq!(ok(&out).trim(), r#"["pong",{"n":1}]"#);

    let out = run(args(&["snd", "cli-target#echo", "hello", "42", "[1,2]"])).await.unwrap();
    ok(&out);
    let mut got = rx.recv().await.unwrap();
    while got.tag() != Some("hello") {
        got = rx.recv().await.unwrap();
    }
    assert_eq!(got, msg!["hello", 42, vec![1, 2]]);

    // A port that does not exist: the monitor fires at once with the
    // reason, and the command fails.
    let out = run(args(&["mon", "cli-target#never-was"])).await.unwrap();
    assert!(!out.status.success(), "mon of a missing port fails");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"["no_such_port","cannot monitor nonexistent port"]"#
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    let out = run(args(&["--timeout", "1", "rpc", "cli-target#", "bogus"])).await.unwrap();
    assert!(!out.status.success(), "an unanswered request fails");

    // A wrong secret says so, not just that no reply came.
    let wrong: Vec<String> = [
        "--seed",
        addr.as_str(),
        "--secret",
        "not-the-secret",
        "--timeout",
        "2",
        "rpc",
        "cli-target#echo",
        "ping",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(wrong).await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token does not match"), "{err}");

    // Negative numbers are message arguments, not options.
    let out = run(args(&["snd", "cli-target#echo", "neg", "-9", "-1.5"])).await.unwrap();
    ok(&out);
    let mut got = rx.recv().await.unwrap();
    while got.tag() != Some("neg") {
        got = rx.recv().await.unwrap();
    }
    assert_eq!(got, msg!["neg", -9, -1.5]);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p28_killing_a_peer_process_fires_monitors_with_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, node, victim) =
        run_and_watch(dir.path(), "victim", "proc-victim", "proc-secret", "proc-watcher").await;
    let dead = node.dead(&victim.node_port());
    child.kill().unwrap();
    let _ = child.wait();
    let reason = tokio::time::timeout(std::time::Duration::from_secs(20), dead).await.expect("monitor fired");
    assert_eq!(reason.kind(), Some("transport_error"), "{reason}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_ping_report_a_running_network() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some("nodes-secret".into());
    let seed = Node::builder().id("nodes-seed").net_config(c.clone()).build().await.unwrap();
    let addr = seed.listen_addrs()[0].clone();
    c.seeds = vec![addr.clone()];
    let other = Node::builder().id("nodes-other").net_config(c).build().await.unwrap();
    // Wait until the seed sees the other node.
    tokio::time::timeout(std::time::Duration::from_secs(20), seed.wait_up(other.id()))
        .await
        .expect("link up");
    let run = |args: Vec<&'static str>| {
        let cfg = cfg.clone();
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let mut a = vec!["--seed", addr.as_str(), "--secret", "nodes-secret", "--json"];
            a.extend(args);
            aemp(&cfg, &a)
        })
    };
    let out = ok(&run(vec!["nodes"]).await.unwrap());
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["node"], "nodes-seed");
    let up: Vec<String> = serde_json::from_value(v["up"].clone()).unwrap();
    assert!(up.contains(&"nodes-other".to_string()), "{v}");
    let out = ok(&run(vec!["ping", "nodes-other"]).await.unwrap());
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["node"], "nodes-other");
    other.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_shows_a_running_nodes_supervision_tree() {
    use aemp_supervisor::{ChildSpec, Strategy, Supervisor, SupervisorSpec};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some("sup-secret".into());
    let node = Node::builder().id("sup-node").net_config(c).build().await.unwrap();
    aemp_supervisor::install();
    node.register("Cli::worker", |ctx, _args| {
        let me = ctx.self_id();
        ctx.rcv(&me, |_, _| {});
    });
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(ChildSpec::new("alpha", "Cli::worker"))
        .child(ChildSpec::new("beta", "Cli::worker"));
    let sup = Supervisor::start(&node, spec).await.unwrap();
    let addr = node.listen_addrs()[0].clone();
    let out = tokio::task::spawn_blocking(move || {
        aemp(&cfg, &["--seed", addr.as_str(), "--secret", "sup-secret", "--json", "supervisors", "sup-node"])
    })
    .await
    .unwrap();
    let text = ok(&out);
    assert!(text.contains("alpha") && text.contains("beta"), "{text}");
    assert!(text.contains(sup.port().as_str()), "{text}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_shuts_down_gracefully_on_sigterm_and_peers_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, node, victim) =
        run_and_watch(dir.path(), "term", "term-node", "term-secret", "term-watcher").await;
    let dead = node.dead(&victim.node_port());
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "aemp run exits 0 after SIGTERM: {status}");
    let reason = tokio::time::timeout(std::time::Duration::from_secs(20), dead).await.expect("monitor fired");
    assert_eq!(reason.kind(), Some("transport_error"), "{reason}");
    node.shutdown().await;
}

#[test]
fn every_configuration_command_edits_the_file_as_the_original_does() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let pem = dir.path().join("cert.pem");
    std::fs::write(&pem, aemp::generate_cert_pem("AnyEvent::MP").unwrap()).unwrap();
    let read =
        || -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap() };
    type Check<'a> = &'a dyn Fn(&serde_json::Value) -> bool;
    let steps: Vec<(Vec<&str>, Check)> = vec![
        (vec!["setnodeid", "n1"], &|v| v["nodeid"] == "n1"),
        (vec!["delnodeid"], &|v| v.get("nodeid").is_none()),
        (vec!["gensecret"], &|v| v["secret"].as_str().is_some_and(|s| s.len() >= 32)),
        (vec!["setsecret", "s"], &|v| v["secret"] == "s"),
        (vec!["delsecret"], &|v| v.get("secret").is_none()),
        (vec!["setcert", pem.to_str().unwrap()], &|v| {
            v["cert"].as_str().is_some_and(|c| c.contains("PRIVATE KEY"))
        }),
        (vec!["delcert"], &|v| v.get("cert").is_none()),
        (vec!["setbinds", "127.0.0.1:1", "127.0.0.1:2"], &|v| {
            v["binds"] == serde_json::json!(["127.0.0.1:1", "127.0.0.1:2"])
        }),
        (vec!["addbind", "127.0.0.1:3"], &|v| v["binds"].as_array().is_some_and(|b| b.len() == 3)),
        (vec!["delbind", "127.0.0.1:1"], &|v| {
            v["binds"] == serde_json::json!(["127.0.0.1:2", "127.0.0.1:3"])
        }),
        (vec!["delbinds"], &|v| v.get("binds").is_none()),
        (vec!["setseeds", "h:1"], &|v| v["seeds"] == serde_json::json!(["h:1"])),
        (vec!["addseed", "h:2"], &|v| v["seeds"] == serde_json::json!(["h:1", "h:2"])),
        (vec!["delseed", "h:1"], &|v| v["seeds"] == serde_json::json!(["h:2"])),
        (vec!["delseeds"], &|v| v.get("seeds").is_none()),
        (vec!["setservices", "A::init"], &|v| v["services"] == serde_json::json!(["A::init"])),
        (vec!["addservice", "B::init"], &|v| v["services"] == serde_json::json!(["A::init", "B::init"])),
        (vec!["delservice", "A::init"], &|v| v["services"] == serde_json::json!(["B::init"])),
        (vec!["delservices"], &|v| v.get("services").is_none()),
        (vec!["profile", "p", "addseed", "h:9"], &|v| {
            v["profile"]["p"]["seeds"] == serde_json::json!(["h:9"])
        }),
        (vec!["delprofile", "p"], &|v| v["profile"].get("p").is_none()),
    ];
    for (args, check) in steps {
        ok(&aemp(&cfg, &args));
        let v = read();
        assert!(check(&v), "after `aemp {}`: {v}", args.join(" "));
    }
    // A bad argument is one line on stderr and a failing exit code.
    let o = aemp(&cfg, &["setnodeid", "a#b"]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8(o.stderr).unwrap().lines().count(), 1);
}

/// A node on 127.0.0.1 with the given ID, secret and listener.
async fn listening(id: &str, secret: &str, bind: &str) -> Node {
    let mut c = NetConfig::default();
    c.binds = vec![bind.into()];
    c.secret = Some(secret.into());
    Node::builder().id(id).net_config(c).build().await.unwrap()
}

/// Runs `aemp ARGS` with a fresh configuration file, in a blocking task.
async fn aemp_async(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        aemp(&dir.path().join("config.json"), &a)
    })
    .await
    .unwrap()
}

/// An address where nothing listens (a port that was free a moment ago).
fn silent_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Reads lines from a child's stdout until one satisfies `want`.
struct Lines(tokio::sync::mpsc::UnboundedReceiver<String>);

impl Lines {
    fn of(out: std::process::ChildStdout) -> Lines {
        Lines::of_reader(out)
    }

    fn of_err(err: std::process::ChildStderr) -> Lines {
        Lines::of_reader(err)
    }

    fn of_reader(out: impl std::io::Read + Send + 'static) -> Lines {
        use std::io::BufRead;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    async fn until(&mut self, want: impl Fn(&str) -> bool) -> String {
        let patience = std::time::Duration::from_secs(60);
        loop {
            let line = tokio::time::timeout(patience, self.0.recv())
                .await
                .expect("a line in time")
                .expect("more output");
            if want(&line) {
                return line;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_prints_links_up_down_and_again_and_refused_and_failed_attempts_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let node = listening("trace-node", "trace-secret", "127.0.0.1:0").await;
    let addr = node.listen_addrs()[0].clone();
    let stranger = listening("trace-stranger", "another-secret", "127.0.0.1:0").await;
    let stranger_addr = stranger.listen_addrs()[0].clone();
    let silent = silent_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aemp"))
        .env("AEMP_CONFIG", &cfg)
        .args(["--seed", &addr, "--seed", &stranger_addr, "--seed", &silent, "--secret", "trace-secret"])
        .args(["trace", "trace-node"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Lines::of(child.stdout.take().unwrap());
    out.until(|l| l == "up trace-node").await;
    // A seed with another secret refuses us; one where nothing listens fails.
    let refused = out.until(|l| l.starts_with(&format!("refused seed {stranger_addr}"))).await;
    assert!(refused.contains("authentication failed"), "{refused}");
    out.until(|l| l.starts_with(&format!("failed seed {silent}"))).await;
    // The node goes away, and comes back at the same address.
    node.shutdown().await;
    let down = out.until(|l| l.starts_with("down trace-node")).await;
    assert!(down.starts_with("down trace-node: [\"transport_error\""), "{down}");
    let again = listening("trace-node", "trace-secret", &addr).await;
    out.until(|l| l == "up trace-node (reconnected)").await;
    // Ctrl-C ends it.
    let int = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(int.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status}");
    again.shutdown().await;
    stranger.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_ping_say_which_seed_failed_and_why_without_waiting_for_the_timeout() {
    let stranger = listening("seedfail-stranger", "another-secret", "127.0.0.1:0").await;
    let refusing = stranger.listen_addrs()[0].clone();
    let silent = silent_addr();
    // A long timeout: the answer must come from the failures, not from it.
    let base = ["--secret", "the-secret", "--timeout", "600", "--seed", &refusing, "--seed", &silent];
    for cmd in [&["nodes"][..], &["ping", "seedfail-stranger"][..]] {
        let args: Vec<&str> = base.iter().copied().chain(cmd.iter().copied()).collect();
        let out = aemp_async(&args).await;
        assert!(!out.status.success(), "{cmd:?} fails");
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with("aemp: no seed answered: "), "{cmd:?}: {err}");
        assert!(
            last.contains(&format!("{refusing}: seed connection refused: authentication failed")),
            "{last}"
        );
        assert!(last.contains(&format!("{silent}: seed connection failed")), "{last}");
        assert!(!last.contains("no answer"), "every seed failed before the timeout: {last}");
    }
    stranger.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mon_fails_when_the_monitor_cannot_be_placed() {
    let node = listening("mon-seed", "mon-secret", "127.0.0.1:0").await;
    let addr = node.listen_addrs()[0].clone();
    // A node nobody knows: no monitor can be placed on its ports.
    let out =
        aemp_async(&["--seed", &addr, "--secret", "mon-secret", "--timeout", "2", "mon", "nowhere-node#p"])
            .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot monitor nowhere-node#p"), "{err}");
    // A port that exists: mon says when its monitor is in place, waits for
    // the port's death, prints the reason and succeeds.
    let port = node.named_port("doomed", |_ctx, _m| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aemp"))
        .env("AEMP_CONFIG", dir.path().join("config.json"))
        .args(["--seed", &addr, "--secret", "mon-secret", "mon", "mon-seed#doomed"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = Lines::of_err(child.stderr.take().unwrap());
    err.until(|l| l.contains("monitoring mon-seed#doomed")).await;
    node.kil(&port, aemp::Reason::from("enough"));
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(ok(&out).trim(), r#"["enough"]"#);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_marks_the_tool_s_own_node() {
    let node = listening("own-seed", "own-secret", "127.0.0.1:0").await;
    let addr = node.listen_addrs()[0].clone();
    let out = aemp_async(&["--seed", &addr, "--secret", "own-secret", "nodes"]).await;
    let text = ok(&out);
    let own: Vec<&str> = text.lines().filter(|l| l.contains("(this tool's own node)")).collect();
    assert_eq!(own.len(), 1, "{text}");
    assert!(own[0].trim_start().starts_with("anon/"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("own-seed") && l.contains("self")), "{text}");
    let out = aemp_async(&["--seed", &addr, "--secret", "own-secret", "--json", "nodes"]).await;
    let v: serde_json::Value = serde_json::from_str(ok(&out).trim()).unwrap();
    let tool = v["tool"].as_str().expect("the tool's node in the JSON");
    assert!(tool.starts_with("anon/"), "{v}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_puts_the_reply_port_where_the_receiving_port_expects_it() {
    let node = listening("rpc-node", "rpc-secret", "127.0.0.1:0").await;
    let addr = node.listen_addrs()[0].clone();
    // A port that takes exactly ["get", reply, key].
    node.named_port("store", |ctx, m| {
        if m.len() != 3 {
            return Err(aemp::Error::die(format!("expected 3 elements, got {m}")));
        }
        ctx.snd(&m.port(1)?, msg!["value", m.str(2)?.to_uppercase()]);
        Ok(())
    })
    .unwrap();
    let base = ["--seed", addr.as_str(), "--secret", "rpc-secret", "--timeout", "20"];
    let args: Vec<&str> =
        base.iter().copied().chain(["rpc", "--reply-at", "1", "rpc-node#store", "get", "k"]).collect();
    assert_eq!(ok(&aemp_async(&args).await).trim(), r#"["value","K"]"#);
    // Past the end of the message is refused before anything is sent.
    let args: Vec<&str> =
        base.iter().copied().chain(["rpc", "--reply-at", "5", "rpc-node#store", "get"]).collect();
    let out = aemp_async(&args).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reply-at 5"));
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let silent = silent_addr();
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_aemp"))
            .env("AEMP_CONFIG", dir.path().join("config.json"))
            .env("RUST_LOG", "debug")
            .args(["--seed", &silent, "--secret", "s", "ping", "anyone"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEBUG"), "debug logs were written: {err}");
    assert!(!err.contains('\u{1b}'), "no escape codes: {err:?}");
}

//! The book's code, run.
//!
//! - Every snippet of `examples/snippets/`, in-process, one test per chapter.
//! - The chat service of `examples/chat/`, in-process.
//! - The example programs whose commands the book shows, as processes
//!   (`cargo test` builds the examples before it runs the tests):
//!
//! | command in the book | test |
//! |---|---|
//! | `cargo run --example demo` | `example_demo` |
//! | `cargo run --example ping_pong` | `example_ping_pong` |
//! | `cargo run --example supervised` | `example_supervised_survives_the_loss_of_a_node` |
//! | `cargo run --example chat_local` | `example_chat_local` |
//! | `RUST_LOG=aemp=info cargo run --example chat_local` | `example_chat_local_logs_with_rust_log` |
//! | `cargo run --example chat_typed` | `example_chat_typed` |
//! | `cargo run --example book_snippets` | `example_book_snippets` |
//! | `cargo run --example chat_server -- --id chat-server --bind 127.0.0.1:4040 --secret SECRET` and `cargo run --example chat_client -- --nick NICK --seed 127.0.0.1:4040 --secret SECRET` | `chat_programs_talk_and_survive_a_server_restart` (on a free port instead of 4040) |
//! | `cargo run --example chat_server -- --profile chat-server` and `cargo run --example chat_client -- --profile chat-client --nick NICK` | `chat_server_and_client_start_from_profiles` |
//!
//! The `aemp` tool's commands shown in the book are run by `aemp-cli/tests/book_commands.rs`.
//! The benchmark commands (`cargo bench -p aemp --bench core|net|derive`,
//! `cargo bench -p aemp-supervisor --bench dynamic`) run under `cargo
//! test` too, as smoke runs with small counts (see
//! `aemp/benches/support/mode.rs`); the `net` one also runs itself under
//! `taskset -c 0`, as the book's one-CPU command does. `.ci/run` builds the
//! API documentation that `cargo doc --open` shows, and the book itself
//! (`mdbook build book`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aemp::{msg, NetConfig, Node, TypedPortId};
use aemp_examples::chat::{self, typed};
use aemp_examples::snippets;
use tokio::sync::mpsc::UnboundedReceiver;

/// How long a test waits for an event before it fails (a guard against
/// hangs, never a synchronisation).
const PATIENCE: Duration = Duration::from_secs(30);

// ---- snippets, one test per chapter ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_ports_and_messages() {
    snippets::ports::run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_tagged_and_typed() {
    snippets::tagged::run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_monitoring_and_killing() {
    snippets::monitors::run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_spawning() {
    snippets::spawning::run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_nodes_and_profiles() {
    snippets::nodes::run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_security() {
    snippets::security::run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_supervision_trees() {
    snippets::supervision::run().await.unwrap();
}

#[test]
fn snippets_wire_protocol() {
    snippets::protocol::run().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_operating() {
    snippets::operating::run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_troubleshooting() {
    snippets::troubleshooting::run().await.unwrap();
}

// ---- the chat service in-process -------------------------------------------------

fn net(seeds: Vec<String>) -> NetConfig {
    let mut net = snippets::local_net("chat test");
    net.seeds = seeds;
    net
}

async fn node(id: &str, seeds: Vec<String>) -> Node {
    Node::builder().id(id).net_config(net(seeds)).build().await.unwrap()
}

/// A screen: the lines a client port shows.
fn screen() -> (impl FnMut(String) + Send + 'static, UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (
        move |line| {
            let _ = tx.send(line);
        },
        rx,
    )
}

async fn next_line(rx: &mut UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, rx.recv()).await.expect("a line in time").expect("the port lives")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untyped_chat_relays_and_announces_joins_and_quits() {
    let hub = node("u-hub", vec![]).await;
    let server = chat::server::start(&hub).unwrap();
    let seed = hub.listen_addrs();
    let (a, b) = (node("u-a", seed.clone()).await, node("u-b", seed).await);
    let (show, mut screen_b) = screen();
    let pb = chat::client::client_port(&b, show);
    let pa = chat::client::client_port(&a, |_| {});
    assert_eq!(chat::find_server(&b, PATIENCE).await.unwrap(), server);
    assert_eq!(chat::find_server(&a, PATIENCE).await.unwrap(), server);
    b.snd(&server, msg!["join", &pb, "bob"]);
    assert_eq!(next_line(&mut screen_b).await, "bob joins");
    a.snd(&server, msg!["join", &pa, "alice"]);
    a.snd(&server, msg!["privmsg", "alice", "hi"]);
    assert_eq!(next_line(&mut screen_b).await, "alice joins");
    assert_eq!(next_line(&mut screen_b).await, "<alice> hi");
    chat::leave(&a, &pa, &server).await;
    assert_eq!(next_line(&mut screen_b).await, "alice quits (normal)");
    let pa = chat::client::client_port(&a, |_| {});
    a.snd(&server, msg!["join", &pa, "alice"]);
    assert_eq!(next_line(&mut screen_b).await, "alice joins");
    a.shutdown().await;
    let quit = next_line(&mut screen_b).await;
    assert!(quit.starts_with("alice quits ([\"transport_error\",\"u-a\""), "{quit}");
    b.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_client_port_talks_to_the_untyped_server() {
    let hub = node("mix-hub", vec![]).await;
    let server = TypedPortId::<typed::ToServer>::new_unchecked(chat::server::start(&hub).unwrap());
    let client = node("mix-client", hub.listen_addrs()).await;
    let (show, mut lines) = screen();
    let me = typed::client_port(&client, show);
    client.snd_typed(&server, &typed::ToServer::Join { client: me.clone(), nick: "tess".into() }).unwrap();
    let say = typed::ToServer::Privmsg { nick: "tess".into(), text: "typed".into() };
    client.snd_typed(&server, &say).unwrap();
    assert_eq!(next_line(&mut lines).await, "tess joins");
    assert_eq!(next_line(&mut lines).await, "<tess> typed");
    client.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_speak_with_their_own_nick_and_leave_normally() {
    let hub = node("s-hub", vec![]).await;
    let server = typed::start(&hub).unwrap();
    let seed = hub.listen_addrs();
    let (a, b) = (node("s-a", seed.clone()).await, node("s-b", seed).await);
    let found = TypedPortId::new_unchecked(chat::find_server(&b, PATIENCE).await.unwrap());
    assert_eq!(found, server);
    let (show, mut screen_b) = screen();
    let bob = typed::connect(&b, &server, "bob", show).unwrap();
    assert_eq!(bob.session.id().node(), *hub.id(), "the session runs on the server's node");
    assert_eq!(next_line(&mut screen_b).await, "bob joins");
    let alice = typed::connect(&a, &server, "alice", |_| {}).unwrap();
    assert_eq!(next_line(&mut screen_b).await, "alice joins");
    alice.say(&a, "hello").unwrap();
    assert_eq!(next_line(&mut screen_b).await, "<alice> hello");
    let session = alice.session.clone();
    let session_gone = b.dead(session.id());
    // An answer from the hub proves that b's monitor request got there first.
    b.call(&hub.id().node_port(), msg!["info"], PATIENCE).await.unwrap();
    alice.leave(&a).await;
    assert_eq!(next_line(&mut screen_b).await, "alice quits (normal)");
    assert!(tokio::time::timeout(PATIENCE, session_gone).await.unwrap().is_normal());
    for n in [a, b, hub] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_client_node_ends_its_session_on_the_server_node() {
    let hub = node("l-hub", vec![]).await;
    let server = typed::start(&hub).unwrap();
    let client = node("l-client", hub.listen_addrs()).await;
    let (show, mut lines) = screen();
    let conn = typed::connect(&client, &server, "lou", show).unwrap();
    assert_eq!(next_line(&mut lines).await, "lou joins");
    let session_gone = hub.dead(conn.session.id());
    client.shutdown().await;
    let reason = tokio::time::timeout(PATIENCE, session_gone).await.unwrap();
    assert_eq!(reason.kind(), Some("transport_error"), "{reason}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_server_port_dies_sessions_and_client_ports_follow() {
    let hub = node("d-hub", vec![]).await;
    let server = typed::start(&hub).unwrap();
    let client = node("d-client", hub.listen_addrs()).await;
    let (show, mut lines) = screen();
    let conn = typed::connect(&client, &server, "dee", show).unwrap();
    assert_eq!(next_line(&mut lines).await, "dee joins");
    let client_gone = client.dead(conn.me.id());
    // A join whose client is not a port ID kills the server.
    client.snd(server.id(), msg!["join", 42, "x"]);
    let reason = tokio::time::timeout(PATIENCE, client_gone).await.unwrap();
    assert_eq!(reason.kind(), Some("die"), "{reason}");
    client.shutdown().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_spawned_where_nobody_registered_it_takes_the_client_port_down() {
    let plain = node("no-sessions", vec![]).await;
    let server = TypedPortId::new_unchecked(chat::server::start(&plain).unwrap());
    let client = node("hopeful", plain.listen_addrs()).await;
    let conn = typed::connect(&client, &server, "hope", |_| {}).unwrap();
    let reason = tokio::time::timeout(PATIENCE, client.dead(conn.me.id())).await.unwrap();
    assert_eq!(reason, aemp::Reason::die(format!("unknown init function {:?}", typed::SESSION_INIT)));
    client.shutdown().await;
    plain.shutdown().await;
}

// ---- the example programs as processes -------------------------------------------

/// The path of a built example program.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>").join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: `cargo test -p aemp-examples` (without --test) builds the examples first",
        path.display()
    );
    path
}

/// Runs a command to its end (at most `limit`) and returns its exit
/// success, stdout and stderr.
fn run_to_end(cmd: &mut Command, limit: Duration) -> (bool, String, String) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read_all(Box::new(child.stdout.take().unwrap()));
    let err = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

fn example_runs(name: &str) -> String {
    let (ok, out, err) = run_to_end(&mut Command::new(example(name)), Duration::from_secs(120));
    assert!(ok, "{name} failed\nstdout:\n{out}\nstderr:\n{err}");
    out
}

#[test]
fn example_demo() {
    let out = example_runs("demo");
    assert!(out.contains("transport_error"), "{out}");
}

#[test]
fn example_demo_shows_a_supervised_restart() {
    let out = example_runs("demo");
    assert!(out.contains("has been restarted 1 time(s)"), "{out}");
}

#[test]
fn example_supervised_survives_the_loss_of_a_node() {
    let out = example_runs("supervised");
    assert!(out.contains("restarts 1"), "{out}");
}

#[test]
fn example_ping_pong() {
    assert!(example_runs("ping_pong").contains("got pong 5"));
}

/// Checks that the lines of `examples/expected/NAME.txt` (shown in the
/// book) start lines of `out`, in order; a trailing `...` stands for the
/// rest of the line.
fn matches_expected(name: &str, out: &str) {
    let path = format!("{}/expected/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let expected = std::fs::read_to_string(&path).unwrap();
    let mut lines = out.lines();
    for want in expected.lines() {
        let prefix = want.strip_suffix("...").unwrap_or(want);
        let exact = prefix.len() == want.len();
        let found = lines.any(|l| if exact { l == want } else { l.starts_with(prefix) });
        assert!(found, "{path}: no line {want:?} (in order) in:\n{out}");
    }
}

#[test]
fn example_chat_local() {
    matches_expected("chat_local", &example_runs("chat_local"));
}

#[test]
fn example_chat_local_logs_with_rust_log() {
    let mut cmd = Command::new(example("chat_local"));
    cmd.env("RUST_LOG", "aemp=info").env("NO_COLOR", "1");
    let (ok, _out, err) = run_to_end(&mut cmd, Duration::from_secs(120));
    assert!(ok, "{err}");
    assert!(err.contains("connection up"), "{err}");
}

#[test]
fn example_chat_typed() {
    matches_expected("chat_typed", &example_runs("chat_typed"));
}

#[test]
fn example_book_snippets() {
    example_runs("book_snippets");
}

/// A running program whose stdout lines arrive on a channel.
struct Program {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Program {
    fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Program {
        let mut cmd = Command::new(example(name));
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Program { name: format!("{name} {}", args.join(" ")), child, stdin, lines }
    }

    /// Waits for a line containing `text`, skipping others; returns it.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("{}: no line with {text:?}", self.name),
            }
        }
    }

    fn type_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin and waits for the exit; returns whether it succeeded.
    fn finish(mut self) -> bool {
        drop(self.stdin.take());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn chat_programs_talk_and_survive_a_server_restart() {
    let addr = format!("127.0.0.1:{}", free_port());
    let server_args = ["--id", "chat-server", "--bind", addr.as_str(), "--secret", "SECRET"];
    let server = Program::start("chat_server", &server_args, &[]);
    server.wait_for("listening on");
    let client = |nick: &str| {
        Program::start("chat_client", &["--nick", nick, "--seed", addr.as_str(), "--secret", "SECRET"], &[])
    };
    let mut alice = client("alice");
    let mut bob = client("bob");
    bob.wait_for("bob joins");
    alice.wait_for("alice joins");
    alice.type_line("hello bob");
    bob.wait_for("<alice> hello bob");

    // The server goes away; both clients notice, and come back with it.
    drop(server);
    bob.wait_for("* lost the server");
    alice.wait_for("* lost the server");
    let server = Program::start("chat_server", &server_args, &[]);
    server.wait_for("listening on");
    bob.wait_for("bob joins");
    alice.wait_for("alice joins");
    bob.type_line("welcome back");
    alice.wait_for("<bob> welcome back");

    // End of input: alice leaves normally.
    assert!(alice.finish(), "alice's client exits with 0");
    bob.wait_for("alice quits (normal)");
    assert!(bob.finish(), "bob's client exits with 0");
    drop(server);
}

#[test]
fn chat_server_and_client_start_from_profiles() {
    let dir = std::env::temp_dir().join(format!("aemp-book-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    let addr = format!("127.0.0.1:{}", free_port());
    // What the `aemp` commands of the chapter "Nodes, profiles, seeds and
    // the aemp tool" write.
    let text = format!(
        r#"{{"version":1, "secret":"SECRET", "seeds":["{addr}"],
            "profile":{{"chat-server":{{"binds":["{addr}"]}}, "chat-client":{{"nodeid":"anon/"}}}}}}"#
    );
    std::fs::write(&config, text).unwrap();
    let env = [("AEMP_CONFIG", config.to_str().unwrap())];
    let server = Program::start("chat_server", &["--profile", "chat-server"], &env);
    let line = server.wait_for("listening on");
    assert!(line.contains("chat server chat-server#"), "{line}");
    let mut pat = Program::start("chat_client", &["--profile", "chat-client", "--nick", "pat"], &env);
    pat.wait_for("pat joins");
    pat.type_line("configured");
    pat.wait_for("<pat> configured");
    assert!(pat.finish());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

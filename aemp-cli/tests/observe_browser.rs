//! `aemp observe` in a real browser: three nodes (`obs-a` in this process,
//! `obs-b` and `obs-c` each in a process of its own, so that one can really
//! die), a supervisor on `obs-a` whose child runs on `obs-b` or `obs-c`
//! (placed by the Global group `workers`), the observer (`aemp observe`)
//! and headless Chromium driven over the DevTools protocol.
//!
//! The page must show the three nodes up, the link from `obs-a` to the
//! child's node, the group and the child running; then the child's node is
//! killed, and the page must show that node down and the child restarted
//! on the other one, without a reload. The test ends with a screenshot of
//! the page (`observe.png` in the target's temporary directory; with
//! `AEMP_BOOK_SCREENSHOT=1`, also the book's `book/src/observe.png`).
//!
//! Without Chromium the test is skipped, except under CI (`CI` set), where
//! `.ci/run` installs it. It has its own `main` (no test harness): run
//! with `AEMP_OBSERVE_TEST_NODE=1` it is one of the node processes.

#[path = "support/cdp.rs"]
mod cdp;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aemp::{Node, NodeId};
use aemp_supervisor::{ChildSpec, Strategy, Supervisor, SupervisorSpec};

const SECRET: &str = "observe-browser-secret";
const WORKER: &str = "ObserveTest::worker";
const GROUP: &str = "workers";
/// How long the page may take to show each state.
const PATIENCE: Duration = Duration::from_secs(60);

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var_os("AEMP_OBSERVE_TEST_NODE").is_some() {
        rt.block_on(node_process());
        return;
    }
    let Some(chromium) = cdp::find_chromium() else {
        assert!(std::env::var_os("CI").is_none(), "CI needs chromium (.ci/run installs it)");
        println!("observe_browser: skipped, no chromium on PATH (apt-get install chromium)");
        return;
    };
    rt.block_on(the_page_follows_nodes_links_groups_and_a_restart_live(&chromium));
    println!("observe_browser: 1 passed, 0 failed");
}

/// A node of its own process: `ID SEED_ADDR`. It has a port in the group
/// `workers` and the children's init function, prints its address, and
/// lives until killed or until its stdin closes.
async fn node_process() {
    let args: Vec<String> = std::env::args().collect();
    let (id, seed) = (&args[1], &args[2]);
    let node = Node::builder()
        .id(id)
        .bind("127.0.0.1:0")
        .seed(seed)
        .secret(SECRET)
        .build()
        .await
        .expect("node starts");
    aemp_supervisor::install();
    register_worker(&node);
    let member = node.named_port("member", |_ctx, _m| {}).unwrap();
    node.register_group(&member, GROUP).unwrap();
    println!("{}", node.listen_addrs()[0]);
    tokio::task::spawn_blocking(|| std::io::stdin().lines().for_each(drop)).await.unwrap();
    node.shutdown().await;
}

fn register_worker(node: &Node) {
    node.register(WORKER, |ctx, _args| {
        let me = ctx.self_id();
        ctx.rcv(&me, |_ctx, _m| {});
        aemp_supervisor::on_shutdown(ctx, |_ctx| {});
    });
}

/// Starts a process and returns it with the first line it prints.
fn start(cmd: &mut Command) -> (Child, String) {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("process starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().to_owned())
}

fn node_process_cmd(id: &str, seed: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.env("AEMP_OBSERVE_TEST_NODE", "1").args([id, seed]);
    c
}

/// Kills and reaps the processes when the test ends, however it ends.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn the_page_follows_nodes_links_groups_and_a_restart_live(chromium: &std::path::Path) {
    let a = Node::builder().id("obs-a").bind("127.0.0.1:0").secret(SECRET).build().await.unwrap();
    let seed = a.listen_addrs()[0].clone();
    register_worker(&a);
    let (b, _) = start(&mut node_process_cmd("obs-b", &seed));
    let (c, _) = start(&mut node_process_cmd("obs-c", &seed));
    let mut procs = Reaper(vec![b, c]);
    eventually("both workers in the group", || a.find_group(GROUP).len() == 2).await;

    let spec =
        SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new("worker", WORKER).in_group(GROUP));
    let sup = Supervisor::start(&a, spec).await.unwrap();
    let first = sup.which_children().await.unwrap()[0].node.clone().expect("the child's node");
    let other = NodeId::new(if first.as_str() == "obs-b" { "obs-c" } else { "obs-b" }).unwrap();

    let (observer, line) = start(Command::new(env!("CARGO_BIN_EXE_aemp")).args([
        "--seed",
        &seed,
        "--secret",
        SECRET,
        "--timeout",
        "5",
        "observe",
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "0.25",
    ]));
    procs.0.push(observer);
    let url = line.split_once("http://").map(|(_, u)| format!("http://{u}")).expect("the observer's URL");

    let mut browser = cdp::Browser::launch(chromium, 1400, 1000).await;
    browser.open(&format!("{url}#node={first}")).await;
    let row = |sel: &str| format!("document.querySelector('{sel}') !== null");
    browser
        .wait_for(
            "the three nodes up",
            &["obs-a", "obs-b", "obs-c"]
                .map(|n| row(&format!("#nodes tr[data-node=\"{n}\"][data-state=\"up\"]")))
                .join(" && "),
            PATIENCE,
        )
        .await;
    let link = format!("obs-a {first}");
    browser
        .wait_for(
            "the link from the supervisor's node to the child's",
            &format!(
                "{} && {}",
                row(&format!("#links tr[data-link=\"{link}\"][data-state=\"up\"]")),
                row(&format!("#graph line[data-link=\"{link}\"]"))
            ),
            PATIENCE,
        )
        .await;
    browser
        .wait_for(
            "the group and its two members",
            &format!("document.querySelectorAll('#groups li[data-group=\"{GROUP}\"]').length === 2"),
            PATIENCE,
        )
        .await;
    browser
        .wait_for(
            "the child running on its node",
            &row(&format!("tr[data-child=\"worker\"][data-status=\"running\"][data-child-node=\"{first}\"]")),
            PATIENCE,
        )
        .await;

    // The child's node dies; the page must follow without a reload.
    browser.eval("window.__notReloaded = true").await;
    let victim = if first.as_str() == "obs-b" { 0 } else { 1 };
    procs.0[victim].kill().unwrap();
    procs.0[victim].wait().unwrap();
    browser
        .wait_for(
            "the child's node down",
            &row(&format!("#nodes tr[data-node=\"{first}\"][data-state=\"down\"]")),
            PATIENCE,
        )
        .await;
    browser
        .wait_for(
            "the child restarted on the other node",
            &row(&format!(
                "tr[data-child=\"worker\"][data-status=\"running\"][data-child-node=\"{other}\"][data-restarts=\"1\"]"
            )),
            PATIENCE,
        )
        .await;
    browser
        .wait_for(
            "the restart among the events",
            &format!(
                "document.querySelector('#events').textContent.includes('child worker restarted on {other}')"
            ),
            PATIENCE,
        )
        .await;
    assert_eq!(
        browser.eval("window.__notReloaded === true").await,
        serde_json::json!(true),
        "the page reloaded"
    );

    // For the book: the page after the restart, with the supervisor's node
    // selected (a click does the same).
    browser.eval("location.hash = '#node=obs-a'").await;
    browser
        .wait_for("obs-a's page", "document.querySelector('#node-title').textContent === 'obs-a'", PATIENCE)
        .await;
    let png = browser.screenshot(1400).await;
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("observe.png");
    std::fs::write(&out, &png).unwrap();
    println!("observe_browser: screenshot in {}", out.display());
    if std::env::var_os("AEMP_BOOK_SCREENSHOT").is_some() {
        let book = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src/observe.png");
        std::fs::write(&book, &png).unwrap();
        println!("observe_browser: screenshot written to the book");
    }
    drop(browser);
    drop(procs);
    a.shutdown().await;
}

/// Polls `cond` until it holds (panics after [`PATIENCE`]).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

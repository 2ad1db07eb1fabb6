//! `aemp observe` and `aemp run --metrics` as subprocesses, read over
//! plain HTTP: the page, its data and its updates, the token off
//! loopback, and the Prometheus endpoint. (The page itself, in a browser:
//! `observe_browser.rs`.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aemp::Node;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATIENCE: Duration = Duration::from_secs(60);

/// Kills the process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `aemp ARGS` and returns it with the first line of stdout or
/// stderr that contains `marker`.
fn start(args: &[&str], env: &[(&str, &std::path::Path)], marker: &'static str) -> (Killed, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aemp"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("aemp starts");
    let (tx, rx) = std::sync::mpsc::channel();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains(marker) {
                    let _ = tx.send(line);
                }
            }
        });
    }
    let line = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("aemp never printed {marker:?}"));
    (Killed(child), line)
}

/// `http://HOST:PORT/...` in a line: the port, and what follows it.
fn url_in(line: &str) -> (u16, String) {
    let rest = line.split_once("http://").expect("a URL").1;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let port = hostport.rsplit_once(':').unwrap().1.parse().unwrap();
    (port, format!("/{path}"))
}

/// A GET on 127.0.0.1:`port`: the status code, the head and as much of the
/// body as arrives until the server closes, or until `enough` is in it.
async fn get(port: u16, path: &str, enough: Option<&str>) -> (u16, String, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(PATIENCE, c.read(&mut chunk)).await.expect("an answer").unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if n == 0 || enough.is_some_and(|e| text.split_once("\r\n\r\n").is_some_and(|(_, b)| b.contains(e))) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_serves_the_page_its_data_and_updates_and_off_loopback_only_with_the_token() {
    let node =
        Node::builder().id("watched").bind("127.0.0.1:0").secret("observe-secret").build().await.unwrap();
    let p = node.named_port("service", |_ctx, _m| {}).unwrap();
    node.register_group(&p, "services").unwrap();
    let seed = node.listen_addrs()[0].clone();
    let (_observer, line) = start(
        &[
            "--seed",
            &seed,
            "--secret",
            "observe-secret",
            "observe",
            "--listen",
            "0.0.0.0:0",
            "--interval",
            "0.2",
        ],
        &[],
        "http://",
    );
    let (port, with_token) = url_in(&line);
    let token = with_token.split_once("?token=").expect("a token off loopback").1.to_owned();
    assert!(token.len() >= 32, "{token}");

    assert_eq!(get(port, "/", None).await.0, 403);
    assert_eq!(get(port, "/state?token=wrong", None).await.0, 403);
    let (status, head, body) = get(port, &with_token, None).await;
    assert_eq!(status, 200);
    assert!(head.contains("text/html") && head.contains("default-src 'self'"), "{head}");
    assert!(body.contains("<script src=\"app.js\""), "{body}");
    let (status, head, _) = get(port, "/app.js", None).await;
    assert!(status == 200 && head.contains("text/javascript"), "{head}");

    // The view fills in: the node up with its figures, and its group.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let state = loop {
        let (status, _, body) = get(port, &format!("/state?token={token}"), None).await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let seen = v["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "watched").cloned();
        if seen.as_ref().is_some_and(|n| {
            n["up"] == true
                && n["stats"]["named_ports"].as_array().is_some_and(|a| a.contains(&"service".into()))
        }) && v["groups"]["services"][0] == "watched#service"
        {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "the view never showed the node: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(state["observer"].as_str().unwrap().starts_with("anon/"), "{state}");

    // Updates come as server-sent events, the view now first.
    let (status, head, body) = get(port, &format!("/events?token={token}"), Some("\n\n")).await;
    assert!(status == 200 && head.contains("text/event-stream"), "{head}");
    let data = body.lines().find_map(|l| l.strip_prefix("data: ")).expect("an event");
    let v: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["observer"], state["observer"]);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_prometheus_metrics_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let text = r#"{"version":1,"secret":"m","profile":{"scraped":{"nodeid":"scraped-node","binds":["127.0.0.1:0"]}}}"#;
    std::fs::write(&cfg, text).unwrap();
    let (_run, line) = start(
        &["run", "scraped", "--metrics", "127.0.0.1:0"],
        &[("AEMP_CONFIG", &cfg)],
        "metrics at http://",
    );
    let (port, path) = url_in(&line);
    assert_eq!(path, "/metrics");
    let (status, head, body) = get(port, &path, None).await;
    assert!(status == 200 && head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(body.contains("# TYPE aemp_messages_dispatched_total counter"), "{body}");
    assert!(body.contains("aemp_uptime_seconds{node=\"scraped-node\"} "), "{body}");
}

//! The `aemp` commands of the book's chapter "Nodes, profiles, seeds and
//! the aemp tool" (`book/src/nodes.md`), run in the order the chapter
//! shows them, on a temporary configuration file. The book uses port 4040;
//! here a free port stands in for it. Keep the two in step.

use std::io::BufRead;
use std::process::{Command, Output, Stdio};

/// The chapter's configuration commands.
const CONFIGURE: &[&str] = &[
    "setsecret SECRET",
    "addseed 127.0.0.1:4040",
    "profile chat-server setbinds 127.0.0.1:4040",
    "profile chat-client setnodeid anon/",
    "showconfig chat-server",
];

/// The chapter's client commands, run while `aemp run chat-server` is up,
/// with what their output must contain and whether they succeed.
const CLIENT: &[(&str, &str, bool)] = &[
    ("ping chat-server", "chat-server answered in", true),
    ("nodes", "chat-server", true),
    ("rpc chat-server# info", r#"["chat-server"]"#, true),
    ("mon chat-server#nothing-here", "no_such_port", false),
];

fn aemp(config: &std::path::Path, line: &str, port: u16) -> Output {
    let line = line.replace("4040", &port.to_string());
    Command::new(env!("CARGO_BIN_EXE_aemp"))
        .env("AEMP_CONFIG", config)
        .env("HOME", config.parent().unwrap())
        .args(line.split_whitespace())
        .output()
        .expect("aemp runs")
}

fn ok(line: &str, o: &Output) -> String {
    assert!(o.status.success(), "aemp {line} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_book_s_aemp_commands_work_as_shown() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut shown = String::new();
    for line in CONFIGURE {
        shown = ok(line, &aemp(&cfg, line, port));
    }
    let merged: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(merged["binds"], serde_json::json!([format!("127.0.0.1:{port}")]));
    assert_eq!(merged["secret"], "<hidden>");

    let mut server = Running(
        Command::new(env!("CARGO_BIN_EXE_aemp"))
            .env("AEMP_CONFIG", &cfg)
            .env("HOME", dir.path())
            .args(["run", "chat-server"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = std::io::BufReader::new(server.0.stderr.take().unwrap());
    let mut l = String::new();
    while err.read_line(&mut l).unwrap() > 0 && !l.contains("running on") {
        l.clear();
    }
    assert!(l.contains("running on"), "aemp run did not start");
    for (line, want, succeeds) in CLIENT {
        let o = aemp(&cfg, line, port);
        assert_eq!(o.status.success(), *succeeds, "aemp {line}: {}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(want), "aemp {line}: {out}");
    }
}

/// A process that is killed when the test ends, also when it fails.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

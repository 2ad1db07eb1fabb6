//! Hostile peers (SPEC A.2, C.1-C.4): each test misbehaves in one way and
//! checks that the node closes that connection (or drops that request) and
//! logs why, and that it then still serves a well-behaved peer.
//!
//! Every test runs on a current-thread runtime with a log capture as the
//! thread's subscriber, so it sees exactly the log of its own nodes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aemp::{msg, NetConfig, Node, Value};
use aemp_tests::{Logs, Raw, PATIENCE};
use tokio::io::AsyncWriteExt as _;

const SECRET: &str = "hostile-test-secret";

fn cfg() -> NetConfig {
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some(SECRET.into());
    c.connect_interval = 0.05;
    c.connect_timeout = 5.0;
    c
}

/// A public node with an `echo` port that answers `[payload..., reply]`
/// (the shape of [`Node::call`]) with `payload...`.
async fn server(id: &str, tweak: impl FnOnce(&mut NetConfig)) -> Node {
    let mut c = cfg();
    tweak(&mut c);
    let n = Node::builder().id(id).net_config(c).build().await.unwrap();
    n.named_port("echo", |ctx, mut m| -> aemp::Result<()> {
        let reply = m.port(m.len().saturating_sub(1))?;
        m.pop();
        ctx.snd(&reply, m);
        Ok(())
    })
    .unwrap();
    n
}

fn addr(n: &Node) -> String {
    n.listen_addrs()[0].clone()
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A well-behaved node and a well-behaved raw client both get answers.
async fn still_serves(server: &Node) {
    let mut c = cfg();
    c.binds.clear();
    let client = Node::builder().id(unique("good-node")).net_config(c).build().await.unwrap();
    client.add_node_addr(server.id(), addr(server));
    let echo = server.id().port("echo").unwrap();
    let answer = client.call(&echo, msg!["hello"], PATIENCE).await.expect("a good node is served");
    assert_eq!(answer, msg!["hello"]);
    client.shutdown().await;

    let id = unique("good-raw");
    let mut raw = Raw::login(&addr(server), &id, SECRET, "json").await;
    raw.send_msg(&msg!["", "info", format!("{id}#r"), "probe"]).await.unwrap();
    let m = raw.msg_to("r").await.expect("a good raw client is answered");
    assert_eq!(m, msg!["r", "probe", server.id()].into_vec());
}

/// Sends `bytes` on a fresh connection and expects the node to close it.
async fn closes_after(server: &Node, bytes: &[u8]) {
    let mut raw = Raw::connect(&addr(server)).await;
    let _ = raw.send(bytes).await;
    assert!(raw.closed().await, "the node kept the connection open");
}

/// A nonce line as a peer would send.
fn nonce() -> String {
    aemp::wire::greeting::new_nonce()
}

#[tokio::test]
async fn a_wrong_secret_closes_the_connection_with_a_logged_reason() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-secret", |_| {}).await;
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.greet("intruder", "json", "").await.unwrap();
    raw.check_their_auth(SECRET).await.unwrap();
    let bad = raw.auth_line("not the secret");
    raw.send(format!("{bad}\n").as_bytes()).await.unwrap();
    assert!(raw.closed().await);
    logs.wait_for("incoming connection closed: authentication failed: intruder: the peer's hmac_blake3_256 token does not match").await;
    // The same with 0.9's method and a token of zeros.
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.greet("intruder09", "json", "").await.unwrap();
    raw.send(format!("hmac_md6_64_256;{};json\n", "0".repeat(64)).as_bytes()).await.unwrap();
    assert!(raw.closed().await);
    logs.wait_for("intruder09: the peer's hmac_md6_64_256 token does not match").await;
    // A node ID from a greeting that failed auth is not a known node (it
    // would be passed on to every peer in Global's node table).
    assert!(s.known_nodes().iter().all(|n| !n.as_str().starts_with("intruder")), "{:?}", s.known_nodes());
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_missing_auth_line_closes_the_connection_with_a_logged_reason() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-noauth", |_| {}).await;
    // Data where the auth line belongs.
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.greet("skipper", "json", "").await.unwrap();
    raw.send(b"[\"\",\"info\",\"skipper#r\"]\n").await.unwrap();
    assert!(raw.closed().await);
    logs.wait_for("auth line has 1 fields, expected 3").await;
    // End of stream where the auth line belongs.
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.greet("quitter", "json", "").await.unwrap();
    raw.sock.shutdown().await.unwrap();
    assert!(raw.closed().await);
    logs.wait_for("connection closed during the handshake").await;
    for gone in ["skipper", "quitter"] {
        assert!(!s.known_nodes().iter().any(|n| n.as_str() == gone), "{gone} is still known");
    }
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_handshake_that_never_finishes_is_dropped_at_its_deadline() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-slow", |c| c.handshake_timeout = 0.3).await;
    // Silent after the greeting.
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.send(b"aemp;0;silent;hmac_md6_64_256;json\n").await.unwrap();
    assert!(raw.closed().await);
    logs.wait_for("handshake did not finish in time").await;
    // Dripping one byte every 20 ms: always active, never done. The
    // deadline is absolute, not per read.
    let mut raw = Raw::connect(&addr(&s)).await;
    let greeting = format!("aemp;0;dripper;hmac_md6_64_256;json\n{}\n", nonce());
    let drip = async {
        for b in greeting.bytes() {
            if raw.send(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        raw
    };
    let mut raw = tokio::time::timeout(PATIENCE, drip).await.unwrap();
    assert!(raw.closed().await);
    assert_eq!(logs.count("handshake did not finish in time"), 2, "{}", logs.text());
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn an_oversized_line_or_frame_closes_the_connection_at_the_configured_limit() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-big", |c| {
        c.max_line = 256;
        c.max_message = 4096;
    })
    .await;
    // A greeting line over max_line, refused before its end arrives.
    closes_after(&s, format!("aemp;0;{}", "x".repeat(300)).as_bytes()).await;
    logs.wait_for("handshake line longer than the limit of 256 bytes").await;
    // A msgpack frame announcing 1 MiB, refused from its length alone.
    let mut raw = Raw::login(&addr(&s), "bigframe", SECRET, "msgpack").await;
    let mut frame = Vec::new();
    aemp::wire::codec::ber_encode(1 << 20, &mut frame);
    frame.push(0x91);
    let _ = raw.send(&frame).await;
    assert!(raw.closed().await);
    logs.wait_for("msgpack frame of 1048576 bytes exceeds the limit of 4096 bytes").await;
    // A JSON message over max_message (complete, but too long).
    let mut raw = Raw::login(&addr(&s), "bigjson", SECRET, "json").await;
    let _ = raw.send(format!("[\"echo\",\"{}\"]", "y".repeat(5000)).as_bytes()).await;
    assert!(raw.closed().await);
    logs.wait_for("JSON message longer than 4096 bytes").await;
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_json_array_that_never_closes_is_cut_off_at_max_message() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-endless", |c| c.max_message = 4096).await;
    let mut raw = Raw::login(&addr(&s), "endless", SECRET, "json").await;
    let _ = raw.send(b"[\"echo\"").await;
    // Keep sending elements; the node must close before we run out of patience.
    let feeder = async {
        for _ in 0..100_000 {
            if raw.send(b",\"more and more\"").await.is_err() {
                break;
            }
        }
        raw
    };
    let mut raw = tokio::time::timeout(PATIENCE, feeder).await.unwrap();
    assert!(raw.closed().await);
    logs.wait_for("JSON message longer than 4096 bytes").await;
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_closes_the_connection_with_a_logged_reason() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-utf8", |_| {}).await;
    // In the greeting.
    closes_after(&s, b"aemp;0;bad\xff\xfeid;hmac_md6_64_256;json\n").await;
    logs.wait_for("handshake line is not valid UTF-8").await;
    // In a JSON message.
    let mut raw = Raw::login(&addr(&s), "badjson", SECRET, "json").await;
    let _ = raw.send(b"[\"echo\",\"\xc3\x28\"]").await;
    assert!(raw.closed().await);
    logs.wait_for("JSON message is not valid UTF-8").await;
    // In a msgpack string.
    let mut raw = Raw::login(&addr(&s), "badmp", SECRET, "msgpack").await;
    let _ = raw.send(&[5, 0x92, 0xa1, b'x', 0xa1, 0xff]).await;
    assert!(raw.closed().await);
    logs.wait_for("invalid UTF-8 in a msgpack string").await;
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn deeply_nested_values_are_refused_without_overflowing_the_stack() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-deep", |_| {}).await;
    // 100k '[' in JSON.
    let mut raw = Raw::login(&addr(&s), "deepjson", SECRET, "json").await;
    let _ = raw.send(&vec![b'['; 100_000]).await;
    assert!(raw.closed().await);
    logs.wait_for_line(&[
        "closing connection",
        "JSON message nested deeper than 128 levels",
        "node=deepjson",
    ])
    .await;
    // 100k nested one-element arrays in msgpack, one complete frame.
    let mut raw = Raw::login(&addr(&s), "deepmp", SECRET, "msgpack").await;
    let mut body = vec![0x91u8; 100_000];
    body.push(0xc0);
    let mut frame = Vec::new();
    aemp::wire::codec::ber_encode(body.len(), &mut frame);
    frame.extend_from_slice(&body);
    let _ = raw.send(&frame).await;
    assert!(raw.closed().await);
    logs.wait_for("msgpack message nested deeper than 128 levels").await;
    // Maps too: {"a":{"a":...}} in JSON.
    let mut raw = Raw::login(&addr(&s), "deepmap", SECRET, "json").await;
    let _ = raw.send(format!("[\"echo\",{}", "{\"a\":".repeat(50_000)).as_bytes()).await;
    assert!(raw.closed().await);
    logs.wait_for_line(&["closing connection", "JSON message nested deeper than 128 levels", "node=deepmap"])
        .await;
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_connections_is_held_to_max_connections() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-flood", |c| {
        c.max_connections = 4;
        c.handshake_timeout = 60.0;
    })
    .await;
    // 40 connections at once, none of which says anything.
    let dials: Vec<_> = (0..40).map(|_| tokio::spawn(Raw::connect_owned(addr(&s)))).collect();
    let mut socks = Vec::new();
    for d in dials {
        socks.push(d.await.unwrap());
    }
    let mut greeted = 0;
    for raw in &mut socks {
        if raw.line().await.is_some() {
            greeted += 1;
        }
    }
    assert!(greeted <= 4, "{greeted} connections were served with max_connections = 4");
    assert!(greeted >= 1);
    logs.wait_for("connection refused: 4 connections open").await;
    // The flood ends; the node serves again.
    drop(socks);
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_and_malformed_node_port_requests_are_logged_and_the_connection_stays() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-kernel", |_| {}).await;
    let mut raw = Raw::login(&addr(&s), "prober", SECRET, "json").await;
    for m in [
        msg!["", "frobnicate", 1],
        msg!["", "Some::perl_function", "arg"],
        msg!["", 42],
        msg!["", "mon1"],
        msg!["", "snd", 7, "x"],
        msg!["", "info", 3],
        msg![17, "a number as destination"],
        msg!["no-such-port", "dropped silently"],
    ] {
        raw.send_msg(&m).await.unwrap();
    }
    raw.send_msg(&msg!["", "info", "prober#r", "still here"]).await.unwrap();
    assert_eq!(raw.msg_to("r").await.unwrap(), msg!["r", "still here", "h-kernel"].into_vec());
    assert!(logs.contains("tag=\"frobnicate\"") && logs.contains("unknown node-port request ignored"));
    assert!(logs.contains("tag=\"Some::perl_function\""));
    assert!(logs.contains("node-port request whose tag is a integer dropped"), "{}", logs.text());
    assert_eq!(logs.count("malformed node-port request dropped"), 3, "{}", logs.text());
    assert!(logs.contains("message whose destination is a integer dropped"));
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn spawn_of_an_unregistered_or_invalid_name_is_refused_and_reported_to_monitors() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-spawn", |_| {}).await;
    let mut raw = Raw::login(&addr(&s), "spawner", SECRET, "json").await;
    raw.send_msg(&msg!["", "AnyEvent::MP::_spawn", "evil.1", "Evil::init", "x"]).await.unwrap();
    raw.send_msg(&msg!["", "mon1", "evil.1"]).await.unwrap();
    let kil = loop {
        let m = raw.msg_to("").await.unwrap();
        if m.get(1) == Some(&Value::from("kil")) {
            break m;
        }
    };
    assert_eq!(kil, msg!["", "kil", "evil.1", "die", "unknown init function \"Evil::init\""].into_vec());
    logs.wait_for("spawn of an unregistered init function refused").await;
    // Invalid names, and a name that exists, are refused too.
    for name in ["", "a#b", "echo"] {
        raw.send_msg(&msg!["", "AnyEvent::MP::_spawn", name, "AnyEvent::MP::Global::connect", 0, "x"])
            .await
            .unwrap();
    }
    raw.send_msg(&msg!["echo", "echo survives", "spawner#r"]).await.unwrap();
    assert_eq!(raw.msg_to("r").await.unwrap(), msg!["r", "echo survives"].into_vec());
    assert_eq!(logs.count("spawn refused: invalid port name"), 2, "{}", logs.text());
    assert!(logs.contains("spawn refused: a port of that name exists"));
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn eval_is_refused_answered_and_logged() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-eval", |_| {}).await;
    let mut raw = Raw::login(&addr(&s), "evaluator", SECRET, "json").await;
    raw.send_msg(&msg!["", "eval", "system('touch /tmp/pwned')", "evaluator#r", "pre"]).await.unwrap();
    raw.send_msg(&msg!["", "eval", "1"]).await.unwrap();
    assert_eq!(raw.msg_to("r").await.unwrap(), msg!["r", "pre", "eval is not supported by aemp"].into_vec());
    logs.wait_for("eval request refused").await;
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn cleartext_is_refused_unless_allowed_even_with_the_right_secret() {
    let logs = Logs::new();
    let _g = logs.capture();
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let s = server("h-clear", |_| {}).await;
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.greet("clear", "json", "").await.unwrap();
    raw.send(format!("cleartext;{hex};json\n").as_bytes()).await.unwrap();
    assert!(raw.closed().await);
    logs.wait_for("peer used auth method cleartext, which is not allowed by the configuration").await;
    still_serves(&s).await;
    s.shutdown().await;
    // Allowed by the configuration, the same line is accepted.
    let s = server("h-clear-ok", |c| c.allow_cleartext = true).await;
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.greet("clear", "json", "").await.unwrap();
    raw.check_their_auth(SECRET).await.unwrap();
    raw.send(format!("cleartext;{hex};json\n").as_bytes()).await.unwrap();
    raw.send_msg(&msg!["", "info", "clear#r"]).await.unwrap();
    assert_eq!(raw.msg_to("r").await.unwrap(), msg!["r", "h-clear-ok"].into_vec());
    s.shutdown().await;
}

#[tokio::test]
async fn tls_with_a_certificate_from_another_authority_is_refused() {
    let logs = Logs::new();
    let _g = logs.capture();
    let ca = aemp::generate_cert_pem("Our CA").unwrap();
    let other_ca = aemp::generate_cert_pem("Their CA").unwrap();
    let s =
        server("h-tls", |c| c.cert_pem = Some(aemp::tls::generate_signed_by(&ca, "h-tls").unwrap())).await;
    let mut c = cfg();
    c.binds.clear();
    c.connect_timeout = 1.0;
    c.cert_pem = Some(aemp::tls::generate_signed_by(&other_ca, "h-tls-stranger").unwrap());
    let stranger = Node::builder().id("h-tls-stranger").net_config(c.clone()).build().await.unwrap();
    stranger.add_node_addr(s.id(), addr(&s));
    let r = aemp_tests::death(&stranger, &s.id().port("echo").unwrap()).await;
    assert_eq!(r, aemp::Reason::transport_error("h-tls", "unable to connect"));
    logs.wait_for("incoming connection closed: TLS: handshake with h-tls-stranger").await;
    stranger.shutdown().await;
    // A node whose certificate our CA signed is served.
    c.cert_pem = Some(aemp::tls::generate_signed_by(&ca, "h-tls-friend").unwrap());
    c.connect_timeout = 5.0;
    let friend = Node::builder().id("h-tls-friend").net_config(c).build().await.unwrap();
    friend.add_node_addr(s.id(), addr(&s));
    let echo = s.id().port("echo").unwrap();
    assert_eq!(friend.call(&echo, msg!["tls ok"], PATIENCE).await.unwrap(), msg!["tls ok"]);
    friend.shutdown().await;
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_greetings_close_the_connection_with_a_logged_reason() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-greet", |_| {}).await;
    let n = nonce();
    for (bytes, reason) in [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(), "not an AEMP greeting"),
        (format!("aemp;1;v1;hmac_md6_64_256;json\n{n}\n"), "version mismatch: peer speaks protocol 1"),
        (format!("aemp;0;perl;hmac_md6_64_256;storable;timeout=30\n{n}\n"), "no framing in common with perl"),
        ("aemp;0;x;hmac_md6_64_256;json\nnot base64!\n".to_owned(), "not base64"),
        (format!("aemp;0;x#y;hmac_md6_64_256;json\n{n}\n"), "contains '#'"),
        (format!("aemp;0;nothing;md5;json\n{n}\n"), "no auth method in common with nothing"),
    ] {
        closes_after(&s, bytes.as_bytes()).await;
        logs.wait_for(reason).await;
    }
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_peer_claiming_our_own_node_id_is_refused() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-self", |_| {}).await;
    closes_after(&s, format!("aemp;0;h-self;hmac_md6_64_256;json;aemp=1\n{}\n", nonce()).as_bytes()).await;
    logs.wait_for("the peer claims our own node ID h-self").await;
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_peer_claiming_the_id_of_a_connected_node_is_refused_and_the_real_one_keeps_its_link() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-dup", |_| {}).await;
    // A 0.9-style peer (no aemp=1) is connected: a second connection
    // claiming its ID is closed at the greeting (SPEC A.2).
    let mut old = Raw::login(&addr(&s), "h-dup-09", SECRET, "json").await;
    old.send_msg(&msg!["", "info", "h-dup-09#r", "first"]).await.unwrap();
    assert_eq!(old.msg_to("r").await.unwrap(), msg!["r", "first", "h-dup"].into_vec());
    closes_after(&s, format!("aemp;0;h-dup-09;hmac_md6_64_256;json\n{}\n", nonce()).as_bytes()).await;
    logs.wait_for("incoming connection closed: protocol error: already connected to h-dup-09").await;
    old.send_msg(&msg!["", "info", "h-dup-09#r", "second"]).await.unwrap();
    assert_eq!(old.msg_to("r").await.unwrap(), msg!["r", "second", "h-dup"].into_vec());

    // An aemp node is connected: a peer claiming its ID, be it as a 0.9
    // node or as the aemp node after a restart (a new incarnation), gets
    // as far as the auth line, which it cannot make.
    let b = server("h-dup-b", |_| {}).await;
    b.add_node_addr(s.id(), addr(&s));
    let echo = s.id().port("echo").unwrap();
    assert_eq!(b.call(&echo, msg!["up"], PATIENCE).await.unwrap(), msg!["up"]);
    let fired = b.dead(&echo);
    for extra in ["", ";aemp=1;incarnation=forged"] {
        let mut raw = Raw::connect(&addr(&s)).await;
        raw.greet("h-dup-b", "json", extra).await.unwrap();
        raw.send(format!("{}\n", raw.auth_line("guessed secret")).as_bytes()).await.unwrap();
        assert!(raw.closed().await);
    }
    assert_eq!(logs.count("h-dup-b: the peer's hmac_blake3_256 token does not match"), 2, "{}", logs.text());
    // The real node's link was never disturbed: its monitor has not fired,
    // it still talks, and no connection came up again.
    assert_eq!(b.call(&echo, msg!["still up"], PATIENCE).await.unwrap(), msg!["still up"]);
    assert_eq!(logs.count("connection up node=h-dup-b"), 1, "{}", logs.text());
    tokio::select! {
        r = fired => panic!("the real node's monitor fired: {r}"),
        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
    still_serves(&s).await;
    b.shutdown().await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_failed_handshake_claiming_a_node_id_does_not_block_later_links_to_that_node() {
    let logs = Logs::new();
    let _g = logs.capture();
    // "h-victim" sorts before "z-...": a stale claim from a connection it
    // seemed to dial would make every dial of ours look like the loser of
    // a simultaneous connection.
    let s = server("z-stale", |_| {}).await;
    let victim = server("h-victim", |_| {}).await;
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.greet("h-victim", "json", ";aemp=1;incarnation=forged").await.unwrap();
    raw.hang_up().await;
    assert!(raw.closed().await, "the node ends the handshake that lost its peer");
    logs.wait_for("connection closed during the handshake").await;
    s.add_node_addr(victim.id(), addr(&victim));
    let echo = victim.id().port("echo").unwrap();
    let r = s.call(&echo, msg!["reach the real one"], PATIENCE).await;
    assert_eq!(r.expect("the real node is reachable"), msg!["reach the real one"]);
    victim.shutdown().await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_silent_handshake_giving_a_node_id_does_not_hold_off_our_dial_to_that_node() {
    // A stranger gives the real node's ID in its greeting and then stays
    // silent, for as long as the handshake may take (an hour here). It
    // has not authenticated, so it holds nothing: our dial to the real
    // node goes ahead. ("h-held" sorts before "z-...", as for a node whose
    // connections would win a simultaneous dial.)
    let s = server("z-holder", |c| c.handshake_timeout = 3600.0).await;
    let victim = server("h-held", |_| {}).await;
    let mut raw = Raw::connect(&addr(&s)).await;
    raw.greet("h-held", "json", ";aemp=1;incarnation=forged").await.unwrap();
    s.add_node_addr(victim.id(), addr(&victim));
    let echo = victim.id().port("echo").unwrap();
    let r = s.call(&echo, msg!["past the stranger"], PATIENCE).await;
    assert_eq!(r.expect("the real node is reachable"), msg!["past the stranger"]);
    drop(raw);
    victim.shutdown().await;
    s.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_hold_every_handshake_slot() {
    let logs = Logs::new();
    let _g = logs.capture();
    let s = server("h-perip", |c| c.max_handshakes_per_ip = 3).await;
    // Three sockets from 127.0.0.1 that never greet hold that address's
    // handshake slots.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(Raw::connect(&addr(&s)).await);
    }
    // A real client from the same address still gets in: the oldest silent
    // socket makes room for it.
    let id = unique("h-perip-real");
    let mut real = Raw::login(&addr(&s), &id, SECRET, "json").await;
    real.send_msg(&msg!["", "info", format!("{id}#r"), "probe"]).await.unwrap();
    assert_eq!(real.msg_to("r").await.unwrap(), msg!["r", "probe", "h-perip"].into_vec());
    assert!(silent[0].closed().await, "the oldest silent socket was kept");
    logs.wait_for("handshake ended to make room: 3 newer handshakes from the same address").await;
    // Another address is served meanwhile.
    let mut other =
        Raw::connect_from(&addr(&s), "127.0.0.2").await.authenticate("h-perip-other", SECRET, "json").await;
    other.send_msg(&msg!["", "info", "h-perip-other#r", "probe"]).await.unwrap();
    assert_eq!(other.msg_to("r").await.unwrap(), msg!["r", "probe", "h-perip"].into_vec());
    // The other two were still held: new sockets from 127.0.0.1 end them.
    let mut more = Vec::new();
    for _ in 0..3 {
        more.push(Raw::connect(&addr(&s)).await);
    }
    assert!(silent[1].closed().await && silent[2].closed().await);
    drop(more);
    still_serves(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn a_call_that_times_out_says_why_the_last_connection_attempt_failed() {
    let s = server("h-why", |_| {}).await;
    let mut c = cfg();
    c.binds.clear();
    c.secret = Some("not the secret".into());
    let client = Node::builder().id(unique("h-why-client")).net_config(c).build().await.unwrap();
    client.add_node_addr(s.id(), addr(&s));
    let echo = s.id().port("echo").unwrap();
    let text = client.call(&echo, msg!["hi"], Duration::from_secs(2)).await.unwrap_err().to_string();
    assert!(text.contains("no reply from h-why#echo (last attempt: 127.0.0.1:"), "{text}");
    assert!(text.contains("does not match"), "{text}");
    // A node nobody gave an address for.
    let ghost = aemp::NodeId::new(unique("h-why-ghost")).unwrap().port("x").unwrap();
    let text = client.call(&ghost, msg![], Duration::from_secs(1)).await.unwrap_err().to_string();
    assert!(text.ends_with("(last attempt: no known address)"), "{text}");
    client.shutdown().await;
    s.shutdown().await;
}

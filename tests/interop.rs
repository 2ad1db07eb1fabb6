//! The node as a peer of an AnyEvent::MP 0.9 node sees it: a raw client
//! that speaks protocol version 0 byte by byte, as the captures in
//! `transcripts-0.9.txt` (sessions C and D) do.

use aemp::wire::auth::{self, AuthLine, AuthMethod};
use aemp::wire::codec::{FrameReader, JsonReader, Limits};
use aemp::{msg, NetConfig, Node, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "aemp-test-secret-0123456789";
const NONCE: &str =
    "H5zJa4inrdNrzXlLF5XgTTCPaa1hXiNWc/uyRZZqaESnx8CYxaqDJDKhQK5di9VSINB6iyuVuDonxZpy0qYssCLa";

async fn server() -> Node {
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some(SECRET.into());
    let n = Node::builder().id("aemp-server").net_config(c).build().await.unwrap();
    n.named_port("echo", |ctx, m| -> aemp::Result<()> {
        let reply = m.port(1)?;
        let mut out = aemp::Msg::from(&m[2..]);
        match m.tag() {
            Some("ping") => out.insert(0, Value::from("pong")),
            Some(t) => out.insert(0, Value::from(t)),
            None => {}
        }
        ctx.snd(&reply, out);
        Ok(())
    })
    .unwrap();
    n
}

struct Raw {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(node: &Node) -> Raw {
        let sock = TcpStream::connect(node.listen_addrs()[0].as_str()).await.unwrap();
        Raw { sock, buf: Vec::new() }
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..=i);
                return Some(line);
            }
            let mut chunk = [0u8; 4096];
            let n =
                tokio::time::timeout(aemp_tests::PATIENCE, self.sock.read(&mut chunk)).await.ok()?.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends greeting `l1` with [`NONCE`], reads the node's greeting and
    /// auth line, and answers with an hmac_md6_64_256 token, as 0.9 does.
    async fn authenticate_as_0_9(&mut self, l1: &str) {
        self.send(&format!("{l1}\n{NONCE}\n")).await;
        let r1 = self.line().await.unwrap();
        let r2 = self.line().await.unwrap();
        let _their_auth = self.line().await.unwrap();
        let tok = auth::token(AuthMethod::HmacMd6, Some(SECRET), (l1, NONCE), (&r1, &r2)).unwrap();
        self.send(&format!("hmac_md6_64_256;{tok};json\n")).await;
    }

    async fn send(&mut self, text: &str) {
        self.sock.write_all(text.as_bytes()).await.unwrap();
    }

    /// The next JSON message, or `None` when the node closes the connection.
    async fn msg(&mut self, r: &mut JsonReader) -> Option<Vec<Value>> {
        loop {
            if let Some((m, used)) = r.decode(&self.buf).unwrap() {
                self.buf.drain(..used);
                return Some(m);
            }
            let mut chunk = [0u8; 4096];
            let n =
                tokio::time::timeout(aemp_tests::PATIENCE, self.sock.read(&mut chunk)).await.ok()?.ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p34_a_minimal_json_peer_authenticates_with_hmac_md6_and_talks() {
    let node = server().await;
    let mut raw = Raw::connect(&node).await;
    let l1 = "aemp;0;pyraw;hmac_md6_64_256;json;provider=py-raw-0;timeout=30";
    raw.send(&format!("{l1}\n{NONCE}\n")).await;
    let r1 = raw.line().await.unwrap();
    let r2 = raw.line().await.unwrap();
    assert!(
        r1.starts_with("aemp;0;aemp-server;hmac_blake3_256,tls_md6_64_256,hmac_md6_64_256;msgpack,json;"),
        "{r1}"
    );
    // The node picks the first method of OUR list it can send, and json.
    let a = AuthLine::parse(&raw.line().await.unwrap()).unwrap();
    assert_eq!((a.method.as_str(), a.framing.as_str()), ("hmac_md6_64_256", "json"));
    auth::verify(AuthMethod::HmacMd6, Some(SECRET), (l1, NONCE), (&r1, &r2), &a.token).unwrap();
    let tok = auth::token(AuthMethod::HmacMd6, Some(SECRET), (l1, NONCE), (&r1, &r2)).unwrap();
    raw.send(&format!("hmac_md6_64_256;{tok};json\n")).await;
    // Session C's six messages, LF separated.
    raw.send(concat!(
        "[\"echo\",\"ping\",\"pyraw#r1\",\"hi from python\"]\n",
        "[\"echo\",\"py-tag\",\"pyraw#r1\",[1,2,{\"x\":null}]]\n",
        "[\"\",\"time\",\"pyraw#r2\"]\n",
        "[\"\",\"info\",\"pyraw#r3\"]\n",
        "[\"\",\"mon1\",\"no-such-port\"]\n",
        "[]\n"
    ))
    .await;
    let mut r = JsonReader::new(Limits::default());
    let mut got = Vec::new();
    while got.len() < 5 {
        let m = raw.msg(&mut r).await.expect("a message");
        // Global's greeting messages come first (SPEC A.10); skip them.
        if m.first().and_then(Value::as_str).is_some_and(|d| d.is_empty())
            && m.get(1).and_then(Value::as_str) == Some("AnyEvent::MP::_spawn")
        {
            assert_eq!(m[3], Value::from("AnyEvent::MP::Global::connect"));
            continue;
        }
        if m.get(1).and_then(Value::as_str).is_some_and(|t| t == "addr" || t == "mon1") {
            continue;
        }
        got.push(m);
    }
    assert_eq!(got[0], msg!["r1", "pong", "hi from python"].into_vec());
    let list = Value::Array(vec![Value::from(1), Value::from(2), {
        let mut m = aemp::Map::new();
        m.insert("x".into(), Value::Null);
        Value::Map(m)
    }]);
    assert_eq!(got[1], vec![Value::from("r1"), Value::from("py-tag"), list]);
    assert_eq!(got[2][0], Value::from("r2"));
    assert!(matches!(got[2][1], Value::Float(f) if f.fract() != 0.0), "time has a fraction: {:?}", got[2]);
    assert_eq!(got[3], msg!["r3", "aemp-server"].into_vec());
    assert_eq!(
        got[4],
        msg!["", "kil", "no-such-port", "no_such_port", "cannot monitor nonexistent port"].into_vec()
    );
    node.shutdown().await;
}

/// `aemp_stats` is an aemp request (a 0.9 node logs it as unknown and does
/// not answer), but any peer may send it: the answer is plain JSON, and
/// the node describes that peer's link as a 0.9 one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_peer_asks_for_the_figures_and_its_link_is_described_as_a_0_9_one() {
    let node = server().await;
    let mut raw = Raw::connect(&node).await;
    let l1 = "aemp;0;pyraw;hmac_md6_64_256;json;provider=py-raw-0;timeout=30";
    raw.authenticate_as_0_9(l1).await;
    raw.send("[\"\",\"aemp_stats\",\"pyraw#r\",\"tag\"]\n").await;
    let mut r = JsonReader::new(Limits::default());
    let answer = loop {
        let m = raw.msg(&mut r).await.expect("an answer");
        if m.first().and_then(Value::as_str) == Some("r") {
            break m;
        }
    };
    assert_eq!(answer[1], Value::from("tag"));
    let stats = aemp::NodeStats::from_value(&answer[2]).unwrap();
    assert_eq!(stats.node.as_str(), "aemp-server");
    let link = stats.links.iter().find(|l| l.peer.as_str() == "pyraw").expect("the raw peer's link");
    assert!(link.up && !link.aemp && !link.tls, "{link:?}");
    assert_eq!(link.recv_framing.as_deref(), Some("json"));
    assert_eq!(link.auth.as_deref(), Some("hmac_md6_64_256"));
    assert!(link.messages_received >= 1, "{link:?}");
    node.shutdown().await;
}

// The refusals (wrong secret, cleartext, version 1, storable only, our own
// node ID, oversized lines, a handshake that never ends) are in hostile.rs,
// with the reason each one logs.

/// Session A of `transcripts-0.9.txt`, from the connecting side: given its
/// greeting and nonce as ours and the server's as theirs, aemp's negotiation
/// and token code produce the client's recorded auth line byte for byte,
/// and accept the server's.
#[test]
fn session_a_auth_lines_are_reproduced_from_the_recorded_greetings() {
    use aemp::wire::greeting;
    let c1 = "aemp;0;anon/Lscqse5YByBNl4qfcBWlqA=;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;timeout=12;peeraddr=127.0.0.1:40401";
    let c2 = "fR47gOZmuMWVIgFTj18eXHrBlBd6W2h+Rthz6IE14cOKv85l0iK3va91ftUYT3SFcqu+9zMo5eF0bqKpjR6nsGDB";
    let s1 = "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;peeraddr=127.0.0.1:52166;timeout=12";
    let s2 = "5HP9UiuK6M10r4EbSXEayX5keyC2DHR1Pb1LdQAKyalHL2AhDBCdHWFlCh56aJt1t9uJItnMavGreDpU2bVkw9xc";
    let server = greeting::parse(s1).unwrap();
    let tls = greeting::tls_on(false, &server);
    let method = greeting::choose_auth(&server.auths, &greeting::sendable_auths(true, false), tls).unwrap();
    let framing = greeting::choose_framing(&server.framings, &greeting::OUR_FRAMINGS).unwrap();
    let m = AuthMethod::from_name(&method).unwrap();
    let token = auth::token(m, Some(SECRET), (c1, c2), (s1, s2)).unwrap();
    let line = AuthLine { method, token, framing }.to_line();
    assert_eq!(line, "hmac_md6_64_256;d06217fd6654bbf30af198ac5dfa79427309c1cad91e0c877f535d9eafaeace2;json");
    // The server's recorded line is accepted with the same secret...
    let theirs = AuthLine::parse(
        "hmac_md6_64_256;cdfae27e2a7b68c8a03bfbd07a2432cf72b1b776014431c55a5f7b27a4adea16;json",
    )
    .unwrap();
    let m = auth::accept_peer_method(&theirs.method, false, false, tls).unwrap();
    auth::verify(m, Some(SECRET), (c1, c2), (s1, s2), &theirs.token).unwrap();
    greeting::accept_peer_framing(&theirs.framing).unwrap();
    // ...and refused with another.
    assert!(auth::verify(m, Some("another secret"), (c1, c2), (s1, s2), &theirs.token).is_err());
}

/// The data phase of session A: the node's first messages after the auth
/// lines have the shape 0.9 sends (Global's spawn, mon1, addr).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_auth_the_node_opens_global_as_0_9_does() {
    let node = server().await;
    let mut raw = Raw::connect(&node).await;
    let l1 = "aemp;0;anon/Lscqse5YByBNl4qfcBWlqA=;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;timeout=12";
    raw.authenticate_as_0_9(l1).await;
    let mut r = JsonReader::new(Limits::default());
    let spawn = raw.msg(&mut r).await.unwrap();
    assert_eq!(spawn[0], Value::from(""));
    assert_eq!(spawn[1], Value::from("AnyEvent::MP::_spawn"));
    let pname = spawn[2].as_str().unwrap().to_owned();
    assert_eq!(
        &spawn[3..],
        &[Value::from("AnyEvent::MP::Global::connect"), Value::from(0), Value::from("aemp-server")]
    );
    assert_eq!(raw.msg(&mut r).await.unwrap(), msg!["", "mon1", pname.as_str()].into_vec());
    let addr = raw.msg(&mut r).await.unwrap();
    assert_eq!(&addr[..2], &[Value::from(pname.as_str()), Value::from("addr")]);
    assert_eq!(addr[2], Value::from(node.listen_addrs()));
    node.shutdown().await;
}

/// A 0.9 peer's Global messages (as in session A, server to client) reach
/// aemp's Global: its group members become visible (SPEC C.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_9_peers_global_registrations_are_learned() {
    let node = server().await;
    let (tx, mut joined) = tokio::sync::mpsc::unbounded_channel();
    node.mon_group("echo", move |ev| {
        let _ = tx.send(ev.clone());
    });
    let mut raw = Raw::connect(&node).await;
    let l1 = "aemp;0;perl-node;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;timeout=12";
    raw.authenticate_as_0_9(l1).await;
    raw.send(concat!(
        r#"["","AnyEvent::MP::_spawn","COprXEuvxA9Jw8GcPOV5Aw=.b","AnyEvent::MP::Global::connect",0,"perl-node"]"#,
        r#"["","mon1","COprXEuvxA9Jw8GcPOV5Aw=.b"]"#,
        r#"["COprXEuvxA9Jw8GcPOV5Aw=.b","addr",["127.0.0.1:40400"]]"#,
        r#"["COprXEuvxA9Jw8GcPOV5Aw=.b","set",{"echo":["perl-node#0hJrCIiX4OQ.a"]}]"#,
    ))
    .await;
    let ev = aemp_tests::within(joined.recv()).await.unwrap();
    assert_eq!(ev, aemp::GroupEvent::Joined(aemp::PortId::new("perl-node#0hJrCIiX4OQ.a").unwrap()));
    assert_eq!(node.find_group("echo").len(), 1);
    // The peer's address was learned too.
    assert!(node.known_nodes().iter().any(|n| n.as_str() == "perl-node"));
    node.shutdown().await;
}

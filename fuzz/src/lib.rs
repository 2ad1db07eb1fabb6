//! The bodies of aemp's fuzz targets: each takes arbitrary bytes, feeds
//! them to one piece of the code that reads the network, and panics only
//! when an invariant breaks (decoding itself must never panic, SPEC C.3).
//!
//! The `fuzz_targets/` binaries call these under libFuzzer (`cargo fuzz`,
//! nightly); the main test suite runs the same functions over the checked-in
//! corpus (`tests/fuzz_corpus.rs`), so every input here is also a plain
//! `cargo test` on stable.

use std::time::Duration;

use aemp::wire::auth::{self, AuthLine, AuthMethod};
use aemp::wire::codec::{self, FrameReader, JsonReader, Limits, MsgpackReader};
use aemp::wire::greeting::{self, LineReader};
use aemp::{msg, Msg, NetConfig, Node, NodeId, Value};

/// Equality of values where floats compare by their bits (NaN equals
/// itself, `-0.0` differs from `0.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, x), (ky, y))| kx == ky && same(x, y))
        }
        _ => a == b,
    }
}

fn same_msgs(a: &[Vec<Value>], b: &[Vec<Value>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| same(&Value::Array(x.clone()), &Value::Array(y.clone())))
}

/// Feeds `bytes` to `r` in pieces of `chunk` bytes, as a connection's reader
/// does; returns the messages and whether the stream ended in an error.
pub fn decode_stream<R: FrameReader>(mut r: R, bytes: &[u8], chunk: usize) -> (Vec<Vec<Value>>, bool) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        let mut start = 0;
        loop {
            match r.decode(&buf[start..]) {
                Ok(Some((m, used))) => {
                    assert!(used > 0 && used <= buf.len() - start, "bytes_used out of range");
                    start += used;
                    out.push(m);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(matches!(e, aemp::Error::Decode(_)), "not a decode error: {e:?}");
                    return (out, true);
                }
            }
        }
        buf.drain(..start);
    }
    (out, false)
}

/// The first byte chooses a piece size and the limits; the rest is the
/// stream.
fn split(data: &[u8]) -> (usize, Limits, &[u8]) {
    let Some((&b, rest)) = data.split_first() else { return (1, Limits::default(), data) };
    let chunk = 1 + usize::from(b & 0x3f);
    let limits = if b & 0x80 != 0 { Limits { max_message: 300, max_depth: 6 } } else { Limits::default() };
    (chunk, limits, rest)
}

/// Handshake lines: split into lines with a small and the default limit,
/// parse each as a greeting and a nonce, and check that a parsed greeting
/// writes back to a line that parses to the same greeting.
pub fn greeting(data: &[u8]) {
    for max in [64, greeting::MAX_LINE] {
        let mut r = LineReader::with_max_line(max);
        let mut rest = data;
        while let Ok(Some((line, used))) = r.next_line(rest) {
            assert!(used >= 1 && used <= rest.len() && line.len() <= max);
            rest = &rest[used..];
            let _ = greeting::check_nonce(&line);
            let Ok(g) = greeting::parse(&line) else { continue };
            assert!(!g.node_id.is_empty());
            let _ = (g.timeout(), g.tls(), g.is_aemp_ext(), g.incarnation(), g.provider(), g.peeraddr());
            let sendable = greeting::sendable_auths(true, true);
            let _ = greeting::choose_auth(&g.auths, &sendable, g.tls());
            let _ = greeting::choose_framing(&g.framings, &greeting::OUR_FRAMINGS);
            let _ = greeting::tls_on(true, &g);
            let again = g.to_line();
            // (A CR at the very end would be read as part of a CR LF.)
            if again.len() <= greeting::MAX_LINE && !again.ends_with('\r') {
                assert_eq!(greeting::parse(&again).expect("a written greeting parses"), g);
            }
        }
    }
    // Also as one line, without the line reader.
    let text = String::from_utf8_lossy(data);
    let _ = greeting::parse(&text);
    let _ = greeting::check_nonce(&text);
}

/// Auth lines: split into lines as the handshake does, parse each, write
/// it back, and check every method's token against whatever it carries.
pub fn auth_line(data: &[u8]) {
    // Also the whole input as one line, line feeds and all.
    let _ = AuthLine::parse(&String::from_utf8_lossy(data));
    let mut r = LineReader::with_max_line(auth::MAX_AUTH_LINE);
    let mut rest = data;
    while let Ok(Some((line, used))) = r.next_line(rest) {
        rest = &rest[used..];
        one_auth_line(&line);
    }
}

fn one_auth_line(line: &str) {
    let Ok(l) = AuthLine::parse(line) else { return };
    let again = l.to_line();
    // (A CR at the very end would be read as part of a CR LF.)
    if !again.ends_with('\r') {
        assert_eq!(AuthLine::parse(&again).expect("a written auth line parses"), l);
    }
    for (clear, anon, tls) in [(false, false, false), (true, true, true), (true, false, false)] {
        if let Ok(m) = auth::accept_peer_method(&l.method, clear, anon, tls) {
            assert!(tls || !m.requires_tls());
        }
    }
    let ours = ("aemp;0;a;hmac_blake3_256;msgpack", "bm9uY2U=");
    let theirs = ("aemp;0;b;hmac_md6_64_256;json", "b25jZQ==");
    for m in AuthMethod::ALL {
        for secret in [None, Some(""), Some("secret")] {
            let _ = auth::verify(m, secret, ours, theirs, &l.token);
        }
    }
    let _ = greeting::accept_peer_framing(&l.framing);
}

/// The JSON stream reader: whole and in pieces it must agree, and what it
/// reads must write back and read again as the same messages.
pub fn json_stream(data: &[u8]) {
    let (chunk, limits, bytes) = split(data);
    let whole = decode_stream(JsonReader::new(limits), bytes, bytes.len());
    let pieces = decode_stream(JsonReader::new(limits), bytes, chunk);
    assert!(same_msgs(&whole.0, &pieces.0) && whole.1 == pieces.1, "whole {whole:?} != pieces {pieces:?}");
    for m in &whole.0 {
        let mut out = Vec::new();
        codec::encode_json(m, &mut out).expect("what json reads, json writes");
        let back = decode_stream(JsonReader::default(), &out, out.len());
        assert!(!back.1 && same_msgs(&back.0, std::slice::from_ref(m)), "{m:?} came back as {back:?}");
    }
}

/// The msgpack frame reader: as [`json_stream`].
pub fn msgpack_frames(data: &[u8]) {
    let (chunk, limits, bytes) = split(data);
    let whole = decode_stream(MsgpackReader::new(limits), bytes, bytes.len());
    let pieces = decode_stream(MsgpackReader::new(limits), bytes, chunk);
    assert!(same_msgs(&whole.0, &pieces.0) && whole.1 == pieces.1, "whole {whole:?} != pieces {pieces:?}");
    for m in &whole.0 {
        let mut out = Vec::new();
        codec::encode_msgpack(m, &mut out).expect("what msgpack reads, msgpack writes");
        let back = decode_stream(MsgpackReader::default(), &out, out.len());
        assert!(!back.1 && same_msgs(&back.0, std::slice::from_ref(m)), "{m:?} came back as {back:?}");
    }
}

thread_local! {
    static RT: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
}

/// Node-port requests from a peer: the input is a stream of messages (JSON
/// when the first byte is even, msgpack when odd; its bit 1 says whether
/// each message goes to the node port, `["", message...]`, or is routed as
/// it is). A fresh node with a network configuration (a secret, no
/// listener) gets them as if from a connected node, through
/// `aemp::__fuzz::route_from`, the reader's own routing. Then the node must
/// still answer on one of its ports: its dispatcher survived.
///
/// Some requests make the node dial addresses given in the input (Global's
/// `connect_nodes`), as a real node would: fuzz this target without
/// network access.
pub fn node_port(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else { return };
    let (msgs, _) = if mode & 1 == 0 {
        decode_stream(JsonReader::default(), bytes, bytes.len())
    } else {
        decode_stream(MsgpackReader::default(), bytes, bytes.len())
    };
    let to_node_port = mode & 2 == 0;
    RT.with(|rt| {
        rt.block_on(async {
            let mut cfg = NetConfig::default();
            cfg.secret = Some("fuzz".into());
            cfg.connect_timeout = 0.05;
            cfg.network_latency = 0.05;
            let node = Node::builder().id("fuzz-node").net_config(cfg).build().await.expect("node");
            node.register("Fuzz::init", |ctx, m: Msg| {
                let me = ctx.self_id();
                if m.tag() == Some("fail") {
                    return Err(aemp::Error::Die("init failed on purpose".into()));
                }
                ctx.rcv_tag(&me, "ping", |_, _| {});
                Ok(())
            });
            let alive = node.port_with(|ctx, m| -> aemp::Result<()> {
                let reply = m.port(0)?;
                ctx.snd(&reply, msg!["pong"]);
                Ok(())
            });
            let peer = NodeId::new("fuzz-peer").expect("id");
            for m in msgs.into_iter().take(64) {
                let m = if to_node_port {
                    let mut v = Vec::with_capacity(m.len() + 1);
                    v.push(Value::from(""));
                    v.extend(m);
                    v
                } else {
                    m
                };
                aemp::__fuzz::route_from(&node, &peer, m);
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut tx = Some(tx);
            let probe = node.port_with(move |_, m| {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(m);
                }
            });
            node.snd(&alive, msg![&probe]);
            let answer = tokio::time::timeout(Duration::from_secs(10), rx).await;
            assert!(
                matches!(answer, Ok(Ok(ref m)) if *m == msg!["pong"]),
                "the node stopped serving: {answer:?}"
            );
            node.shutdown().await;
        })
    });
}

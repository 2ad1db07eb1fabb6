//! The two message framings of the AEMP protocol, as pure functions over
//! bytes (no I/O).
//!
//! - `json`: compact JSON arrays back to back, no delimiter,
//!   whitespace allowed between them. [`encode_json`] writes one message,
//!   [`JsonReader`] reads them.
//! - `msgpack`: a BER length (Perl `pack "w"`, see
//!   [`ber_encode`]) followed by one MessagePack array. [`encode_msgpack`]
//!   writes one frame, [`MsgpackReader`] reads them.
//!
//! # Reading
//!
//! Both readers implement [`FrameReader`], whose one method works like
//! tokio-util's `Decoder` but over a plain byte slice:
//!
//! ```
//! use aemp::wire::codec::{FrameReader, JsonReader, Limits};
//! let mut reader = JsonReader::new(Limits::default());
//! let mut buf: Vec<u8> = Vec::new();
//! let mut start = 0; // the caller's read offset into `buf`
//! let mut got = Vec::new();
//! for chunk in [&b"[\"a\",1][\"b\""[..], &b",2]\n[]"[..]] {
//!     buf.extend_from_slice(chunk); // bytes arrive
//!     while let Some((msg, used)) = reader.decode(&buf[start..]).unwrap() {
//!         start += used;
//!         got.push(msg);
//!     }
//! }
//! assert_eq!(got.len(), 3);
//! assert!(got[2].is_empty()); // the keepalive `[]`
//! ```
//!
//! The contract: `buf` holds the unread bytes, starting at a message
//! boundary. `Ok(Some((msg, n)))` returns one message that used the first `n`
//! bytes; the caller drops them (advances its offset, or `BytesMut::advance`)
//! before the next call. `Ok(None)` means more bytes are needed: the caller
//! appends and calls again with the same unread bytes plus the new ones (the
//! JSON reader remembers how far it has scanned, so a message arriving in
//! many small pieces costs O(its length) in total). An `Err` means the
//! stream is broken: log it and close the connection (the reader resets
//! itself, but the stream position is lost).
//!
//! Every decoding problem (malformed data, invalid UTF-8, a message above
//! [`Limits::max_message`] or nested deeper than [`Limits::max_depth`]) is an
//! [`Error::Decode`] naming the problem; the readers never panic, never
//! recurse, and never allocate based on a length they have not checked
//! against the bytes actually present.
//!
//! # Writing
//!
//! [`encode_json`] and [`encode_msgpack`] append one complete message to a
//! buffer; on error the buffer is left as it was. Values that one framing
//! cannot carry are [`Error::Value`]: bytes and non-finite floats in JSON,
//! strings and containers longer than 2³²−1 in msgpack.

// What both framings share lives here: the limits, the reader trait and
// the error helper. Each framing has its own file with its tests beside it
// (`json.rs`, its parser in `json/parse.rs`, and `msgpack.rs`); the BER
// length that starts every msgpack frame is in `ber.rs`.

mod ber;
mod json;
mod msgpack;
#[cfg(test)]
mod testkit;

pub use ber::{ber_decode, ber_encode};
pub use json::{encode_json, encode_json_dest, JsonReader};
pub use msgpack::{encode_msgpack, encode_msgpack_dest, MsgpackReader};

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::value::{Msg, Value};

/// Limits applied to every message read from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message in bytes: for JSON, from the opening `[` to the
    /// closing `]`; for msgpack, the frame after its BER length. Default 16 MiB.
    pub max_message: usize,
    /// The deepest nesting of arrays and maps, the message array itself being
    /// level 1. Default 128.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_message: 16 << 20, max_depth: 128 }
    }
}

/// Reads messages from the front of a byte buffer, one per call.
///
/// See the [module documentation](self) for the buffer contract.
pub trait FrameReader {
    /// Decodes one message from the front of `buf` (the unread bytes,
    /// starting at a message boundary).
    ///
    /// Returns `Ok(Some((message, bytes_used)))`, or `Ok(None)` when `buf`
    /// does not yet hold a complete message.
    ///
    /// # Errors
    /// [`Error::Decode`] naming the problem when the bytes are not a valid
    /// message or exceed the [`Limits`]; the connection should be closed.
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Vec<Value>, usize)>>;
}

/// Where a message read from a peer goes: its first element.
#[derive(Debug, PartialEq)]
pub(crate) enum Dest<'a> {
    /// The empty message, a keepalive.
    Keepalive,
    /// A port name (the node port's is empty), borrowed from the read
    /// buffer when the framing allows.
    Port(Cow<'a, str>),
    /// The same port as the last message with a [`Dest::Port`] or
    /// `Same` destination from this reader: a framing may say so rather
    /// than check the name again.
    Same,
    /// A first element that is not a string: what it is instead.
    Invalid(&'static str),
}

/// A [`FrameReader`] that hands each message over split into its
/// destination and its payload, as a link's reader routes it. The
/// provided method splits what [`FrameReader::decode`] returns; a framing
/// may do it without the intermediate array.
pub(crate) trait SplitReader: FrameReader {
    /// [`FrameReader::decode`], split: `(destination, payload, bytes used)`.
    fn decode_split<'b>(&mut self, buf: &'b [u8]) -> Result<Option<(Dest<'b>, Msg, usize)>> {
        Ok(self.decode(buf)?.map(|(msg, used)| {
            let (dest, payload) = split(msg);
            (dest, payload, used)
        }))
    }
}

impl SplitReader for JsonReader {}

/// Splits a message into its destination and its payload.
pub(crate) fn split(msg: Vec<Value>) -> (Dest<'static>, Msg) {
    let mut values = msg.into_iter();
    let dest = match values.next() {
        None => Dest::Keepalive,
        Some(Value::Str(s)) => Dest::Port(Cow::Owned(s)),
        Some(other) => Dest::Invalid(other.kind()),
    };
    (dest, values.collect())
}

fn decode_err(msg: impl Into<String>) -> Error {
    Error::Decode(msg.into())
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use proptest::prelude::*;

    // -----------------------------------------------------------------------
    // Transcripts (SPEC; real 0.9 traffic)

    /// SESSION A, server to client, data-phase chunks.
    const SESSION_A_S2C: &[&str] = &[
        "[\"\",\"AnyEvent::MP::_spawn\",\"COprXEuvxA9Jw8GcPOV5Aw=.b\",\"AnyEvent::MP::Global::connect\",0,\"aemp-server\"][\"\",\"mon1\",\"COprXEuvxA9Jw8GcPOV5Aw=.b\"][\"COprXEuvxA9Jw8GcPOV5Aw=.b\",\"addr\",[\"127.0.0.1:40400\"]][\"COprXEuvxA9Jw8GcPOV5Aw=.b\",\"set\",{\"echo\":[\"aemp-server#0hJrCIiX4OQ.a\"]}]",
        "[\"0kVrCIiY2ss.a\",\"pong\",\"hello\"]",
        "[\"0kVrCIiY2ss.a\",\"other-tag\",42,{\"k\":[1,\"two\"]}]",
        "[\"0kVrCIiY2ss.a\",\"pong\",\"via-global\"]",
        "[\"0kVrCIiY2ss.a\",\"spawned\",\"aemp-server#Lscqse5YByBNl4qfcBWlqA=.c\"]",
        "[\"0kVrCIiY2ss.a\",\"pong\",\"to-spawned\"]",
        "[\"\",\"kil\",\"Lscqse5YByBNl4qfcBWlqA=.c\",\"custom_reason\",\"bye\"]",
        "[]",
    ];

    /// SESSION A, client to server, data-phase chunks.
    const SESSION_A_C2S: &[&str] = &[
        "[\"echo\",\"ping\",\"anon/Lscqse5YByBNl4qfcBWlqA=#0kVrCIiY2ss.a\",\"hello\"][\"\",\"AnyEvent::MP::_spawn\",\"Lscqse5YByBNl4qfcBWlqA=.b\",\"AnyEvent::MP::Global::connect\",0,\"anon/Lscqse5YByBNl4qfcBWlqA=\"][\"\",\"mon1\",\"Lscqse5YByBNl4qfcBWlqA=.b\"][\"Lscqse5YByBNl4qfcBWlqA=.b\",\"addr\",[]]",
        "[\"echo\",\"other-tag\",\"anon/Lscqse5YByBNl4qfcBWlqA=#0kVrCIiY2ss.a\",42,{\"k\":[1,\"two\"]}]",
        "[\"0hJrCIiX4OQ.a\",\"ping\",\"anon/Lscqse5YByBNl4qfcBWlqA=#0kVrCIiY2ss.a\",\"via-global\"]",
        "[\"\",\"AnyEvent::MP::_spawn\",\"Lscqse5YByBNl4qfcBWlqA=.c\",\"::echo_init\",\"anon/Lscqse5YByBNl4qfcBWlqA=#0kVrCIiY2ss.a\"]",
        "[\"\",\"mon1\",\"Lscqse5YByBNl4qfcBWlqA=.c\"][\"Lscqse5YByBNl4qfcBWlqA=.c\",\"ping\",\"anon/Lscqse5YByBNl4qfcBWlqA=#0kVrCIiY2ss.a\",\"to-spawned\"]",
        "[\"Lscqse5YByBNl4qfcBWlqA=.c\",\"quit\",\"custom_reason\",\"bye\"]",
        "[]",
    ];

    /// SESSION C, server to client.
    const SESSION_C_S2C: &[&str] = &[
        "[\"\",\"AnyEvent::MP::_spawn\",\"UdCrUqmIrfePPXWrA9l1Ag=.b\",\"AnyEvent::MP::Global::connect\",0,\"aemp-server\"][\"\",\"mon1\",\"UdCrUqmIrfePPXWrA9l1Ag=.b\"][\"UdCrUqmIrfePPXWrA9l1Ag=.b\",\"addr\",[\"127.0.0.1:40404\"]][\"UdCrUqmIrfePPXWrA9l1Ag=.b\",\"set\",{\"echo\":[\"aemp-server#4UNrCIjOcIU.a\"]}]",
        "[\"r1\",\"pong\",\"hi from python\"][\"r1\",\"py-tag\",[1,2,{\"x\":null}]][\"r2\",1795721424.4416][\"r3\",\"aemp-server\"][\"\",\"kil\",\"no-such-port\",\"no_such_port\",\"cannot monitor nonexistent port\"]",
    ];

    /// SESSION C, client to server (a non-Perl peer putting LF after each array).
    const SESSION_C_C2S: &[&str] = &[
        "[\"echo\",\"ping\",\"pyraw#r1\",\"hi from python\"]\n[\"echo\",\"py-tag\",\"pyraw#r1\",[1,2,{\"x\":null}]]\n[\"\",\"time\",\"pyraw#r2\"]\n[\"\",\"info\",\"pyraw#r3\"]\n[\"\",\"mon1\",\"no-such-port\"]\n[]\n",
    ];

    /// serde_json as an independent oracle for a stream of JSON texts.
    fn oracle(stream: &str) -> Vec<Vec<Value>> {
        serde_json::Deserializer::from_str(stream)
            .into_iter::<Vec<Value>>()
            .collect::<std::result::Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn transcripts_decode_whole_and_split() {
        let sessions = [
            (SESSION_A_S2C, 272 + 32 + 48 + 37 + 67 + 37 + 60 + 2, 11),
            (SESSION_A_C2S, 266 + 84 + 82 + 114 + 133 + 58 + 2, 11),
            (SESSION_C_S2C, 272 + 178, 9),
            (SESSION_C_C2S, 166, 6),
        ];
        for (chunks, len, count) in sessions {
            let stream = chunks.concat();
            assert_eq!(stream.len(), len);
            let expect = oracle(&stream);
            assert_eq!(expect.len(), count);
            // Chunk by chunk as recorded.
            let mut r = JsonReader::default();
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            for c in chunks {
                feed(&mut r, &mut buf, c.as_bytes(), &mut out).unwrap();
            }
            assert_eq!(out, expect);
            assert!(buf.is_empty());
            // Whole, and split everywhere.
            assert_eq!(json_all(stream.as_bytes()).unwrap(), expect);
            check_splits(JsonReader::default, stream.as_bytes(), &expect);
            // Re-encoded, each message comes out as the bytes 0.9 wrote.
            if !stream.contains('\n') {
                let again: Vec<u8> = expect.iter().flat_map(|m| json(m)).collect();
                assert_eq!(String::from_utf8(again).unwrap(), stream);
            }
            // And through msgpack.
            let frames: Vec<u8> = expect.iter().flat_map(|m| mp(m)).collect();
            assert_eq!(mp_all(&frames).unwrap(), expect);
        }
    }

    #[test]
    fn transcript_values() {
        let c = json_all(SESSION_C_S2C.concat().as_bytes()).unwrap();
        assert_eq!(c[6], vec![s("r2"), Value::Float(1795721424.4416)]);
        assert_eq!(json(&c[6]), b"[\"r2\",1795721424.4416]");
        assert_eq!(
            c[5],
            vec![s("r1"), s("py-tag"), Value::Array(vec![1.into(), 2.into(), map(&[("x", Value::Null)])])]
        );
        let a = json_all(SESSION_A_S2C.concat().as_bytes()).unwrap();
        assert_eq!(a[0][4], Value::Int(0));
        assert_eq!(a[3][2], map(&[("echo", Value::Array(vec![s("aemp-server#0hJrCIiX4OQ.a")]))]));
        assert_eq!(a[10], Vec::<Value>::new());
        let lf = json_all(SESSION_C_C2S[0].as_bytes()).unwrap();
        assert_eq!(lf[5], Vec::<Value>::new());
    }

    // -----------------------------------------------------------------------
    // Property tests over both framings

    proptest! {
        #[test]
        fn prop_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), chunk in 1usize..17) {
            for prefix in [&b""[..], b"[", b"[{\"a\":[\""] {
                let bytes = [prefix, &data[..]].concat();
                let mut r = JsonReader::default();
                let (mut buf, mut out) = (Vec::new(), Vec::new());
                for c in bytes.chunks(chunk) {
                    if feed(&mut r, &mut buf, c, &mut out).is_err() {
                        break;
                    }
                }
            }
            // msgpack: raw, and framed so that the decoder sees the garbage.
            for bytes in [data.clone(), frame(&data), frame(&[&[0x9f][..], &data].concat())] {
                let mut r = MsgpackReader::default();
                let (mut buf, mut out) = (Vec::new(), Vec::new());
                for c in bytes.chunks(chunk) {
                    if feed(&mut r, &mut buf, c, &mut out).is_err() {
                        break;
                    }
                }
            }
        }

        #[test]
        fn prop_mutated_frames_never_panic(m in arb_msg(true), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
            let mut bytes = mp(&m);
            for (i, b) in &flips {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            let k = cut.index(bytes.len() + 1);
            let _ = try_all(MsgpackReader::default(), &bytes[..k]);
            if let Ok(mut text) = {
                let mut out = Vec::new();
                encode_json(&m, &mut out).map(|()| out)
            } {
                for (i, b) in &flips {
                    let i = i.index(text.len());
                    text[i] = *b;
                }
                let _ = try_all(JsonReader::default(), &text[..k.min(text.len())]);
            }
        }
    }

    /// Decodes `bytes` whole and in pieces of `chunk` bytes; both must give
    /// the same messages and the same ending (an error or not).
    fn whole_and_pieces_agree<R: FrameReader>(new: impl Fn() -> R, bytes: &[u8], chunk: usize) {
        let run = |chunk: usize| {
            let mut r = new();
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            for c in bytes.chunks(chunk.max(1)) {
                if feed(&mut r, &mut buf, c, &mut out).is_err() {
                    return (out, true);
                }
            }
            (out, false)
        };
        let whole = run(bytes.len());
        let pieces = run(chunk);
        assert_eq!(whole.1, pieces.1, "error in one way only: {whole:?} / {pieces:?}");
        assert_eq!(whole.0.len(), pieces.0.len());
        for (a, b) in whole.0.iter().zip(&pieces.0) {
            assert!(a.len() == b.len() && a.iter().zip(b).all(|(x, y)| bits_eq(x, y)), "{a:?} != {b:?}");
        }
    }

    /// Equality with floats compared by bits (NaN from msgpack included).
    fn bits_eq(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| bits_eq(x, y))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|((kx, x), (ky, y))| kx == ky && bits_eq(x, y))
            }
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn prop_any_bytes_decode_the_same_whole_and_in_pieces(
            data in proptest::collection::vec(any::<u8>(), 0..400),
            chunk in 1usize..32,
            small in any::<bool>(),
        ) {
            let limits = if small { Limits { max_message: 64, max_depth: 3 } } else { Limits::default() };
            for prefix in [&b""[..], b"[", b"[[\"", b"[1][2,{\"a\":"] {
                whole_and_pieces_agree(|| JsonReader::new(limits), &[prefix, &data[..]].concat(), chunk);
            }
            for bytes in [data.clone(), frame(&data), frame(&[&[0x9f][..], &data].concat())] {
                whole_and_pieces_agree(|| MsgpackReader::new(limits), &bytes, chunk);
            }
        }

        #[test]
        fn prop_the_depth_limit_is_exact(depth in 1usize..300, limit in 0usize..200) {
            let limits = Limits { max_message: 1 << 20, max_depth: limit };
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let r = JsonReader::new(limits).decode(text.as_bytes());
            prop_assert_eq!(matches!(r, Ok(Some(_))), depth <= limit, "json depth {} limit {}: {:?}", depth, limit, r.map(|_| ()));
            let mut body = vec![0x91u8; depth - 1];
            body.push(0x90);
            let r = MsgpackReader::new(limits).decode(&frame(&body));
            prop_assert_eq!(matches!(r, Ok(Some(_))), depth <= limit, "msgpack depth {} limit {}: {:?}", depth, limit, r.map(|_| ()));
        }

        #[test]
        fn prop_the_size_limit_is_exact(m in arb_msg(true), j in arb_msg(false), slack in 0usize..3, over in any::<bool>()) {
            // msgpack: the frame after its BER length.
            let bytes = mp(&m);
            let (len, hdr) = ber_decode(&bytes).unwrap().unwrap();
            prop_assert_eq!(hdr + len, bytes.len());
            let max = if over { len - 1 } else { len + slack };
            let r = MsgpackReader::new(Limits { max_message: max, max_depth: 128 }).decode(&bytes);
            prop_assert_eq!(r.is_ok(), !over);
            // json: from the opening to the closing bracket.
            let text = json(&j);
            let max = if over { text.len() - 1 } else { text.len() + slack };
            let r = JsonReader::new(Limits { max_message: max, max_depth: 128 }).decode(&text);
            prop_assert_eq!(r.is_ok(), !over);
            // Cut short, a message over the limit is refused before its end.
            if over && text.len() > 2 {
                let r = JsonReader::new(Limits { max_message: max / 2, max_depth: 128 }).decode(&text[..text.len() - 1]);
                prop_assert!(r.is_err() || text.len() - 1 <= max / 2);
            }
        }
    }
}

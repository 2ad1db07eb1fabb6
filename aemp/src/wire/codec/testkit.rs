//! Helpers for the tests of both framings: feeding a reader chunk by
//! chunk, encoding shortcuts, a message with every kind of value, and the
//! proptest strategies for messages.

use super::json::is_ws;
use super::{ber_encode, encode_json, encode_msgpack, FrameReader, JsonReader, MsgpackReader};
use crate::error::{Error, Result};
use crate::value::Value;
use proptest::prelude::*;

/// Appends `chunk` to `buf` and decodes every complete message, dropping
/// the used bytes from the front (as a caller would).
pub(super) fn feed<R: FrameReader>(
    r: &mut R,
    buf: &mut Vec<u8>,
    chunk: &[u8],
    out: &mut Vec<Vec<Value>>,
) -> Result<()> {
    buf.extend_from_slice(chunk);
    let mut start = 0;
    let res = loop {
        match r.decode(&buf[start..]) {
            Ok(Some((m, n))) => {
                assert!(n > 0 && n <= buf.len() - start);
                start += n;
                out.push(m);
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    buf.drain(..start);
    res
}

/// Decodes a whole stream given as one chunk; all bytes must be used.
pub(super) fn decode_all<R: FrameReader>(r: R, bytes: &[u8]) -> Result<Vec<Vec<Value>>> {
    let (res, left) = try_all(r, bytes);
    if res.is_ok() {
        assert!(left.iter().all(|&c| is_ws(c)), "left over: {:?}", String::from_utf8_lossy(&left));
    }
    res
}

/// Decodes what it can of a stream; returns the result and the bytes left.
pub(super) fn try_all<R: FrameReader>(mut r: R, bytes: &[u8]) -> (Result<Vec<Vec<Value>>>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let res = feed(&mut r, &mut buf, bytes, &mut out);
    (res.map(|()| out), buf)
}

pub(super) fn json_all(bytes: &[u8]) -> Result<Vec<Vec<Value>>> {
    decode_all(JsonReader::default(), bytes)
}

pub(super) fn mp_all(bytes: &[u8]) -> Result<Vec<Vec<Value>>> {
    decode_all(MsgpackReader::default(), bytes)
}

/// Decodes `bytes` split at every boundary (two chunks), and fed one
/// byte at a time; every way must give `expect`.
pub(super) fn check_splits<R: FrameReader>(new: impl Fn() -> R, bytes: &[u8], expect: &[Vec<Value>]) {
    for k in 0..=bytes.len() {
        let mut r = new();
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        feed(&mut r, &mut buf, &bytes[..k], &mut out).unwrap();
        feed(&mut r, &mut buf, &bytes[k..], &mut out).unwrap();
        assert_eq!(out, expect, "split at {k}");
    }
    let mut r = new();
    let (mut buf, mut out) = (Vec::new(), Vec::new());
    for b in bytes {
        feed(&mut r, &mut buf, std::slice::from_ref(b), &mut out).unwrap();
    }
    assert_eq!(out, expect, "byte by byte");
}

pub(super) fn json(msg: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_json(msg, &mut out).unwrap();
    out
}

pub(super) fn mp(msg: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_msgpack(msg, &mut out).unwrap();
    out
}

pub(super) fn s(x: &str) -> Value {
    Value::Str(x.into())
}

pub(super) fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

pub(super) fn err_text(r: Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(e @ Error::Decode(_)) => e.to_string(),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

/// A message with every kind of value (bytes only if `bytes`).
pub(super) fn every_kind(bytes: bool) -> Vec<Value> {
    let mut v = vec![
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(0),
        Value::Int(-1),
        Value::Int(127),
        Value::Int(128),
        Value::Int(-33),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::UInt(u64::MAX),
        Value::UInt(1 << 63),
        Value::Float(0.0),
        Value::Float(1.0),
        Value::Float(-2.5),
        Value::Float(1795721424.4416),
        Value::Float(1e300),
        Value::Float(1e-300),
        Value::Float(5e-324),
        Value::Float(f64::MAX),
        Value::Float(1e16),
        Value::Float(123456789012345680.0),
        s(""),
        s("plain"),
        s("quote \" backslash \\ slash / nl \n tab \t cr \r nul \0 bell \x07 del \x7f"),
        s("ünïcödé ✓ 𝄞 \u{2028}"),
        s(&"long".repeat(100)),
        Value::Array(vec![]),
        Value::Array(vec![Value::Array(vec![Value::Int(1)]), map(&[])]),
        map(&[
            ("k", Value::Array(vec![Value::Int(1), s("two")])),
            ("", Value::Null),
            ("é\"", Value::Float(0.5)),
        ]),
    ];
    if bytes {
        v.push(Value::Bytes(vec![]));
        v.push(Value::Bytes(vec![0, 1, 0xff]));
        v.push(Value::Bytes(vec![7; 300]));
    }
    v
}

/// Frames a hand-made payload.
pub(super) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ber_encode(payload.len(), &mut out);
    out.extend_from_slice(payload);
    out
}

pub(super) fn arb_value(bytes: bool) -> impl Strategy<Value = Value> {
    let mut leaves = vec![
        Just(Value::Null).boxed(),
        any::<bool>().prop_map(Value::Bool).boxed(),
        any::<i64>().prop_map(Value::Int).boxed(),
        (1u64 << 63..=u64::MAX).prop_map(Value::UInt).boxed(),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float).boxed(),
        any::<String>().prop_map(Value::Str).boxed(),
        "[a-z\"\\\\\\[\\]{}\n ]{0,8}".prop_map(Value::Str).boxed(),
    ];
    if bytes {
        leaves.push(proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes).boxed());
    }
    let leaf = proptest::strategy::Union::new(leaves);
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..6).prop_map(Value::Map),
        ]
    })
}

pub(super) fn arb_msg(bytes: bool) -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec(arb_value(bytes), 0..6)
}

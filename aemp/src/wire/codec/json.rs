//! The `json` framing: compact JSON arrays back to back.
//!
//! Writing: [`encode_json`] and [`encode_json_dest`]. Reading: [`JsonReader`],
//! whose incremental scanner finds where each message ends and enforces
//! the limits; the complete message is then handed to the non-recursive
//! parser in [`parse`].

mod parse;

use std::io::Write as _;

use self::parse::{JsonFrame, JsonParser};
use super::{decode_err, FrameReader, Limits};
use crate::error::{Error, Result};
use crate::value::Value;

// ===========================================================================
// JSON writing

/// Appends one message as compact JSON (an array, no trailing newline).
///
/// Floats are written so that they read back as floats (`1.0`, not `1`; very
/// large or small ones with an exponent), in the shortest form that reads
/// back to the same `f64`. Strings are escaped as JSON requires; non-ASCII
/// text is written as UTF-8. The keepalive is the empty message, `[]`.
///
/// ```
/// use aemp::{msg, wire::codec::encode_json};
/// let mut out = Vec::new();
/// encode_json(&msg!["p", 1, 2.0, "a\"b", ()], &mut out).unwrap();
/// assert_eq!(out, br#"["p",1,2.0,"a\"b",null]"#);
/// ```
///
/// # Errors
/// [`Error::Value`] when the message holds bytes (JSON has no form for them:
/// use the msgpack framing) or a NaN or infinite float. `out` is then left
/// as it was.
pub fn encode_json(msg: &[Value], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let r = json_array(msg, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

/// Like [`encode_json`] for the message `[dest, payload...]`, without
/// building it: what a node writes for `snd "node#dest", payload...`.
///
/// # Errors
/// As [`encode_json`].
pub fn encode_json_dest(dest: &str, payload: &[Value], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.push(b'[');
    json_str(dest, out);
    let r = json_items(payload, true, out);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn json_array(items: &[Value], out: &mut Vec<u8>) -> Result<()> {
    out.push(b'[');
    json_items(items, false, out)
}

/// The elements and the closing bracket of an array.
fn json_items(items: &[Value], after_first: bool, out: &mut Vec<u8>) -> Result<()> {
    for (i, v) in items.iter().enumerate() {
        if i > 0 || after_first {
            out.push(b',');
        }
        json_value(v, out)?;
    }
    out.push(b']');
    Ok(())
}

fn json_value(v: &Value, out: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => write_i64(*i, out),
        Value::UInt(u) => write_u64(*u, out),
        Value::Float(f) => json_float(*f, out)?,
        Value::Str(s) => json_str(s, out),
        Value::Bytes(b) => {
            return Err(Error::Value(format!(
            "bytes cannot be sent with the json framing (a value of {} bytes; only msgpack carries bytes)",
            b.len()
        )))
        }
        Value::Array(a) => json_array(a, out)?,
        Value::Map(m) => {
            out.push(b'{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(k, out);
                out.push(b':');
                json_value(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_u64(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(crate::util::u64_digits(n, &mut [0u8; 20]));
}

fn write_i64(n: i64, out: &mut Vec<u8>) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(n.unsigned_abs(), out);
}

fn json_float(x: f64, out: &mut Vec<u8>) -> Result<()> {
    if !x.is_finite() {
        return Err(Error::Value(format!(
            "the float {x} cannot be sent with the json framing (JSON has no NaN or infinity)"
        )));
    }
    let start = out.len();
    let a = x.abs();
    // Writing to a Vec<u8> cannot fail.
    if a == 0.0 || (1e-5..1e16).contains(&a) {
        // Shortest round-trip digits, never an exponent in this range.
        let _ = write!(out, "{x}");
        if !out[start..].contains(&b'.') {
            out.extend_from_slice(b".0");
        }
    } else {
        // Shortest round-trip digits with an exponent: "1e16", "-2.5e-7".
        let _ = write!(out, "{x:e}");
    }
    Ok(())
}

/// For each byte: 0 = copy as is, `u` = `\u00XX`, else the escape letter.
const JSON_ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

fn json_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let e = JSON_ESCAPE[c as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        if e == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

// ===========================================================================
// JSON reading

pub(super) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Describes the character at `pos` of `text` (or the end) for errors.
fn describe_at(text: &[u8], pos: usize) -> String {
    match text.get(pos) {
        None => "the end of the message".to_owned(),
        Some(&c) if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
        Some(&c) if c < 0x80 => format!("byte 0x{c:02x}"),
        Some(&c) => (pos + 1..=text.len().min(pos + 4))
            .find_map(|end| std::str::from_utf8(&text[pos..end]).ok())
            .and_then(|s| s.chars().next())
            .map_or_else(|| format!("byte 0x{c:02x}"), |ch| format!("{ch:?}")),
    }
}

/// Reads JSON messages from a byte stream.
///
/// Messages are JSON arrays back to back, optionally separated by
/// whitespace (space, tab, CR, LF). A top-level value that is not an array is
/// an error (0.9 would silently drop scalars; aemp closes and logs why).
///
/// An incremental scanner keeps its position and state (nesting depth,
/// inside a string, after a backslash) between calls, so bytes are scanned
/// once however the message is split; it rejects a message as soon as it
/// nests deeper than [`Limits::max_depth`] or holds more than
/// [`Limits::max_message`] bytes. A complete message is then validated as
/// UTF-8 and parsed by a non-recursive parser (bounded by the same depth
/// limit), so no input can overflow the stack.
///
/// Numbers: an integer that fits `i64` becomes [`Value::Int`], a larger
/// positive one up to `u64::MAX` [`Value::UInt`]; an integer beyond that
/// range becomes a [`Value::Float`] (the nearest `f64`, as serde_json does).
/// A number with a fraction or an exponent is always a [`Value::Float`]; one
/// too large for `f64` is an error. Duplicate map keys: the last one wins.
/// Strings must be valid UTF-8 with valid escapes (a lone surrogate
/// `\ud800` is an error), and raw control characters in them are errors.
///
/// Whitespace that follows a message and is already in the buffer is
/// counted in that message's `bytes_used`.
#[derive(Debug)]
pub struct JsonReader {
    limits: Limits,
    /// Offset of the next byte to scan, relative to the start of the buffer.
    pos: usize,
    /// Offset of the message's opening `[`, once seen.
    start: Option<usize>,
    /// Current nesting depth (the message array is 1).
    depth: usize,
    /// Inside a string.
    in_str: bool,
    /// Inside a string, right after a backslash.
    escape: bool,
    /// The parser's stack of open containers, kept to reuse its allocation.
    stack: Vec<JsonFrame>,
}

impl JsonReader {
    /// A reader with the given limits.
    pub fn new(limits: Limits) -> JsonReader {
        JsonReader { limits, pos: 0, start: None, depth: 0, in_str: false, escape: false, stack: Vec::new() }
    }

    /// The limits this reader enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.start = None;
        self.depth = 0;
        self.in_str = false;
        self.escape = false;
    }

    /// Scans on from `self.pos`; returns the end offset (one past the closing
    /// bracket) of the first complete message, or `None` (state saved).
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>> {
        let n = buf.len();
        let mut i = self.pos;
        if self.start.is_none() {
            while i < n && is_ws(buf[i]) {
                i += 1;
            }
            if i == n {
                self.pos = i;
                return Ok(None);
            }
            if buf[i] != b'[' {
                return Err(decode_err(format!(
                    "JSON message is not an array: it starts with {}",
                    describe_at(buf, i)
                )));
            }
            if self.limits.max_depth == 0 {
                return Err(decode_err("JSON message nested deeper than 0 levels"));
            }
            self.start = Some(i);
            self.depth = 1;
            i += 1;
        }
        let max_depth = self.limits.max_depth;
        let mut depth = self.depth;
        let mut in_str = self.in_str;
        let mut escape = self.escape;
        while i < n {
            if in_str {
                if escape {
                    escape = false;
                    i += 1;
                }
                while i < n {
                    match buf[i] {
                        b'"' => {
                            in_str = false;
                            i += 1;
                            break;
                        }
                        b'\\' => {
                            if i + 1 < n {
                                i += 2;
                            } else {
                                escape = true;
                                i += 1;
                            }
                        }
                        _ => i += 1,
                    }
                }
                continue;
            }
            match buf[i] {
                b'"' => in_str = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max_depth {
                        return Err(decode_err(format!(
                            "JSON message nested deeper than {max_depth} levels"
                        )));
                    }
                }
                b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(Some(i + 1));
                    }
                }
                _ => {}
            }
            i += 1;
        }
        self.pos = i;
        self.depth = depth;
        self.in_str = in_str;
        self.escape = escape;
        Ok(None)
    }

    fn decode_inner(&mut self, buf: &[u8]) -> Result<Option<(Vec<Value>, usize)>> {
        if buf.len() < self.pos {
            // The caller broke the contract (the buffer shrank): start over.
            self.reset();
        }
        let max = self.limits.max_message;
        let Some(end) = self.scan(buf)? else {
            let buffered = buf.len() - self.start.unwrap_or(0);
            if buffered > max {
                return Err(decode_err(format!("JSON message longer than {max} bytes")));
            }
            return Ok(None);
        };
        let start = self.start.unwrap_or(0);
        self.reset();
        if end - start > max {
            return Err(decode_err(format!("JSON message longer than {max} bytes")));
        }
        let bytes = &buf[start..end];
        let text = std::str::from_utf8(bytes).map_err(|e| {
            decode_err(format!("JSON message is not valid UTF-8 (bad byte at offset {})", e.valid_up_to()))
        })?;
        let msg = JsonParser { text, b: bytes, i: 0 }.message(self.limits.max_depth, &mut self.stack)?;
        let mut used = end;
        while used < buf.len() && is_ws(buf[used]) {
            used += 1;
        }
        Ok(Some((msg, used)))
    }
}

impl Default for JsonReader {
    /// A reader with the default [`Limits`].
    fn default() -> JsonReader {
        JsonReader::new(Limits::default())
    }
}

impl FrameReader for JsonReader {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Vec<Value>, usize)>> {
        let r = self.decode_inner(buf);
        if r.is_err() {
            self.reset();
            self.stack.clear();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn json_round_trip_every_kind() {
        let msg = every_kind(false);
        let bytes = json(&msg);
        assert_eq!(json_all(&bytes).unwrap(), vec![msg.clone()]);
        // serde_json agrees in both directions.
        let via_serde: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(via_serde, msg);
        let by_serde = serde_json::to_vec(&msg).unwrap();
        assert_eq!(json_all(&by_serde).unwrap(), vec![msg.clone()]);
        check_splits(JsonReader::default, &[&bytes[..], b"\n", &bytes[..]].concat(), &[msg.clone(), msg]);
    }

    #[test]
    fn json_encoding_details() {
        let enc = |v: Value| String::from_utf8(json(&[v])).unwrap();
        assert_eq!(enc(Value::Float(1.0)), "[1.0]");
        assert_eq!(enc(Value::Float(-0.0)), "[-0.0]");
        assert_eq!(enc(Value::Float(0.1)), "[0.1]");
        assert_eq!(enc(Value::Float(1e16)), "[1e16]");
        assert_eq!(enc(Value::Float(1.5e-7)), "[1.5e-7]");
        assert_eq!(enc(Value::Float(123456.0)), "[123456.0]");
        assert_eq!(enc(Value::Int(-42)), "[-42]");
        assert_eq!(enc(Value::UInt(u64::MAX)), "[18446744073709551615]");
        assert_eq!(enc(s("a\u{1}\u{1f}\u{8}\u{c}")), r#"["a\u0001\u001f\b\f"]"#);
        assert_eq!(enc(map(&[("b", 1.into()), ("a", 2.into())])), r#"[{"a":2,"b":1}]"#);
        assert_eq!(json(&[]), b"[]");
        // Floats read back as floats, integers as integers.
        for f in [1.0, 1e15, 1e16, 1e17, 9007199254740993.0, -3.0, 1e-5, 9.99e-6] {
            let back = json_all(&json(&[Value::Float(f)])).unwrap();
            assert_eq!(back[0][0], Value::Float(f), "{f}");
        }
    }

    #[test]
    fn json_encode_errors_leave_buffer_alone() {
        let mut out = b"[1]".to_vec();
        let e = encode_json(&[1.into(), Value::Bytes(vec![1])], &mut out).unwrap_err();
        assert!(
            matches!(&e, Error::Value(m) if m.contains("bytes cannot be sent with the json framing")),
            "{e}"
        );
        assert_eq!(out, b"[1]");
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = encode_json(&[Value::Array(vec![Value::Float(f)])], &mut out).unwrap_err();
            assert!(matches!(&e, Error::Value(m) if m.contains("NaN or infinity")), "{e}");
            assert_eq!(out, b"[1]");
        }
    }

    #[test]
    fn json_numbers() {
        let one = |t: &str| json_all(t.as_bytes()).map(|mut m| m.remove(0).remove(0));
        assert_eq!(one("[9223372036854775807]").unwrap(), Value::Int(i64::MAX));
        assert_eq!(one("[9223372036854775808]").unwrap(), Value::UInt(1 << 63));
        assert_eq!(one("[18446744073709551615]").unwrap(), Value::UInt(u64::MAX));
        assert_eq!(one("[18446744073709551616]").unwrap(), Value::Float(18446744073709551616.0));
        assert_eq!(one("[-9223372036854775808]").unwrap(), Value::Int(i64::MIN));
        assert_eq!(one("[-9223372036854775809]").unwrap(), Value::Float(-9223372036854775809.0));
        assert_eq!(one("[-0]").unwrap(), Value::Int(0));
        assert_eq!(one("[1E2]").unwrap(), Value::Float(100.0));
        assert_eq!(one("[1e-2]").unwrap(), Value::Float(0.01));
        assert_eq!(one("[1795721424.4416]").unwrap(), Value::Float(1795721424.4416));
        assert!(err_text(one("[1e400]")).contains("number out of range"));
        for bad in ["[01]", "[1.]", "[.5]", "[-]", "[1e]", "[+1]", "[0x10]", "[NaN]", "[Infinity]"] {
            assert!(json_all(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_strings() {
        let one = |t: &str| json_all(t.as_bytes()).map(|mut m| m.remove(0).remove(0));
        assert_eq!(one(r#"["\u00e9\ud834\udd1e\n\/"]"#).unwrap(), s("é𝄞\n/"));
        assert_eq!(one(r#"["a\"b"]"#).unwrap(), s("a\"b"));
        assert!(err_text(one(r#"["\ud800"]"#)).contains("lone high surrogate"));
        assert!(err_text(one(r#"["\udc00"]"#)).contains("lone low surrogate"));
        assert!(err_text(one(r#"["\ud800\u0041"]"#)).contains("surrogate"));
        assert!(err_text(one(r#"["\x"]"#)).contains("invalid escape"));
        assert!(err_text(one(r#"["\u12"]"#)).contains("4 hex digits"));
        assert!(err_text(one("[\"a\nb\"]")).contains("control character"));
        // A `]` or `"` inside a string does not confuse the scanner.
        assert_eq!(one(r#"["]\"[{"]"#).unwrap(), s("]\"[{"));
        check_splits(
            JsonReader::default,
            br#"["\\",  "\"]"] ["x"]"#,
            &[vec![s("\\"), s("\"]")], vec![s("x")]],
        );
    }

    #[test]
    fn json_whitespace_between_messages() {
        let stream = b" \n\t\r[1]\n\n[ 2 , { \"a\" : [ ] } ]\r\n[]   [\"x\"]\n";
        let expect =
            vec![vec![1.into()], vec![2.into(), map(&[("a", Value::Array(vec![]))])], vec![], vec![s("x")]];
        assert_eq!(json_all(stream).unwrap(), expect);
        check_splits(JsonReader::default, stream, &expect);
        // Whitespace alone is not a message.
        let mut r = JsonReader::default();
        assert_eq!(r.decode(b" \n \n").unwrap(), None);
        // Trailing whitespace already present is used with the message.
        let mut r = JsonReader::default();
        assert_eq!(r.decode(b" [1] \n [2]").unwrap(), Some((vec![1.into()], 7)));
    }

    #[test]
    fn json_malformed() {
        let e = err_text(json_all(br#"["a",1}"#));
        assert_eq!(e, "decoding failed: invalid JSON: expected ',' or ']', found '}' at line 1 column 7");
        let e = err_text(json_all(b"[1,\n  2 x]"));
        assert_eq!(e, "decoding failed: invalid JSON: expected ',' or ']', found 'x' at line 2 column 5");
        assert!(err_text(json_all(b"[1,]")).contains("expected a value, found ']'"));
        assert!(err_text(json_all(b"[tru]")).contains("expected a value"));
        assert!(err_text(json_all(br#"[{"a" 1}]"#)).contains("expected ':'"));
        assert!(err_text(json_all(br#"[{1:2}]"#)).contains("expected a string key"));
        assert!(err_text(json_all(b"[\xff]")).contains("not valid UTF-8"));
        assert!(err_text(json_all(b"[\"\xc3\x28\"]")).contains("not valid UTF-8 (bad byte at offset 2)"));
        assert!(err_text(json_all(b"[\"\xed\xa0\x80\"]")).contains("not valid UTF-8"));
        // Top-level values that are not arrays.
        assert_eq!(
            err_text(json_all(b"{}")),
            "decoding failed: JSON message is not an array: it starts with '{'"
        );
        assert!(err_text(json_all(b"\"keepalive?\"")).contains("not an array: it starts with '\"'"));
        assert!(err_text(json_all(b"  5")).contains("not an array"));
        assert!(err_text(json_all(b"[1] x")).contains("not an array: it starts with 'x'"));
        assert!(err_text(json_all("[1] é".as_bytes())).contains("starts with 'é'"));
        assert!(err_text(json_all(b"\x01")).contains("byte 0x01"));
    }

    #[test]
    fn json_depth_limit() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let ok = json_all(nested(128).as_bytes()).unwrap();
        assert_eq!(ok.len(), 1);
        let e = err_text(json_all(nested(129).as_bytes()));
        assert!(e.contains("nested deeper than 128 levels"), "{e}");
        // Maps count too.
        let maps = format!("[{}1{}]", "{\"a\":".repeat(127), "}".repeat(127));
        assert_eq!(json_all(maps.as_bytes()).unwrap().len(), 1);
        let maps = format!("[{}1{}]", "{\"a\":".repeat(128), "}".repeat(128));
        assert!(err_text(json_all(maps.as_bytes())).contains("nested deeper"));
        // 100_000 open brackets: rejected at the 129th, without reading on.
        let t = std::time::Instant::now();
        let mut r = JsonReader::default();
        let e = err_text(r.decode("[".repeat(100_000).as_bytes()));
        assert!(e.contains("nested deeper than 128 levels"));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // Arriving one byte at a time, the error comes at byte 129.
        let mut r = JsonReader::default();
        let mut buf = Vec::new();
        let mut failed_at = None;
        for i in 0..100_000 {
            buf.push(b'[');
            if r.decode(&buf).is_err() {
                failed_at = Some(i + 1);
                break;
            }
        }
        assert_eq!(failed_at, Some(129));
        // A smaller configured limit.
        let mut r = JsonReader::new(Limits { max_depth: 2, ..Limits::default() });
        assert!(r.decode(b"[[1]]").unwrap().is_some());
        assert!(r.decode(b"[[[1]]]").is_err());
        // Deep JSON decoded and re-encoded at the limit.
        let deep = json_all(nested(128).as_bytes()).unwrap().remove(0);
        assert_eq!(json(&deep), nested(128).as_bytes());
    }

    #[test]
    fn json_size_limit() {
        let limits = Limits { max_message: 100, ..Limits::default() };
        // Exactly at the limit: fine.
        let msg = format!("[\"{}\"]", "a".repeat(96));
        assert_eq!(msg.len(), 100);
        assert_eq!(decode_all(JsonReader::new(limits), msg.as_bytes()).unwrap().len(), 1);
        // One more byte: rejected, complete or not.
        let msg = format!("[\"{}\"]", "a".repeat(97));
        assert!(
            err_text(decode_all(JsonReader::new(limits), msg.as_bytes())).contains("longer than 100 bytes")
        );
        let mut r = JsonReader::new(limits);
        assert_eq!(r.decode(&msg.as_bytes()[..100]).unwrap(), None);
        assert!(err_text(r.decode(&msg.as_bytes()[..101])).contains("longer than 100 bytes"));
        // An endless message is rejected once the buffer passes the limit,
        // however it arrives.
        let mut r = JsonReader::new(limits);
        let mut buf = b"[\"".to_vec();
        let mut res = Ok(None);
        while buf.len() < 1000 && matches!(res, Ok(None)) {
            buf.extend_from_slice(b"xyz");
            res = r.decode(&buf);
        }
        assert!(err_text(res).contains("longer than 100 bytes"));
        assert!(buf.len() <= 103);
        // Endless whitespace too.
        let mut r = JsonReader::new(limits);
        assert!(r.decode(&[b' '; 101]).is_err());
        // Default: 16 MiB.
        let big = format!("[\"{}\"]", "b".repeat(16 << 20));
        assert!(err_text(json_all(big.as_bytes())).contains("longer than 16777216 bytes"));
    }

    #[test]
    fn json_reader_recovers_after_error() {
        let mut r = JsonReader::default();
        assert!(r.decode(b"[\"abc").unwrap().is_none());
        assert!(r.decode(b"{").is_err()); // buffer shrank and is bad
        assert_eq!(r.decode(b"[1]").unwrap(), Some((vec![1.into()], 3)));
    }

    // -----------------------------------------------------------------------
    // Property tests

    /// Equality, but floats may differ by a few units in the last place.
    fn approx_eq(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => {
                x == y || (x.signum() == y.signum() && (x.to_bits() as i64 - y.to_bits() as i64).abs() <= 8)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| approx_eq(x, y))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|((kx, x), (ky, y))| kx == ky && approx_eq(x, y))
            }
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn prop_json_round_trip(msgs in proptest::collection::vec(arb_msg(false), 1..4), ws in "[ \n\t\r]{0,3}", cut in any::<prop::sample::Index>()) {
            let mut stream = Vec::new();
            for m in &msgs {
                encode_json(m, &mut stream).unwrap();
                stream.extend_from_slice(ws.as_bytes());
            }
            prop_assert_eq!(json_all(&stream).unwrap(), msgs.clone());
            // Split at a random point.
            let k = cut.index(stream.len() + 1);
            let mut r = JsonReader::default();
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            feed(&mut r, &mut buf, &stream[..k], &mut out).unwrap();
            feed(&mut r, &mut buf, &stream[k..], &mut out).unwrap();
            prop_assert_eq!(&out, &msgs);
            // serde_json agrees with both our writer and our reader.
            for m in &msgs {
                let ours = json(m);
                // (serde_json's default float parser may be off by an ulp.)
                let theirs: Vec<Value> = serde_json::from_slice(&ours).unwrap();
                prop_assert!(approx_eq(&Value::Array(theirs.clone()), &Value::Array(m.clone())), "{:?} != {:?}", theirs, m);
                let by_serde = serde_json::to_vec(m).unwrap();
                prop_assert_eq!(json_all(&by_serde).unwrap(), vec![m.clone()]);
            }
        }

        #[test]
        fn prop_json_like_garbage_never_panics(text in "[\\[\\]{}\",:0-9.eE+\\-a-z\\\\ \n]{0,200}") {
            let _ = try_all(JsonReader::default(), text.as_bytes());
            let mut r = JsonReader::new(Limits { max_message: 64, max_depth: 4 });
            let _ = r.decode(text.as_bytes());
        }
    }
}

//! The two message framings of the AEMP protocol, as pure functions over
//! bytes (no I/O).
//!
//! - `json` (SPEC A.6): compact JSON arrays back to back, no delimiter,
//!   whitespace allowed between them. [`encode_json`] writes one message,
//!   [`JsonReader`] reads them.
//! - `msgpack` (SPEC Part B): a BER length (Perl `pack "w"`, see
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

use std::io::Write as _;

use crate::error::{Error, Result};
use crate::value::{Map, Value};

/// Limits applied to every message read from a peer (SPEC C.3).
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

fn decode_err(msg: impl Into<String>) -> Error {
    Error::Decode(msg.into())
}

// ===========================================================================
// BER lengths

/// Writes `n` as a BER compressed integer (Perl `pack "w"`): base 128, most
/// significant group first, the high bit set on every byte but the last.
///
/// ```
/// let mut out = Vec::new();
/// aemp::wire::codec::ber_encode(300, &mut out);
/// assert_eq!(out, [0x82, 0x2c]);
/// ```
pub fn ber_encode(n: usize, out: &mut Vec<u8>) {
    let mut buf = [0u8; 10];
    out.extend_from_slice(ber_bytes(n as u64, &mut buf));
}

fn ber_bytes(mut n: u64, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len() - 1;
    buf[i] = (n & 0x7f) as u8;
    n >>= 7;
    while n > 0 {
        i -= 1;
        buf[i] = (n & 0x7f) as u8 | 0x80;
        n >>= 7;
    }
    &buf[i..]
}

/// Reads a BER compressed integer from the front of `buf`.
///
/// Returns `Ok(Some((value, bytes_used)))`, or `Ok(None)` if `buf` ends
/// before the last byte (the one without the high bit). Redundant leading
/// `0x80` bytes are accepted, as Perl does.
///
/// ```
/// use aemp::wire::codec::ber_decode;
/// assert_eq!(ber_decode(&[0x82, 0x2c, 0xff]).unwrap(), Some((300, 2)));
/// assert_eq!(ber_decode(&[0x82]).unwrap(), None);
/// ```
///
/// # Errors
/// [`Error::Decode`] when the number takes more than 10 bytes or does not fit
/// `usize`.
pub fn ber_decode(buf: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut n: u64 = 0;
    for (i, &c) in buf.iter().enumerate() {
        if i >= 10 {
            return Err(decode_err("BER length is longer than 10 bytes"));
        }
        if n > u64::MAX >> 7 {
            return Err(decode_err("BER length does not fit in 64 bits"));
        }
        n = (n << 7) | u64::from(c & 0x7f);
        if c & 0x80 == 0 {
            let v =
                usize::try_from(n).map_err(|_| decode_err(format!("BER length {n} does not fit usize")))?;
            return Ok(Some((v, i + 1)));
        }
    }
    if buf.len() >= 10 {
        return Err(decode_err("BER length is longer than 10 bytes"));
    }
    Ok(None)
}

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

fn is_ws(c: u8) -> bool {
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

/// Reads JSON messages (SPEC A.6) from a byte stream.
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

/// An open container while parsing JSON.
#[derive(Debug)]
enum JsonFrame {
    Array(Vec<Value>),
    /// The map so far and the key whose value is being read.
    Map(Map, String),
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

/// A non-recursive JSON parser over one complete, UTF-8-valid message.
struct JsonParser<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn err_at(&self, pos: usize, what: &str) -> Error {
        let pos = pos.min(self.b.len());
        let before = &self.b[..pos];
        let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
        let col = self.text.get(line_start..pos).map_or(pos - line_start, |s| s.chars().count()) + 1;
        decode_err(format!("invalid JSON: {what} at line {line} column {col}"))
    }

    fn unexpected(&self, expected: &str) -> Error {
        self.err_at(self.i, &format!("expected {expected}, found {}", describe_at(self.b, self.i)))
    }

    fn skip_ws(&mut self) {
        while self.i < self.b.len() && is_ws(self.b[self.i]) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Parses the whole message, which must be one array and nothing else.
    fn message(mut self, max_depth: usize, stack: &mut Vec<JsonFrame>) -> Result<Vec<Value>> {
        stack.clear();
        self.skip_ws();
        if self.peek() != Some(b'[') {
            return Err(self.unexpected("'[' (a message is an array)"));
        }
        let v = self.value(max_depth, stack);
        stack.clear();
        let v = v?;
        self.skip_ws();
        if self.i != self.b.len() {
            return Err(self.unexpected("the end of the message"));
        }
        match v {
            Value::Array(a) => Ok(a),
            _ => Err(self.err_at(0, "the message is not an array")),
        }
    }

    /// Parses one value, with an explicit stack instead of recursion.
    fn value(&mut self, max_depth: usize, stack: &mut Vec<JsonFrame>) -> Result<Value> {
        'value: loop {
            self.skip_ws();
            let mut v = match self.peek() {
                Some(b'[') => {
                    if stack.len() >= max_depth {
                        return Err(self.err_at(self.i, &format!("nested deeper than {max_depth} levels")));
                    }
                    self.i += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        Value::Array(Vec::new())
                    } else {
                        stack.push(JsonFrame::Array(Vec::new()));
                        continue 'value;
                    }
                }
                Some(b'{') => {
                    if stack.len() >= max_depth {
                        return Err(self.err_at(self.i, &format!("nested deeper than {max_depth} levels")));
                    }
                    self.i += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        Value::Map(Map::new())
                    } else {
                        let key = self.key()?;
                        stack.push(JsonFrame::Map(Map::new(), key));
                        continue 'value;
                    }
                }
                Some(b'"') => Value::Str(self.string()?),
                Some(b't') => self.literal(b"true", Value::Bool(true))?,
                Some(b'f') => self.literal(b"false", Value::Bool(false))?,
                Some(b'n') => self.literal(b"null", Value::Null)?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.unexpected("a value")),
            };
            // A value is complete: add it to the open containers, closing
            // those that end here.
            loop {
                let Some(top) = stack.last_mut() else {
                    return Ok(v);
                };
                self.skip_ws();
                match top {
                    JsonFrame::Array(items) => {
                        items.push(v);
                        match self.peek() {
                            Some(b',') => {
                                self.i += 1;
                                continue 'value;
                            }
                            Some(b']') => {
                                self.i += 1;
                                v = match stack.pop() {
                                    Some(JsonFrame::Array(items)) => Value::Array(items),
                                    _ => return Err(self.err_at(self.i, "internal parser error")),
                                };
                            }
                            _ => return Err(self.unexpected("',' or ']'")),
                        }
                    }
                    JsonFrame::Map(map, key) => {
                        map.insert(std::mem::take(key), v);
                        match self.peek() {
                            Some(b',') => {
                                self.i += 1;
                                *key = self.key()?;
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.i += 1;
                                v = match stack.pop() {
                                    Some(JsonFrame::Map(map, _)) => Value::Map(map),
                                    _ => return Err(self.err_at(self.i, "internal parser error")),
                                };
                            }
                            _ => return Err(self.unexpected("',' or '}'")),
                        }
                    }
                }
            }
        }
    }

    /// Parses `"key" :`.
    fn key(&mut self) -> Result<String> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("a string key"));
        }
        let k = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.unexpected("':'"));
        }
        self.i += 1;
        Ok(k)
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.unexpected("a value"))
        }
    }

    fn number(&mut self) -> Result<Value> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let neg = b.get(i) == Some(&b'-');
        if neg {
            i += 1;
        }
        let mut acc: u64 = 0;
        let mut overflow = false;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(&c @ b'0'..=b'9') = b.get(i) {
                    match acc.checked_mul(10).and_then(|a| a.checked_add(u64::from(c - b'0'))) {
                        Some(a) => acc = a,
                        None => overflow = true,
                    }
                    i += 1;
                }
            }
            _ => return Err(self.err_at(i, "invalid number: expected a digit")),
        }
        let mut float = false;
        if b.get(i) == Some(&b'.') {
            float = true;
            i += 1;
            let digits = i;
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            if i == digits {
                return Err(self.err_at(i, "invalid number: expected a digit after '.'"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            float = true;
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let digits = i;
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            if i == digits {
                return Err(self.err_at(i, "invalid number: expected a digit in the exponent"));
            }
        }
        self.i = i;
        if !float && !overflow {
            if !neg {
                return Ok(Value::from(acc));
            }
            if acc <= 1 << 63 {
                return Ok(Value::Int((acc as i64).wrapping_neg()));
            }
        }
        match self.text.get(start..i).map(str::parse::<f64>) {
            Some(Ok(f)) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(self.err_at(start, "number out of range")),
        }
    }

    fn hex4(&self, i: usize) -> Result<u32> {
        let mut n = 0u32;
        for k in 0..4 {
            let d = match self.b.get(i + k) {
                Some(&c) => (c as char).to_digit(16),
                None => None,
            };
            match d {
                Some(d) => n = n * 16 + d,
                None => return Err(self.err_at(i + k, "invalid \\u escape: expected 4 hex digits")),
            }
        }
        Ok(n)
    }

    /// Parses a `\uXXXX` escape (or a surrogate pair) whose hex digits start
    /// at `i`; returns the character and the offset after it.
    fn unicode_escape(&self, i: usize) -> Result<(char, usize)> {
        let hi = self.hex4(i)?;
        let (cp, next) = match hi {
            0xd800..=0xdbff => {
                if self.b.get(i + 4) == Some(&b'\\') && self.b.get(i + 5) == Some(&b'u') {
                    let lo = self.hex4(i + 6)?;
                    if !(0xdc00..=0xdfff).contains(&lo) {
                        return Err(
                            self.err_at(i + 6, "invalid \\u escape: a high surrogate without its low half")
                        );
                    }
                    (0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00), i + 10)
                } else {
                    return Err(self.err_at(i, "invalid \\u escape: a lone high surrogate"));
                }
            }
            0xdc00..=0xdfff => return Err(self.err_at(i, "invalid \\u escape: a lone low surrogate")),
            _ => (hi, i + 4),
        };
        match char::from_u32(cp) {
            Some(c) => Ok((c, next)),
            None => Err(self.err_at(i, "invalid \\u escape")),
        }
    }

    /// Parses a string starting at the opening quote.
    fn string(&mut self) -> Result<String> {
        let b = self.b;
        let mut i = self.i + 1;
        let mut start = i;
        let mut out: Option<String> = None;
        loop {
            while i < b.len() {
                let c = b[i];
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                i += 1;
            }
            // Every offset here is at an ASCII byte (or the end), so a char
            // boundary of the (valid UTF-8) text: slicing cannot fail.
            let seg = self.text.get(start..i).unwrap_or_default();
            match b.get(i) {
                None => return Err(self.err_at(i, "unterminated string")),
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok(match out {
                        Some(mut s) => {
                            s.push_str(seg);
                            s
                        }
                        None => seg.to_owned(),
                    });
                }
                Some(b'\\') => {
                    let s = out.get_or_insert_with(String::new);
                    s.push_str(seg);
                    let c = match b.get(i + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let (c, next) = self.unicode_escape(i + 2)?;
                            s.push(c);
                            i = next;
                            start = i;
                            continue;
                        }
                        None => return Err(self.err_at(i + 1, "unterminated string")),
                        Some(_) => return Err(self.err_at(i + 1, "invalid escape in a string")),
                    };
                    s.push(c);
                    i += 2;
                    start = i;
                }
                Some(_) => return Err(self.err_at(i, "control character in a string (it must be escaped)")),
            }
        }
    }
}

// ===========================================================================
// msgpack writing

/// Appends one msgpack frame: the BER length of the payload, then the
/// message as one MessagePack array.
///
/// Strings are `str`, bytes `bin`, integers the smallest msgpack integer
/// ([`Value::UInt`] always `uint 64`), floats `float 64`, maps have `str`
/// keys.
///
/// ```
/// use aemp::{msg, wire::codec::encode_msgpack};
/// let mut out = Vec::new();
/// encode_msgpack(&msg!["a", 1], &mut out).unwrap();
/// assert_eq!(out, [4, 0x92, 0xa1, b'a', 0x01]);
/// ```
///
/// # Errors
/// [`Error::Value`] when a string, byte string, array or map is longer than
/// msgpack allows (2³²−1). `out` is then left as it was.
pub fn encode_msgpack(msg: &[Value], out: &mut Vec<u8>) -> Result<()> {
    mp_frame(None, msg, out)
}

/// Like [`encode_msgpack`] for the message `[dest, payload...]`, without
/// building it: what a node writes for `snd "node#dest", payload...`.
///
/// # Errors
/// As [`encode_msgpack`].
pub fn encode_msgpack_dest(dest: &str, payload: &[Value], out: &mut Vec<u8>) -> Result<()> {
    mp_frame(Some(dest), payload, out)
}

fn mp_frame(dest: Option<&str>, msg: &[Value], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    // Most messages are shorter than 128 bytes: reserve one byte for the
    // length and make room for more afterwards if needed.
    out.push(0);
    let r = match dest {
        None => mp_array(msg, out),
        Some(d) => mp_header(out, msg.len() + 1, &ARRAY).and_then(|()| {
            mp_str(d, out)?;
            msg.iter().try_for_each(|v| mp_value(v, out))
        }),
    };
    if let Err(e) = r {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start - 1;
    if len < 0x80 {
        out[start] = len as u8;
        return Ok(());
    }
    let mut buf = [0u8; 10];
    let hdr = ber_bytes(len as u64, &mut buf);
    let extra = hdr.len() - 1;
    out.resize(out.len() + extra, 0);
    out[start + 1..].rotate_right(extra);
    out[start..start + hdr.len()].copy_from_slice(hdr);
    Ok(())
}

/// The header formats of one msgpack family (str, bin, array, map).
struct Family {
    /// The "fix" marker and the exclusive upper bound of lengths it holds.
    fix: Option<(u8, usize)>,
    /// The 8-bit length marker, if the family has one.
    m8: Option<u8>,
    m16: u8,
    m32: u8,
    name: &'static str,
}

const STR: Family = Family { fix: Some((0xa0, 32)), m8: Some(0xd9), m16: 0xda, m32: 0xdb, name: "string" };
const BIN: Family = Family { fix: None, m8: Some(0xc4), m16: 0xc5, m32: 0xc6, name: "byte string" };
const ARRAY: Family = Family { fix: Some((0x90, 16)), m8: None, m16: 0xdc, m32: 0xdd, name: "array" };
const MAP: Family = Family { fix: Some((0x80, 16)), m8: None, m16: 0xde, m32: 0xdf, name: "map" };

/// Writes the smallest header for `len` in family `f`.
fn mp_header(out: &mut Vec<u8>, len: usize, f: &Family) -> Result<()> {
    match (f.fix, f.m8) {
        (Some((marker, max)), _) if len < max => out.push(marker | len as u8),
        (_, Some(m8)) if len <= 0xff => out.extend_from_slice(&[m8, len as u8]),
        _ if len <= 0xffff => {
            out.push(f.m16);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            let n = u32::try_from(len)
                .map_err(|_| Error::Value(format!("a {} of length {len} is too long for msgpack", f.name)))?;
            out.push(f.m32);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    Ok(())
}

fn mp_str(s: &str, out: &mut Vec<u8>) -> Result<()> {
    mp_header(out, s.len(), &STR)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn mp_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        let u = i as u64;
        if u < 0x80 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn mp_array(items: &[Value], out: &mut Vec<u8>) -> Result<()> {
    mp_header(out, items.len(), &ARRAY)?;
    for v in items {
        mp_value(v, out)?;
    }
    Ok(())
}

fn mp_value(v: &Value, out: &mut Vec<u8>) -> Result<()> {
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Int(i) => mp_int(*i, out),
        Value::UInt(u) => {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => mp_str(s, out)?,
        Value::Bytes(b) => {
            mp_header(out, b.len(), &BIN)?;
            out.extend_from_slice(b);
        }
        Value::Array(a) => mp_array(a, out)?,
        Value::Map(m) => {
            mp_header(out, m.len(), &MAP)?;
            for (k, v) in m {
                mp_str(k, out)?;
                mp_value(v, out)?;
            }
        }
    }
    Ok(())
}

// ===========================================================================
// msgpack reading

/// Reads msgpack frames (SPEC Part B) from a byte stream: a BER length, then
/// one MessagePack array of exactly that many bytes.
///
/// The length is checked against [`Limits::max_message`] as soon as it is
/// read, before waiting for (or allocating) the frame. The frame is decoded
/// without recursion, nesting bounded by [`Limits::max_depth`]. Accepted:
/// nil, bool, all integer formats (up to `u64`; [`Value::UInt`] only above
/// `i64::MAX`), float 32 (widened) and 64, str (valid UTF-8), bin, arrays
/// and maps with str keys (duplicate keys: the last one wins). Errors: ext
/// types, the unused marker `0xc1`, non-string map keys, invalid UTF-8, a
/// top-level value that is not an array, a frame that ends inside a value,
/// and bytes left in the frame after the array. A container claiming more
/// elements than the rest of the frame can hold is rejected before anything
/// is allocated for it.
#[derive(Debug)]
pub struct MsgpackReader {
    limits: Limits,
    /// The decoder's stack of open containers, kept to reuse its allocation.
    stack: Vec<MpFrame>,
}

impl MsgpackReader {
    /// A reader with the given limits.
    pub fn new(limits: Limits) -> MsgpackReader {
        MsgpackReader { limits, stack: Vec::new() }
    }

    /// The limits this reader enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl Default for MsgpackReader {
    /// A reader with the default [`Limits`].
    fn default() -> MsgpackReader {
        MsgpackReader::new(Limits::default())
    }
}

impl FrameReader for MsgpackReader {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Vec<Value>, usize)>> {
        let Some((len, hdr)) = ber_decode(buf)? else {
            return Ok(None);
        };
        let max = self.limits.max_message;
        if len > max {
            return Err(decode_err(format!("msgpack frame of {len} bytes exceeds the limit of {max} bytes")));
        }
        let end = hdr.saturating_add(len);
        if buf.len() < end {
            return Ok(None);
        }
        let r = MpDecoder { b: &buf[hdr..end], i: 0 }.message(self.limits.max_depth, &mut self.stack);
        self.stack.clear();
        Ok(Some((r?, end)))
    }
}

/// An open container while decoding msgpack.
#[derive(Debug)]
enum MpFrame {
    /// The elements so far and how many are still to come.
    Array(Vec<Value>, usize),
    /// The entries so far, how many are still to come, and the key of the
    /// entry being read (`None`: the key itself is next).
    Map(Map, usize, Option<String>),
}

/// A msgpack decoder over one frame.
struct MpDecoder<'a> {
    b: &'a [u8],
    i: usize,
}

/// A name for a msgpack marker byte, for errors.
fn mp_kind(m: u8) -> &'static str {
    match m {
        0x00..=0x7f | 0xcc..=0xd3 | 0xe0..=0xff => "integer",
        0x80..=0x8f | 0xde | 0xdf => "map",
        0x90..=0x9f | 0xdc | 0xdd => "array",
        0xa0..=0xbf | 0xd9..=0xdb => "string",
        0xc0 => "null",
        0xc1 => "the never-used marker 0xc1",
        0xc2 | 0xc3 => "bool",
        0xc4..=0xc6 => "bytes",
        0xc7..=0xc9 | 0xd4..=0xd8 => "an ext type",
        0xca | 0xcb => "float",
    }
}

impl<'a> MpDecoder<'a> {
    fn remaining(&self) -> usize {
        self.b.len() - self.i
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(decode_err(format!(
                "truncated msgpack frame: a value at offset {} needs {n} bytes, {} are left",
                self.i,
                self.remaining()
            )));
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize> {
        Ok(u16::from_be_bytes(self.array()?).into())
    }

    fn u32(&mut self) -> Result<usize> {
        usize::try_from(u32::from_be_bytes(self.array()?))
            .map_err(|_| decode_err("msgpack length does not fit usize"))
    }

    fn str(&mut self, len: usize) -> Result<String> {
        let at = self.i;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(decode_err(format!(
                "invalid UTF-8 in a msgpack string at offset {} of the frame",
                at + e.valid_up_to()
            ))),
        }
    }

    /// Decodes the frame, which must be exactly one array.
    fn message(mut self, max_depth: usize, stack: &mut Vec<MpFrame>) -> Result<Vec<Value>> {
        stack.clear();
        match self.b.first() {
            None => return Err(decode_err("empty msgpack frame")),
            Some(&m) if mp_kind(m) == "array" => {}
            Some(&m) => {
                return Err(decode_err(format!("msgpack message is not an array: found {}", mp_kind(m))));
            }
        }
        // Elements announced by the open containers and not read yet (a map
        // entry counts two). Each takes at least one byte, so this can never
        // exceed the bytes left: checking that bounds all preallocation by
        // the frame's size.
        let mut pending: usize = 0;
        'value: loop {
            let at = self.i;
            let marker = self.u8()?;
            pending = pending.saturating_sub(usize::from(!stack.is_empty()));
            if let Some(MpFrame::Map(_, _, None)) = stack.last() {
                if mp_kind(marker) != "string" {
                    return Err(decode_err(format!(
                        "msgpack map key at offset {at} is not a string: found {}",
                        mp_kind(marker)
                    )));
                }
            }
            // (is_map, element count) for containers.
            let container = match marker {
                0x80..=0x8f => Some((true, usize::from(marker & 0x0f))),
                0x90..=0x9f => Some((false, usize::from(marker & 0x0f))),
                0xdc => Some((false, self.u16()?)),
                0xdd => Some((false, self.u32()?)),
                0xde => Some((true, self.u16()?)),
                0xdf => Some((true, self.u32()?)),
                _ => None,
            };
            let mut v = if let Some((is_map, n)) = container {
                if stack.len() >= max_depth {
                    return Err(decode_err(format!(
                        "msgpack message nested deeper than {max_depth} levels (at offset {at})"
                    )));
                }
                let need = if is_map { n.checked_mul(2) } else { Some(n) };
                match need.and_then(|need| pending.checked_add(need)) {
                    Some(p) if p <= self.remaining() => pending = p,
                    _ => {
                        return Err(decode_err(format!(
                            "msgpack {} at offset {at} claims {n} {}, more than the {} bytes left in the frame can hold",
                            if is_map { "map" } else { "array" },
                            if is_map { "entries" } else { "elements" },
                            self.remaining()
                        )))
                    }
                }
                match (is_map, n) {
                    (false, 0) => Value::Array(Vec::new()),
                    (true, 0) => Value::Map(Map::new()),
                    (false, n) => {
                        stack.push(MpFrame::Array(Vec::with_capacity(n), n));
                        continue 'value;
                    }
                    (true, n) => {
                        stack.push(MpFrame::Map(Map::new(), n, None));
                        continue 'value;
                    }
                }
            } else {
                match marker {
                    0x00..=0x7f => Value::Int(marker.into()),
                    0xe0..=0xff => Value::Int((marker as i8).into()),
                    0xa0..=0xbf => Value::Str(self.str(usize::from(marker & 0x1f))?),
                    0xc0 => Value::Null,
                    0xc2 => Value::Bool(false),
                    0xc3 => Value::Bool(true),
                    0xc4 => {
                        let n = self.u8()?.into();
                        Value::Bytes(self.take(n)?.to_vec())
                    }
                    0xc5 => {
                        let n = self.u16()?;
                        Value::Bytes(self.take(n)?.to_vec())
                    }
                    0xc6 => {
                        let n = self.u32()?;
                        Value::Bytes(self.take(n)?.to_vec())
                    }
                    0xca => Value::Float(f32::from_be_bytes(self.array()?).into()),
                    0xcb => Value::Float(f64::from_be_bytes(self.array()?)),
                    0xcc => Value::Int(self.u8()?.into()),
                    0xcd => Value::Int(u16::from_be_bytes(self.array()?).into()),
                    0xce => Value::Int(u32::from_be_bytes(self.array()?).into()),
                    0xcf => Value::from(u64::from_be_bytes(self.array()?)),
                    0xd0 => Value::Int(i8::from_be_bytes(self.array()?).into()),
                    0xd1 => Value::Int(i16::from_be_bytes(self.array()?).into()),
                    0xd2 => Value::Int(i32::from_be_bytes(self.array()?).into()),
                    0xd3 => Value::Int(i64::from_be_bytes(self.array()?)),
                    0xd9 => {
                        let n = self.u8()?.into();
                        Value::Str(self.str(n)?)
                    }
                    0xda => {
                        let n = self.u16()?;
                        Value::Str(self.str(n)?)
                    }
                    0xdb => {
                        let n = self.u32()?;
                        Value::Str(self.str(n)?)
                    }
                    0xc7..=0xc9 | 0xd4..=0xd8 => {
                        return Err(decode_err(format!(
                            "msgpack ext types are not supported (marker 0x{marker:02x} at offset {at})"
                        )))
                    }
                    _ => {
                        return Err(decode_err(format!(
                            "invalid msgpack marker 0x{marker:02x} at offset {at}"
                        )));
                    }
                }
            };
            // A value is complete: add it to the open containers, closing
            // those that are full.
            loop {
                match stack.last_mut() {
                    None => {
                        if self.i != self.b.len() {
                            return Err(decode_err(format!(
                                "{} trailing bytes after the message in a msgpack frame",
                                self.b.len() - self.i
                            )));
                        }
                        return match v {
                            Value::Array(a) => Ok(a),
                            other => Err(decode_err(format!(
                                "msgpack message is not an array: found {}",
                                other.kind()
                            ))),
                        };
                    }
                    Some(MpFrame::Array(items, left)) => {
                        items.push(v);
                        *left -= 1;
                        if *left > 0 {
                            continue 'value;
                        }
                        v = match stack.pop() {
                            Some(MpFrame::Array(items, _)) => Value::Array(items),
                            _ => return Err(decode_err("internal msgpack decoder error")),
                        };
                    }
                    Some(MpFrame::Map(map, left, key)) => match key.take() {
                        None => {
                            match v {
                                Value::Str(k) => *key = Some(k),
                                other => {
                                    return Err(decode_err(format!(
                                        "msgpack map key is not a string: found {}",
                                        other.kind()
                                    )))
                                }
                            }
                            continue 'value;
                        }
                        Some(k) => {
                            map.insert(k, v);
                            *left -= 1;
                            if *left > 0 {
                                continue 'value;
                            }
                            v = match stack.pop() {
                                Some(MpFrame::Map(map, _, _)) => Value::Map(map),
                                _ => return Err(decode_err("internal msgpack decoder error")),
                            };
                        }
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // -----------------------------------------------------------------------
    // Helpers

    /// Appends `chunk` to `buf` and decodes every complete message, dropping
    /// the used bytes from the front (as a caller would).
    fn feed<R: FrameReader>(
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
    fn decode_all<R: FrameReader>(r: R, bytes: &[u8]) -> Result<Vec<Vec<Value>>> {
        let (res, left) = try_all(r, bytes);
        if res.is_ok() {
            assert!(left.iter().all(|&c| is_ws(c)), "left over: {:?}", String::from_utf8_lossy(&left));
        }
        res
    }

    /// Decodes what it can of a stream; returns the result and the bytes left.
    fn try_all<R: FrameReader>(mut r: R, bytes: &[u8]) -> (Result<Vec<Vec<Value>>>, Vec<u8>) {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let res = feed(&mut r, &mut buf, bytes, &mut out);
        (res.map(|()| out), buf)
    }

    fn json_all(bytes: &[u8]) -> Result<Vec<Vec<Value>>> {
        decode_all(JsonReader::default(), bytes)
    }

    fn mp_all(bytes: &[u8]) -> Result<Vec<Vec<Value>>> {
        decode_all(MsgpackReader::default(), bytes)
    }

    /// Decodes `bytes` split at every boundary (two chunks), and fed one
    /// byte at a time; every way must give `expect`.
    fn check_splits<R: FrameReader>(new: impl Fn() -> R, bytes: &[u8], expect: &[Vec<Value>]) {
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

    fn json(msg: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_json(msg, &mut out).unwrap();
        out
    }

    fn mp(msg: &[Value]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_msgpack(msg, &mut out).unwrap();
        out
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn err_text(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(e @ Error::Decode(_)) => e.to_string(),
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    /// A message with every kind of value (bytes only if `bytes`).
    fn every_kind(bytes: bool) -> Vec<Value> {
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
    // JSON

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
    // BER

    #[test]
    fn ber() {
        let cases: &[(usize, &[u8])] = &[
            (0, &[0]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x81, 0x00]),
            (0x68, &[0x68]),
            (300, &[0x82, 0x2c]),
            (16383, &[0xff, 0x7f]),
            (16384, &[0x81, 0x80, 0x00]),
        ];
        for &(n, bytes) in cases {
            let mut out = vec![9];
            ber_encode(n, &mut out);
            assert_eq!(&out[1..], bytes, "{n}");
            assert_eq!(ber_decode(bytes).unwrap(), Some((n, bytes.len())));
            for k in 0..bytes.len() {
                assert_eq!(ber_decode(&bytes[..k]).unwrap(), None);
            }
        }
        let mut out = Vec::new();
        ber_encode(usize::MAX, &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(ber_decode(&out).unwrap(), Some((usize::MAX, 10)));
        // Redundant leading 0x80 bytes are fine (Perl accepts them).
        assert_eq!(ber_decode(&[0x80, 0x80, 0x05]).unwrap(), Some((5, 3)));
        // Too long, overflow.
        assert!(err_text(ber_decode(&[0x80; 11])).contains("longer than 10 bytes"));
        assert!(ber_decode(&[0x80; 10]).unwrap_err().to_string().contains("longer than 10 bytes"));
        assert!(err_text(ber_decode(&[0xff; 10])).contains("64 bits"));
        assert!(ber_decode(&[0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).is_err());
        assert_eq!(
            ber_decode(&[0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).unwrap(),
            Some((u64::MAX as usize, 10))
        );
    }

    proptest! {
        #[test]
        fn ber_round_trip(n in any::<usize>()) {
            let mut out = Vec::new();
            ber_encode(n, &mut out);
            prop_assert_eq!(ber_decode(&out).unwrap(), Some((n, out.len())));
        }
    }

    // -----------------------------------------------------------------------
    // msgpack

    #[test]
    fn msgpack_round_trip_every_kind() {
        let mut msg = every_kind(true);
        msg.push(Value::Float(f64::INFINITY));
        msg.push(Value::Float(f64::NEG_INFINITY));
        let bytes = mp(&msg);
        assert_eq!(mp_all(&bytes).unwrap(), vec![msg.clone()]);
        let two = [&bytes[..], &bytes[..]].concat();
        check_splits(MsgpackReader::default, &two, &[msg.clone(), msg]);
        let nan = mp_all(&mp(&[Value::Float(f64::NAN)])).unwrap();
        assert!(matches!(nan[0][0], Value::Float(f) if f.is_nan()));
        assert_eq!(mp(&[]), [1, 0x90]);
    }

    /// Checks our encoding against rmp's reference encoder and decoder.
    #[test]
    fn msgpack_matches_rmp() {
        let ints = [
            0i64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            1 << 32,
            i64::MAX,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i64,
            i32::MIN as i64 - 1,
            i64::MIN,
        ];
        for i in ints {
            let mut ours = Vec::new();
            mp_int(i, &mut ours);
            let mut theirs = Vec::new();
            rmp::encode::write_sint(&mut theirs, i).unwrap();
            assert_eq!(ours, theirs, "{i}");
        }
        for len in [0usize, 31, 32, 255, 256, 65535, 65536] {
            let st = "x".repeat(len);
            let mut ours = Vec::new();
            mp_str(&st, &mut ours).unwrap();
            let mut theirs = Vec::new();
            rmp::encode::write_str(&mut theirs, &st).unwrap();
            assert_eq!(ours, theirs, "str {len}");
            let mut ours = Vec::new();
            mp_value(&Value::Bytes(vec![0; len]), &mut ours).unwrap();
            let mut theirs = Vec::new();
            rmp::encode::write_bin(&mut theirs, &vec![0; len]).unwrap();
            assert_eq!(ours, theirs, "bin {len}");
        }
        for len in [0usize, 15, 16, 65535, 65536] {
            let mut ours = Vec::new();
            mp_array(&vec![Value::Null; len], &mut ours).unwrap();
            let mut theirs = Vec::new();
            rmp::encode::write_array_len(&mut theirs, len as u32).unwrap();
            theirs.resize(theirs.len() + len, 0xc0);
            assert_eq!(ours, theirs, "array {len}");
            let m: Map = (0..len).map(|i| (format!("{i:06}"), Value::Null)).collect();
            let mut ours = Vec::new();
            mp_value(&Value::Map(m.clone()), &mut ours).unwrap();
            let mut theirs = Vec::new();
            rmp::encode::write_map_len(&mut theirs, len as u32).unwrap();
            for k in m.keys() {
                rmp::encode::write_str(&mut theirs, k).unwrap();
                theirs.push(0xc0);
            }
            assert_eq!(ours, theirs, "map {len}");
        }
        let mut theirs = vec![];
        rmp::encode::write_u64(&mut theirs, u64::MAX).unwrap();
        let mut ours = Vec::new();
        mp_value(&Value::UInt(u64::MAX), &mut ours).unwrap();
        assert_eq!(ours, theirs);
        // Values rmp writes in non-minimal forms decode to the same values.
        let mut frame = Vec::new();
        rmp::encode::write_array_len(&mut frame, 6).unwrap();
        rmp::encode::write_u8(&mut frame, 5).unwrap();
        rmp::encode::write_i64(&mut frame, 5).unwrap();
        rmp::encode::write_u32(&mut frame, 7).unwrap();
        rmp::encode::write_i16(&mut frame, -300).unwrap();
        rmp::encode::write_f32(&mut frame, 1.5).unwrap();
        rmp::encode::write_nil(&mut frame).unwrap();
        let mut stream = Vec::new();
        ber_encode(frame.len(), &mut stream);
        stream.extend_from_slice(&frame);
        assert_eq!(
            mp_all(&stream).unwrap(),
            vec![vec![5.into(), 5.into(), 7.into(), (-300).into(), Value::Float(1.5), Value::Null]]
        );
    }

    #[test]
    fn msgpack_frames_with_long_lengths() {
        // Frames of 127, 128, 16383, 16384 bytes: one, two and three BER bytes.
        for payload in [127usize, 128, 16383, 16384, 70000] {
            // [str] with a str8/16 header: pick the string length to hit `payload`.
            let mut n = payload - 3;
            let msg = loop {
                let m = vec![s(&"z".repeat(n))];
                let mut body = Vec::new();
                mp_array(&m, &mut body).unwrap();
                match body.len().cmp(&payload) {
                    std::cmp::Ordering::Equal => break m,
                    std::cmp::Ordering::Greater => n -= 1,
                    std::cmp::Ordering::Less => n += 1,
                }
            };
            let mut out = b"prefix".to_vec();
            encode_msgpack(&msg, &mut out).unwrap();
            let (len, hdr) = ber_decode(&out[6..]).unwrap().unwrap();
            assert_eq!(len, payload);
            assert_eq!(out.len(), 6 + hdr + payload);
            assert_eq!(mp_all(&out[6..]).unwrap(), vec![msg]);
        }
    }

    /// Frames a hand-made payload.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ber_encode(payload.len(), &mut out);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn msgpack_errors() {
        let e = |payload: &[u8]| err_text(mp_all(&frame(payload)));
        assert!(e(&[]).contains("empty msgpack frame"));
        assert!(e(&[0x05]).contains("not an array: found integer"));
        assert!(e(&[0x81, 0xa1, b'a', 0x01]).contains("not an array: found map"));
        // Truncated inside the frame.
        assert!(e(&[0x91, 0xcd, 0x01]).contains("truncated msgpack frame"));
        assert!(e(&[0x91, 0xa5, b'a'])
            .contains("truncated msgpack frame: a value at offset 2 needs 5 bytes, 1 are left"));
        assert!(e(&[0x91, 0xcb, 0, 0]).contains("truncated"));
        assert!(e(&[0x91, 0xdd, 0, 0]).contains("truncated"));
        // Ext types.
        assert!(
            e(&[0x91, 0xd4, 0x01, 0x00]).contains("ext types are not supported (marker 0xd4 at offset 1)")
        );
        assert!(e(&[0x91, 0xc7, 0x01, 0x05, 0x00]).contains("ext types are not supported"));
        assert!(e(&[0x91, 0xc1]).contains("invalid msgpack marker 0xc1"));
        // Non-string map keys.
        assert!(e(&[0x91, 0x81, 0x01, 0x02]).contains("map key at offset 2 is not a string: found integer"));
        assert!(e(&[0x91, 0x81, 0xc0, 0x02]).contains("is not a string: found null"));
        assert!(e(&[0x91, 0x81, 0x90, 0x02]).contains("is not a string: found array"));
        assert!(e(&[0x91, 0x81, 0xc4, 0x01, b'a', 0x02]).contains("is not a string: found bytes"));
        // Invalid UTF-8.
        assert!(e(&[0x91, 0xa2, 0xc3, 0x28]).contains("invalid UTF-8 in a msgpack string at offset 2"));
        assert!(e(&[0x91, 0x81, 0xa1, 0xff, 0x01]).contains("invalid UTF-8"));
        // Trailing bytes inside the frame.
        assert!(e(&[0x91, 0x01, 0x02]).contains("1 trailing bytes after the message"));
        assert!(e(&[0x90, 0xc0, 0xc0]).contains("2 trailing bytes"));
        // Lengths that the frame cannot hold, before any allocation.
        assert!(e(&[0xdd, 0xff, 0xff, 0xff, 0xff]).contains("claims 4294967295 elements"));
        assert!(
            e(&[0x91, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, b'a', 0x01]).contains("claims 4294967295 entries")
        );
        assert!(e(&[0x91, 0xc6, 0xff, 0xff, 0xff, 0xff]).contains("truncated"));
        assert!(e(&[0x91, 0xdb, 0xff, 0xff, 0xff, 0xff]).contains("truncated"));
        // Nested claims add up: [[x, x, x], x] needs 4 more bytes, only 3 given.
        assert!(e(&[0x92, 0x93, 0xc0, 0xc0, 0xc0]).contains("claims 3 elements"));
    }

    #[test]
    fn msgpack_truncated_stream_waits() {
        let bytes = mp(&every_kind(true));
        let mut r = MsgpackReader::default();
        for k in 0..bytes.len() {
            assert_eq!(r.decode(&bytes[..k]).unwrap(), None, "{k}");
        }
        assert!(r.decode(&bytes).unwrap().is_some());
    }

    #[test]
    fn msgpack_size_limit() {
        let limits = Limits { max_message: 100, ..Limits::default() };
        let ok = mp(&[s(&"a".repeat(97))]);
        assert_eq!(ok.len(), 1 + 100);
        assert_eq!(decode_all(MsgpackReader::new(limits), &ok).unwrap().len(), 1);
        let big = mp(&[s(&"a".repeat(98))]);
        // Rejected from the length alone, before the frame arrives.
        let mut r = MsgpackReader::new(limits);
        assert!(err_text(r.decode(&big[..1])).contains("frame of 101 bytes exceeds the limit of 100 bytes"));
        // A huge announced length with the default limit.
        let mut stream = Vec::new();
        ber_encode(1 << 40, &mut stream);
        assert!(err_text(MsgpackReader::default().decode(&stream)).contains("exceeds the limit of 16777216"));
        let mut stream = Vec::new();
        ber_encode(16 << 20, &mut stream);
        assert_eq!(MsgpackReader::default().decode(&stream).unwrap(), None);
        assert!(MsgpackReader::default().decode(&[0x80; 11]).is_err());
    }

    #[test]
    fn msgpack_depth_limit() {
        let nested = |n: usize| {
            let mut p = vec![0x91; n - 1];
            p.push(0x90);
            frame(&p)
        };
        let ok = mp_all(&nested(128)).unwrap();
        let mut v = Value::Array(ok[0].clone());
        let mut depth = 0;
        while let Value::Array(mut a) = v {
            depth += 1;
            v = a.pop().unwrap_or(Value::Null);
        }
        assert_eq!(depth, 128);
        assert!(err_text(mp_all(&nested(129))).contains("nested deeper than 128 levels (at offset 128)"));
        // Maps count too.
        let mut p = vec![0x91];
        for _ in 0..127 {
            p.extend_from_slice(&[0x81, 0xa1, b'k']);
        }
        p.push(0xc0);
        assert_eq!(mp_all(&frame(&p)).unwrap().len(), 1);
        p.insert(1, 0x91);
        assert!(err_text(mp_all(&frame(&p))).contains("nested deeper"));
        // 100_000 levels: rejected quickly, no stack overflow.
        let t = std::time::Instant::now();
        assert!(err_text(mp_all(&nested(100_000))).contains("nested deeper"));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // And the encoder writes what the decoder reads at the limit.
        let deep = ok[0].clone();
        assert_eq!(mp(&deep), nested(128));
    }

    #[test]
    fn msgpack_encode_keeps_buffer_on_success_and_error() {
        let mut out = b"xyz".to_vec();
        encode_msgpack(&[1.into()], &mut out).unwrap();
        assert_eq!(out, [b'x', b'y', b'z', 2, 0x91, 0x01]);
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

    fn arb_value(bytes: bool) -> impl Strategy<Value = Value> {
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

    fn arb_msg(bytes: bool) -> impl Strategy<Value = Vec<Value>> {
        proptest::collection::vec(arb_value(bytes), 0..6)
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
        fn prop_msgpack_round_trip(msgs in proptest::collection::vec(arb_msg(true), 1..4), cut in any::<prop::sample::Index>()) {
            let mut stream = Vec::new();
            for m in &msgs {
                encode_msgpack(m, &mut stream).unwrap();
            }
            prop_assert_eq!(mp_all(&stream).unwrap(), msgs.clone());
            let k = cut.index(stream.len() + 1);
            let mut r = MsgpackReader::default();
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            feed(&mut r, &mut buf, &stream[..k], &mut out).unwrap();
            feed(&mut r, &mut buf, &stream[k..], &mut out).unwrap();
            prop_assert_eq!(out, msgs);
        }

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
        fn prop_json_like_garbage_never_panics(text in "[\\[\\]{}\",:0-9.eE+\\-a-z\\\\ \n]{0,200}") {
            let _ = try_all(JsonReader::default(), text.as_bytes());
            let mut r = JsonReader::new(Limits { max_message: 64, max_depth: 4 });
            let _ = r.decode(text.as_bytes());
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

//! The parser behind [`JsonReader`](super::JsonReader): turns one complete,
//! UTF-8-valid JSON message into values without recursion, its explicit
//! stack bounded by the depth limit.

use super::{describe_at, is_ws};
use crate::error::{Error, Result};
use crate::value::{Map, Value};
use crate::wire::codec::decode_err;

/// An open container while parsing JSON.
#[derive(Debug)]
pub(super) enum JsonFrame {
    Array(Vec<Value>),
    /// The map so far and the key whose value is being read.
    Map(Map, String),
}

/// A non-recursive JSON parser over one complete, UTF-8-valid message.
pub(super) struct JsonParser<'a> {
    pub(super) text: &'a str,
    pub(super) b: &'a [u8],
    pub(super) i: usize,
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
    pub(super) fn message(mut self, max_depth: usize, stack: &mut Vec<JsonFrame>) -> Result<Vec<Value>> {
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

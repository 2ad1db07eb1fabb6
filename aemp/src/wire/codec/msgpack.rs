//! The `msgpack` framing: a BER length, then one MessagePack
//! array. Writing: [`encode_msgpack`] and [`encode_msgpack_dest`]. Reading:
//! [`MsgpackReader`], a non-recursive decoder that checks the limits before
//! allocating.

use super::ber::{ber_bytes, ber_decode};
use std::borrow::Cow;

use super::{decode_err, split, Dest, FrameReader, Limits, SplitReader};
use crate::error::{Error, Result};
use crate::value::{Items, Map, Msg, Value};

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

/// Reads msgpack frames from a byte stream: a BER length, then
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
    /// The destination of the last message split (see [`Dest::Same`]).
    last_dest: Option<Vec<u8>>,
}

impl MsgpackReader {
    /// A reader with the given limits.
    pub fn new(limits: Limits) -> MsgpackReader {
        MsgpackReader { limits, stack: Vec::new(), last_dest: None }
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

impl MsgpackReader {
    /// The frame at the front of `buf` and the bytes it takes with its
    /// length (`None` until it is all there).
    fn frame<'b>(&self, buf: &'b [u8]) -> Result<Option<(&'b [u8], usize)>> {
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
        Ok(Some((&buf[hdr..end], end)))
    }

    /// Decodes a whole frame with the container stack.
    fn message(&mut self, frame: &[u8]) -> Result<Vec<Value>> {
        let r = MpDecoder { b: frame, i: 0 }.message(self.limits.max_depth, &mut self.stack);
        self.stack.clear();
        r
    }
}

impl FrameReader for MsgpackReader {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<(Vec<Value>, usize)>> {
        let Some((frame, end)) = self.frame(buf)? else {
            return Ok(None);
        };
        let r = match (MpDecoder { b: frame, i: 0 }).flat(self.limits.max_depth) {
            Some(r) => r,
            None => self.message(frame),
        };
        Ok(Some((r?, end)))
    }
}

impl SplitReader for MsgpackReader {
    fn decode_split<'b>(&mut self, buf: &'b [u8]) -> Result<Option<(Dest<'b>, Msg, usize)>> {
        let Some((frame, end)) = self.frame(buf)? else {
            return Ok(None);
        };
        if let Some(r) = (MpDecoder { b: frame, i: 0 }).flat_split(self.limits.max_depth, &mut self.last_dest)
        {
            return r.map(|(dest, payload)| Some((dest, payload, end)));
        }
        let (dest, payload) = split(self.message(frame)?);
        if let Dest::Port(name) = &dest {
            remember(&mut self.last_dest, name.as_bytes());
        }
        Ok(Some((dest, payload, end)))
    }
}

/// Makes `name` the last destination (reusing the buffer).
fn remember(last: &mut Option<Vec<u8>>, name: &[u8]) {
    let l = last.get_or_insert_with(Vec::new);
    l.clear();
    l.extend_from_slice(name);
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
        self.str_ref(len).map(str::to_owned)
    }

    fn str_ref(&mut self, len: usize) -> Result<&'a str> {
        let at = self.i;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) => Err(decode_err(format!(
                "invalid UTF-8 in a msgpack string at offset {} of the frame",
                at + e.valid_up_to()
            ))),
        }
    }

    /// Decodes one value that is not a container, its marker just read at
    /// offset `at`.
    fn scalar(&mut self, marker: u8, at: usize) -> Result<Value> {
        Ok(match marker {
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
                return Err(decode_err(format!("invalid msgpack marker 0x{marker:02x} at offset {at}")));
            }
        })
    }

    /// Decodes the most common frame, a short array of values none of
    /// which is a container, without the container stack. `None` for any
    /// other frame, well-formed or not: [`MpDecoder::message`] then decodes
    /// it, or names what is wrong.
    fn flat(mut self, max_depth: usize) -> Option<Result<Vec<Value>>> {
        let n = self.flat_len(max_depth)?;
        let mut items = Vec::with_capacity(n);
        if let Err(e) = self.flat_items(n, |v| items.push(v))? {
            return Some(Err(e));
        }
        (self.i == self.b.len()).then_some(Ok(items))
    }

    /// [`MpDecoder::flat`] split as a link routes it: the destination, a
    /// short string, borrowed from the frame (or [`Dest::Same`] when it is
    /// `last`, which it becomes), and the payload decoded straight into a
    /// message.
    fn flat_split(mut self, max_depth: usize, last: &mut Option<Vec<u8>>) -> Option<Result<(Dest<'a>, Msg)>> {
        let n = self.flat_len(max_depth)?;
        if n == 0 {
            return (self.i == self.b.len()).then_some(Ok((Dest::Keepalive, Msg::new())));
        }
        let len = match self.b.get(self.i)? {
            &m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            _ => return None,
        };
        self.i += 1;
        let dest = if last.as_deref().is_some_and(|l| self.b.get(self.i..self.i + len) == Some(l)) {
            self.i += len;
            Dest::Same
        } else {
            match self.str_ref(len) {
                Ok(d) => {
                    remember(last, d.as_bytes());
                    Dest::Port(Cow::Borrowed(d))
                }
                Err(e) => return Some(Err(e)),
            }
        };
        let mut items = Items::with_capacity(n - 1);
        if let Err(e) = self.flat_items(n - 1, |v| items.push(v))? {
            return Some(Err(e));
        }
        (self.i == self.b.len()).then_some(Ok((dest, Msg(items))))
    }

    /// The length of a frame's array when it is a fixarray that the rest
    /// of the frame can hold (`None` otherwise); moves past its marker.
    fn flat_len(&mut self, max_depth: usize) -> Option<usize> {
        let n = match self.b.first() {
            Some(&m @ 0x90..=0x9f) if max_depth >= 1 => usize::from(m & 0x0f),
            _ => return None,
        };
        self.i = 1;
        (n <= self.remaining()).then_some(n)
    }

    /// Decodes `n` values that are not containers, each handed to `push`: `None` at
    /// the first container or the end of the frame.
    fn flat_items(&mut self, n: usize, mut push: impl FnMut(Value)) -> Option<Result<()>> {
        for _ in 0..n {
            let at = self.i;
            let marker = *self.b.get(at)?;
            if matches!(marker, 0x80..=0x9f | 0xdc..=0xdf) {
                return None;
            }
            self.i += 1;
            match self.scalar(marker, at) {
                Ok(v) => push(v),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(()))
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
                self.scalar(marker, at)?
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
    use super::super::testkit::*;
    use super::*;
    use crate::wire::codec::ber_encode;
    use proptest::prelude::*;

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

    /// Decodes a stream with `decode_split`, `Dest::Same` resolved to the
    /// name before it, as the messages `[dest, payload...]` they were.
    fn split_all(stream: &[u8]) -> Result<Vec<Vec<Value>>> {
        let (mut r, mut at, mut last, mut out) = (MsgpackReader::default(), 0, None::<String>, Vec::new());
        while let Some((dest, payload, used)) = r.decode_split(&stream[at..])? {
            at += used;
            let mut m = match dest {
                Dest::Keepalive => vec![],
                Dest::Invalid(_) => vec![Value::Null],
                Dest::Port(name) => {
                    last = Some(name.into_owned());
                    vec![Value::from(last.clone().unwrap())]
                }
                Dest::Same => vec![Value::from(last.clone().expect("a name before Same"))],
            };
            m.extend(payload);
            out.push(m);
        }
        Ok(out)
    }

    #[test]
    fn split_says_same_only_for_the_last_destination_whatever_path_decoded_it() {
        let nested = Value::Array(vec![Value::from(1)]);
        let msgs: Vec<Vec<Value>> = vec![
            vec!["a".into(), 1.into()],
            vec!["a".into(), 2.into()],
            vec!["b".into(), nested.clone()], // the stack decoder's path
            vec!["a".into(), 3.into()],
            vec![],
            vec!["a".into()],
            vec!["".into(), 4.into()],
            vec!["".into(), nested],
            vec!["".into()],
        ];
        let mut stream = Vec::new();
        for m in &msgs {
            encode_msgpack(m, &mut stream).unwrap();
        }
        let mut r = MsgpackReader::default();
        let mut dests = Vec::new();
        let mut at = 0;
        while let Some((d, _, used)) = r.decode_split(&stream[at..]).unwrap() {
            at += used;
            dests.push(d);
        }
        let port = |s: &'static str| Dest::Port(Cow::Borrowed(s));
        let owned = |s: &str| Dest::Port(Cow::Owned(s.to_owned()));
        assert_eq!(
            dests,
            [
                port("a"),
                Dest::Same,
                owned("b"),
                port("a"),
                Dest::Keepalive,
                Dest::Same,
                port(""),
                owned(""),
                Dest::Same
            ]
        );
        assert_eq!(split_all(&stream).unwrap(), msgs);
    }

    proptest! {
        #[test]
        fn prop_split_is_decode_split(
            msgs in proptest::collection::vec(
                (prop_oneof![Just(None), Just(Some("a")), Just(Some("b")), Just(Some(""))], arb_msg(true)),
                1..12,
            )
        ) {
            let msgs: Vec<Vec<Value>> = msgs
                .into_iter()
                .map(|(dest, mut payload)| match dest {
                    Some(d) => {
                        payload.insert(0, Value::from(d));
                        payload
                    }
                    None => payload,
                })
                .collect();
            let mut stream = Vec::new();
            for m in &msgs {
                encode_msgpack(m, &mut stream).unwrap();
            }
            let expected: Vec<Vec<Value>> = msgs
                .iter()
                .map(|m| match m.first() {
                    Some(Value::Str(_)) | None => m.clone(),
                    Some(_) => [vec![Value::Null], m[1..].to_vec()].concat(),
                })
                .collect();
            prop_assert_eq!(split_all(&stream).unwrap(), expected);
        }
    }

    proptest! {
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
    }
}

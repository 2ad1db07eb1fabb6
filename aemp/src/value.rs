//! The dynamic message model: JSON's values plus bytes.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::id::{NodeId, PortId};

/// A string-keyed map, as in JSON objects.
pub type Map = BTreeMap<String, Value>;

/// One element of a message.
///
/// The model is JSON's (null, bool, numbers, strings, arrays, string-keyed
/// maps) with 64-bit signed and unsigned integers kept apart from floats, plus
/// [`Value::Bytes`], which only the binary (msgpack) framing can carry.
///
/// Integers are normalised: a value that fits `i64` is always
/// [`Value::Int`]; [`Value::UInt`] holds only values above `i64::MAX`. So
/// `Value::from(5u8) == Value::from(5i64)`.
#[derive(Clone, PartialEq, Default)]
pub enum Value {
    /// JSON `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Raw bytes (msgpack `bin`; JSON cannot carry them).
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Value>),
    /// A map with string keys.
    Map(Map),
}

impl Value {
    /// A short name of this value's type, used in error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one that fits `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The integer, if this is a non-negative one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) if i >= 0 => Some(i as u64),
            Value::UInt(u) => Some(u),
            _ => None,
        }
    }

    /// The number as a float (integers are converted).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::UInt(u) => Some(u as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Converts this value into a Rust type through serde.
    ///
    /// # Errors
    /// [`Error::Value`] naming what was expected and what was found.
    pub fn to<T: DeserializeOwned>(&self) -> Result<T> {
        crate::de::from_value_ref(self)
    }

    /// Converts this value into a Rust type through serde, consuming it.
    ///
    /// # Errors
    /// [`Error::Value`] naming what was expected and what was found.
    pub fn into<T: DeserializeOwned>(self) -> Result<T> {
        crate::de::from_value(self)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Values print as compact JSON; bytes print as `b"..."` with escapes.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => {
                if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
                    write!(f, "{x:.1}")
                } else if x.is_finite() && x.abs() >= 1e16 {
                    // With an exponent, so it still reads as a float.
                    write!(f, "{x:e}")
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Str(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Value::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
            Value::Array(a) => fmt_seq(a, f),
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:", serde_json::Value::String(k.clone()))?;
                    fmt::Display::fmt(v, f)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Prints values as a compact JSON array.
fn fmt_seq(items: &[Value], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("[")?;
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        fmt::Display::fmt(v, f)?;
    }
    f.write_str("]")
}

macro_rules! from_signed {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value { Value::Int(v as i64) }
        }
    )*};
}
from_signed!(i8 i16 i32 i64 isize);

macro_rules! from_unsigned {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                let v = v as u64;
                if v <= i64::MAX as u64 { Value::Int(v as i64) } else { Value::UInt(v) }
            }
        }
    )*};
}
from_unsigned!(u8 u16 u32 u64 usize);

impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Float(v as f64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Str(v.clone())
    }
}
impl From<PortId> for Value {
    fn from(v: PortId) -> Value {
        Value::Str(v.as_str().to_owned())
    }
}
impl From<&PortId> for Value {
    fn from(v: &PortId) -> Value {
        Value::Str(v.as_str().to_owned())
    }
}
impl From<NodeId> for Value {
    fn from(v: NodeId) -> Value {
        Value::Str(v.as_str().to_owned())
    }
}
impl From<&NodeId> for Value {
    fn from(v: &NodeId) -> Value {
        Value::Str(v.as_str().to_owned())
    }
}
impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Null
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Value {
        Value::Map(v)
    }
}
impl From<Msg> for Value {
    fn from(v: Msg) -> Value {
        Value::Array(v.0.into_vec())
    }
}

/// Wraps bytes so that they become [`Value::Bytes`] (a `Vec<u8>` would become
/// an array of integers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl From<Bytes> for Value {
    fn from(v: Bytes) -> Value {
        Value::Bytes(v.0)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::UInt(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(m) => {
                Value::Map(m.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

/// A message: an ordered list of values, by convention a string tag first.
///
/// Build one with [`msg!`](crate::msg!), take it apart with [`Msg::tag`],
/// [`Msg::get`], [`Msg::str`] and [`Msg::port`], which return errors, not
/// panics, when the message has another shape.
///
/// ```
/// use aemp::{msg, Msg};
/// let m: Msg = msg!["add", 2, 3.5, "x"];
/// assert_eq!(m.tag(), Some("add"));
/// assert_eq!(m.get::<i32>(1).unwrap(), 2);
/// assert_eq!(m.get::<f64>(2).unwrap(), 3.5);
/// assert!(m.get::<i32>(3).is_err());
/// ```
///
/// Messages of up to [`Msg::INLINE`] values are stored inline, without a heap
/// allocation of their own, so short messages cost no allocator round trip
/// between the sending and the receiving thread.
#[derive(Clone, PartialEq, Default)]
pub struct Msg(pub(crate) Items);

/// The storage of a message's values.
pub(crate) type Items = smallvec::SmallVec<[Value; Msg::INLINE]>;

impl Msg {
    /// How many values a message holds without allocating.
    pub const INLINE: usize = 3;

    /// An empty message.
    pub fn new() -> Msg {
        Msg(Items::new())
    }

    /// A message of the values of an array (inline when they fit).
    pub fn from_array<const N: usize>(values: [Value; N]) -> Msg {
        if N <= Msg::INLINE {
            // Straight into the inline buffer (this is every `msg!`): a
            // slot is written only when a value goes in, so no placeholder
            // is made and dropped.
            let mut items = Items::new();
            for v in values {
                items.push(v);
            }
            Msg(items)
        } else {
            Msg(Items::from_vec(Vec::from(values)))
        }
    }

    /// The first element, if it is a string.
    pub fn tag(&self) -> Option<&str> {
        self.0.first().and_then(Value::as_str)
    }

    /// Element `i`.
    ///
    /// # Errors
    /// [`Error::Element`] when the message has no element `i`.
    pub fn at(&self, i: usize) -> Result<&Value> {
        self.0.get(i).ok_or_else(|| self.element_error(i, "missing".into()))
    }

    /// Element `i` converted to `T` through serde.
    ///
    /// # Errors
    /// [`Error::Element`] naming the tag, the element, the expected type
    /// and what was found (`message "add": element 1: invalid type:
    /// expected i32, found string "x"`), or that it is missing.
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T> {
        let v = self.at(i)?;
        crate::de::from_value_ref(v).map_err(|e| self.element_error(i, e.to_string()))
    }

    /// Element `i` as a string slice.
    ///
    /// # Errors
    /// [`Error::Element`] when it is missing or not a string.
    pub fn str(&self, i: usize) -> Result<&str> {
        let v = self.at(i)?;
        v.as_str().ok_or_else(|| self.element_error(i, format!("expected a string, found {}", v.kind())))
    }

    /// Element `i` as a port ID.
    ///
    /// # Errors
    /// [`Error::Element`] when it is missing, not a string, or not a valid
    /// port ID.
    pub fn port(&self, i: usize) -> Result<PortId> {
        PortId::new(self.str(i)?).map_err(|e| self.element_error(i, e.to_string()))
    }

    /// The error for element `i`, naming the tag (a first element that is a
    /// string) unless the element is the tag itself.
    fn element_error(&self, i: usize, problem: String) -> Error {
        let tag = if i == 0 { None } else { self.tag().map(str::to_owned) };
        Error::Element { tag, index: i, after_tag: false, problem }
    }

    /// Appends a value.
    pub fn push(&mut self, v: impl Into<Value>) {
        self.0.push(v.into());
    }

    /// Appends all values of another message.
    pub fn extend(&mut self, other: impl IntoIterator<Item = Value>) {
        self.0.extend(other);
    }

    /// Inserts a value at position `i`, shifting the later ones.
    ///
    /// # Panics
    /// When `i` is greater than the length, as [`Vec::insert`] does.
    pub fn insert(&mut self, i: usize, v: impl Into<Value>) {
        self.0.insert(i, v.into());
    }

    /// Removes and returns the last element, if any.
    pub fn pop(&mut self) -> Option<Value> {
        self.0.pop()
    }

    /// Removes and returns the first element, if any.
    pub fn shift(&mut self) -> Option<Value> {
        if self.0.is_empty() {
            None
        } else {
            Some(self.0.remove(0))
        }
    }

    /// The elements from `i` on, as a new message.
    pub fn rest(&self, i: usize) -> Msg {
        self.0.get(i..).map(|r| r.iter().cloned().collect()).unwrap_or_default()
    }

    /// The elements as a vector.
    pub fn into_vec(self) -> Vec<Value> {
        self.0.into_vec()
    }

    /// Converts the whole message (as an array) to `T` through serde; a
    /// tuple type reads the elements in order.
    ///
    /// # Errors
    /// [`Error::Value`] when the shape differs.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        crate::de::from_values(&self.0)
    }

    /// Builds a message from any serde value that serialises as a sequence
    /// (a tuple, a `Vec`, ...).
    ///
    /// # Errors
    /// [`Error::Value`] when it does not serialise as a sequence.
    pub fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Msg> {
        match crate::ser::to_value(v)? {
            Value::Array(a) => Ok(Msg::from(a)),
            other => Err(Error::Value(format!("expected a sequence, found {}", other.kind()))),
        }
    }
}

impl std::ops::Deref for Msg {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        &self.0
    }
}

impl std::ops::DerefMut for Msg {
    fn deref_mut(&mut self) -> &mut [Value] {
        &mut self.0
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_seq(&self.0, f)
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<Vec<Value>> for Msg {
    fn from(v: Vec<Value>) -> Msg {
        if v.len() <= Msg::INLINE {
            Msg(v.into_iter().collect())
        } else {
            Msg(Items::from_vec(v))
        }
    }
}

impl From<&[Value]> for Msg {
    fn from(v: &[Value]) -> Msg {
        Msg(v.iter().cloned().collect())
    }
}

impl<const N: usize> From<[Value; N]> for Msg {
    fn from(v: [Value; N]) -> Msg {
        Msg::from_array(v)
    }
}

impl FromIterator<Value> for Msg {
    fn from_iter<I: IntoIterator<Item = Value>>(it: I) -> Msg {
        Msg(it.into_iter().collect())
    }
}

impl Extend<Value> for Msg {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, it: I) {
        self.0.extend(it);
    }
}

/// The values of a [`Msg`], by value (from [`Msg::into_iter`]).
pub struct MsgIntoIter(smallvec::IntoIter<[Value; Msg::INLINE]>);

impl Iterator for MsgIntoIter {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for MsgIntoIter {
    fn next_back(&mut self) -> Option<Value> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for MsgIntoIter {}

impl IntoIterator for Msg {
    type Item = Value;
    type IntoIter = MsgIntoIter;
    fn into_iter(self) -> MsgIntoIter {
        MsgIntoIter(self.0.into_iter())
    }
}

impl<'a> IntoIterator for &'a Msg {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Builds a [`Msg`] from values that convert [`Into`] a [`Value`].
///
/// ```
/// use aemp::{msg, Value};
/// let m = msg!["ping", 1, true];
/// assert_eq!(m.len(), 3);
/// assert_eq!(m[2], Value::Bool(true));
/// ```
#[macro_export]
macro_rules! msg {
    () => { $crate::Msg::new() };
    ($($v:expr),+ $(,)?) => {
        $crate::Msg::from_array([$($crate::Value::from($v)),+])
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_floats_at_every_magnitude() {
        assert_eq!(Value::Float(2.0).to_string(), "2.0");
        assert_eq!(Value::Float(0.25).to_string(), "0.25");
        assert_eq!(Value::Float(1.18059162071741e21).to_string(), "1.18059162071741e21");
        assert_eq!(Value::Float(-3e300).to_string(), "-3e300");
        // And each of those reads back as the same float.
        for x in [2.0, 0.25, 1.18059162071741e21, -3e300] {
            let back: serde_json::Value = serde_json::from_str(&Value::Float(x).to_string()).unwrap();
            assert_eq!(back.as_f64(), Some(x));
            assert!(back.is_f64());
        }
    }

    #[test]
    fn short_messages_are_inline_and_long_ones_keep_their_values() {
        let m = crate::msg!["a", 1, 2.5];
        assert!(!m.0.spilled());
        assert_eq!(m.to_vec(), vec![Value::from("a"), Value::Int(1), Value::Float(2.5)]);
        assert_eq!(crate::msg!["a"].to_vec(), vec![Value::from("a")]);
        assert_eq!(crate::msg!["a", 1].to_vec(), vec![Value::from("a"), Value::Int(1)]);
        assert_eq!(Msg::from_array::<0>([]), Msg::new());
        let long = crate::msg!["a", 1, 2, 3, 4];
        assert!(long.0.spilled());
        assert_eq!(long.len(), 5);
        assert_eq!(Msg::from(long.clone().into_vec()), long);
        assert_eq!(long.into_iter().next_back(), Some(Value::Int(4)));
    }
}

//! Serde deserialisation out of [`Value`], owned or borrowed.
//!
//! [`from_value`] consumes a [`Value`]; [`from_value_ref`] borrows one, so
//! that `&str` and `&[u8]` fields can point into it; [`from_values`] reads a
//! slice of values as a sequence (a tuple type reads the elements in order).
//!
//! Both `Value` and `&Value` implement [`serde::Deserializer`]. Type
//! mismatches are reported as [`Error::Value`] naming what was expected and
//! what was found, e.g. `invalid type: expected a string, found integer 42`.
//!
//! Mapping: `null` is `None` for options and `()` for units; an enum is
//! either a string (unit variant) or a map with exactly one entry (variant
//! name to content), as [`to_value`](crate::to_value) writes them; a struct
//! reads a map (or an array, field by field); integers are range-checked
//! (`300` into a `u8` is an error, not a wrap); floats accept integers;
//! bytes accept [`Value::Bytes`] and [`Value::Str`] (its UTF-8); a sequence
//! of `u8` also accepts [`Value::Bytes`]; map keys can be read as integers
//! or bools when they spell one, as with serde_json.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::value::{Map, Msg, Value};

/// Converts a [`Value`] into a Rust type, consuming it.
///
/// ```
/// use aemp::{from_value, Value};
/// let v = Value::Array(vec![Value::from(1), Value::from("x")]);
/// let (n, s): (u8, String) = from_value(v).unwrap();
/// assert_eq!((n, s.as_str()), (1, "x"));
/// let e = from_value::<String>(Value::from(42)).unwrap_err();
/// assert_eq!(e.to_string(), "invalid type: expected a string, found integer 42");
/// ```
///
/// # Errors
/// [`Error::Value`] naming what was expected and what was found.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T> {
    T::deserialize(v)
}

/// Converts a borrowed [`Value`] into a Rust type, which may borrow strings
/// and bytes from it.
///
/// ```
/// use aemp::{from_value_ref, Value};
/// let v = Value::from("hello");
/// let s: &str = from_value_ref(&v).unwrap();
/// assert_eq!(s, "hello");
/// ```
///
/// # Errors
/// [`Error::Value`] naming what was expected and what was found.
pub fn from_value_ref<'de, T: Deserialize<'de>>(v: &'de Value) -> Result<T> {
    T::deserialize(v)
}

/// Converts a slice of values, read as a sequence, into a Rust type: a tuple
/// or tuple struct reads the elements in order, a `Vec` takes them all.
///
/// ```
/// use aemp::{from_values, Value};
/// let vs = [Value::from("add"), Value::from(2), Value::from(3.5)];
/// let (tag, a, b): (String, i32, f64) = from_values(&vs).unwrap();
/// assert_eq!((tag.as_str(), a, b), ("add", 2, 3.5));
/// assert!(from_values::<(String, i32)>(&vs).is_err()); // one element too many
/// ```
///
/// # Errors
/// [`Error::Value`] when the shape or an element's type differs, including
/// when the slice has more or fewer elements than a tuple type takes.
pub fn from_values<T: DeserializeOwned>(vs: &[Value]) -> Result<T> {
    T::deserialize(SliceDeserializer(vs))
}

// ---------------------------------------------------------------------------
// Error wording

/// Describes a value for an error message: its kind and, for scalars, the
/// value itself (long strings are shortened).
struct Found<'a>(&'a Value);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        match v {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "bool {b}"),
            Value::Int(i) => write!(f, "integer {i}"),
            Value::UInt(u) => write!(f, "integer {u}"),
            Value::Float(_) => write!(f, "float {v}"),
            Value::Str(s) => {
                const MAX: usize = 40;
                if s.chars().count() <= MAX {
                    write!(f, "string {s:?}")
                } else {
                    let short: String = s.chars().take(MAX).collect();
                    write!(f, "string {short:?}...")
                }
            }
            Value::Bytes(b) => write!(f, "bytes ({})", Count(b.len(), "byte", "bytes")),
            Value::Array(a) => write!(f, "array of {}", Count(a.len(), "element", "elements")),
            Value::Map(m) => write!(f, "map of {}", Count(m.len(), "entry", "entries")),
        }
    }
}

/// `1 element`, `2 elements`.
struct Count(usize, &'static str, &'static str);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, if self.0 == 1 { self.1 } else { self.2 })
    }
}

fn invalid_type(v: &Value, exp: &dyn Expected) -> Error {
    Error::Value(format!("invalid type: expected {exp}, found {}", Found(v)))
}

fn out_of_range(v: &Value, exp: &dyn Expected) -> Error {
    Error::Value(format!("invalid value: expected {exp}, found {} (out of range)", Found(v)))
}

fn too_long(len: usize, taken: usize) -> Error {
    Error::Value(format!(
        "invalid length: expected {}, found array of {}",
        Count(taken, "element", "elements"),
        Count(len, "element", "elements")
    ))
}

fn wrong_len(found: &dyn fmt::Display, exp: &dyn Expected) -> Error {
    Error::Value(format!("invalid length: expected {exp}, found {found}"))
}

fn wrong_struct_len(name: &str, len: usize, found: &dyn fmt::Display) -> Error {
    Error::Value(format!(
        "invalid length: expected tuple struct {name} with {}, found {found}",
        Count(len, "element", "elements")
    ))
}

fn int_of(v: &Value) -> Option<i128> {
    match *v {
        Value::Int(i) => Some(i.into()),
        Value::UInt(u) => Some(u.into()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Methods shared by the owned and the borrowed deserialisers. Inside them
// `self` is either `Value` or `&'de Value`; `let v: &Value = &self;` works
// for both through deref coercion.

macro_rules! deserialize_ints {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let v: &Value = &self;
            match int_of(v) {
                Some(n) => match <$ty>::try_from(n) {
                    Ok(x) => visitor.$visit(x),
                    Err(_) => Err(out_of_range(v, &visitor)),
                },
                None => Err(invalid_type(v, &visitor)),
            }
        }
    )*};
}

macro_rules! deserialize_common {
    () => {
        deserialize_ints! {
            deserialize_i8 => visit_i8: i8,
            deserialize_i16 => visit_i16: i16,
            deserialize_i32 => visit_i32: i32,
            deserialize_i64 => visit_i64: i64,
            deserialize_i128 => visit_i128: i128,
            deserialize_u8 => visit_u8: u8,
            deserialize_u16 => visit_u16: u16,
            deserialize_u32 => visit_u32: u32,
            deserialize_u64 => visit_u64: u64,
            deserialize_u128 => visit_u128: u128,
        }

        fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let v: &Value = &self;
            match *v {
                Value::Float(f) => visitor.visit_f32(f as f32),
                Value::Int(i) => visitor.visit_f32(i as f32),
                Value::UInt(u) => visitor.visit_f32(u as f32),
                _ => Err(invalid_type(v, &visitor)),
            }
        }

        fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let v: &Value = &self;
            match *v {
                Value::Float(f) => visitor.visit_f64(f),
                Value::Int(i) => visitor.visit_f64(i as f64),
                Value::UInt(u) => visitor.visit_f64(u as f64),
                _ => Err(invalid_type(v, &visitor)),
            }
        }

        fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let v: &Value = &self;
            match *v {
                Value::Bool(b) => visitor.visit_bool(b),
                _ => Err(invalid_type(v, &visitor)),
            }
        }

        fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let v: &Value = &self;
            if let Value::Str(s) = v {
                let mut it = s.chars();
                if let (Some(c), None) = (it.next(), it.next()) {
                    return visitor.visit_char(c);
                }
            }
            Err(invalid_type(v, &visitor))
        }

        fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let v: &Value = &self;
            match v {
                Value::Null => visitor.visit_unit(),
                _ => Err(invalid_type(v, &visitor)),
            }
        }

        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value> {
            self.deserialize_unit(visitor)
        }

        fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.visit_unit()
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            let v: &Value = &self;
            if v.is_null() {
                visitor.visit_none()
            } else {
                visitor.visit_some(self)
            }
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
            let v: &Value = &self;
            match v {
                Value::Array(a) if a.len() != len => Err(wrong_len(&Found(v), &visitor)),
                _ => self.deserialize_seq(visitor),
            }
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            len: usize,
            visitor: V,
        ) -> Result<V::Value> {
            let v: &Value = &self;
            match v {
                Value::Array(a) if a.len() != len => Err(wrong_struct_len(name, len, &Found(v))),
                _ => self.deserialize_seq(visitor),
            }
        }

        fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_string(visitor)
        }

        fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_byte_buf(visitor)
        }
    };
}

/// Visits the elements of a sequence and fails if any are left over.
fn visit_seq<'de, I, V>(iter: I, visitor: V) -> Result<V::Value>
where
    I: ExactSizeIterator,
    I::Item: Deserializer<'de, Error = Error>,
    V: Visitor<'de>,
{
    let len = iter.len();
    let mut seq = SeqDeserializer(iter);
    let out = visitor.visit_seq(&mut seq)?;
    match seq.0.len() {
        0 => Ok(out),
        left => Err(too_long(len, len - left)),
    }
}

/// Visits the entries of a map and fails if any are left over.
fn visit_map<'de, I, T, V>(iter: I, visitor: V) -> Result<V::Value>
where
    I: ExactSizeIterator<Item = (Cow<'de, str>, T)>,
    T: Deserializer<'de, Error = Error>,
    V: Visitor<'de>,
{
    let len = iter.len();
    let mut map = MapDeserializer { iter, value: None };
    let out = visitor.visit_map(&mut map)?;
    match map.iter.len() {
        0 => Ok(out),
        left => Err(Error::Value(format!(
            "invalid length: expected {}, found map of {}",
            Count(len - left, "entry", "entries"),
            Count(len, "entry", "entries")
        ))),
    }
}

/// Visits the bytes of a [`Value::Bytes`] as a sequence of `u8`.
fn visit_byte_seq<'de, V: Visitor<'de>>(bytes: &[u8], visitor: V) -> Result<V::Value> {
    let mut seq = serde::de::value::SeqDeserializer::<_, Error>::new(bytes.iter().copied());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Owned

impl<'de> Deserializer<'de> for Value {
    type Error = Error;

    deserialize_common!();

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::UInt(u) => visitor.visit_u64(u),
            Value::Float(f) => visitor.visit_f64(f),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Array(a) => visit_seq(a.into_iter(), visitor),
            Value::Map(m) => visit_map(m.into_iter().map(|(k, v)| (Cow::Owned(k), v)), visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Str(s) => visitor.visit_string(s),
            other => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Str(s) => visitor.visit_byte_buf(s.into_bytes()),
            other => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Array(a) => visit_seq(a.into_iter(), visitor),
            Value::Bytes(b) => visit_byte_seq(&b, visitor),
            other => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Map(m) => visit_map(m.into_iter().map(|(k, v)| (Cow::Owned(k), v)), visitor),
            other => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Map(m) => visit_map(m.into_iter().map(|(k, v)| (Cow::Owned(k), v)), visitor),
            Value::Array(a) => visit_seq(a.into_iter(), visitor),
            other => Err(invalid_type(&other, &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Str(s) => {
                visitor.visit_enum(EnumDeserializer::<Value> { variant: Cow::Owned(s), content: None })
            }
            Value::Map(m) if m.len() == 1 => {
                let mut it = m.into_iter();
                match it.next() {
                    Some((k, v)) => {
                        visitor.visit_enum(EnumDeserializer { variant: Cow::Owned(k), content: Some(v) })
                    }
                    None => Err(Error::Value("internal error: map of one entry is empty".into())),
                }
            }
            other => Err(enum_error(&other, &visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Str(s) => visitor.visit_string(s),
            Value::Int(i) if i >= 0 => visitor.visit_u64(i as u64),
            Value::UInt(u) => visitor.visit_u64(u),
            other => Err(invalid_type(&other, &visitor)),
        }
    }
}

fn enum_error(v: &Value, exp: &dyn Expected) -> Error {
    Error::Value(format!(
        "invalid type: expected {exp} (a string or a map with one entry), found {}",
        Found(v)
    ))
}

impl<'de> IntoDeserializer<'de, Error> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

// ---------------------------------------------------------------------------
// Borrowed

impl<'de> Deserializer<'de> for &'de Value {
    type Error = Error;

    deserialize_common!();

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Value::Array(a) => visit_seq(a.iter(), visitor),
            Value::Map(m) => visit_map(m.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), v)), visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Str(s) => visitor.visit_borrowed_str(s),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Value::Str(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Array(a) => visit_seq(a.iter(), visitor),
            Value::Bytes(b) => visit_byte_seq(b, visitor),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Map(m) => visit_map(m.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), v)), visitor),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Map(m) => visit_map(m.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), v)), visitor),
            Value::Array(a) => visit_seq(a.iter(), visitor),
            other => Err(invalid_type(other, &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Value::Str(s) => {
                visitor.visit_enum(EnumDeserializer::<&Value> { variant: Cow::Borrowed(s), content: None })
            }
            Value::Map(m) if m.len() == 1 => match m.iter().next() {
                Some((k, v)) => {
                    visitor.visit_enum(EnumDeserializer { variant: Cow::Borrowed(k), content: Some(v) })
                }
                None => Err(Error::Value("internal error: map of one entry is empty".into())),
            },
            other => Err(enum_error(other, &visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Int(i) if *i >= 0 => visitor.visit_u64(*i as u64),
            Value::UInt(u) => visitor.visit_u64(*u),
            other => Err(invalid_type(other, &visitor)),
        }
    }
}

impl<'de> IntoDeserializer<'de, Error> for &'de Value {
    type Deserializer = &'de Value;
    fn into_deserializer(self) -> &'de Value {
        self
    }
}

// ---------------------------------------------------------------------------
// Accessors

/// Sequence access over owned or borrowed values.
struct SeqDeserializer<I>(I);

impl<'de, I> SeqAccess<'de> for SeqDeserializer<I>
where
    I: ExactSizeIterator,
    I::Item: Deserializer<'de, Error = Error>,
{
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.0.next() {
            Some(v) => seed.deserialize(v).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Map access over owned or borrowed entries.
struct MapDeserializer<I, T> {
    iter: I,
    value: Option<T>,
}

impl<'de, I, T> MapAccess<'de> for MapDeserializer<I, T>
where
    I: ExactSizeIterator<Item = (Cow<'de, str>, T)>,
    T: Deserializer<'de, Error = Error>,
{
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(KeyDeserializer(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        match self.value.take() {
            Some(v) => seed.deserialize(v),
            None => Err(Error::Value("map value requested before its key".into())),
        }
    }

    fn next_entry_seed<K: DeserializeSeed<'de>, S: DeserializeSeed<'de>>(
        &mut self,
        kseed: K,
        vseed: S,
    ) -> Result<Option<(K::Value, S::Value)>> {
        match self.iter.next() {
            Some((k, v)) => {
                let key = kseed.deserialize(KeyDeserializer(k))?;
                Ok(Some((key, vseed.deserialize(v)?)))
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Deserialises a map key (always a string in the data model) into strings,
/// and also into integers, bools or unit enum variants that it spells.
struct KeyDeserializer<'de>(Cow<'de, str>);

impl KeyDeserializer<'_> {
    fn invalid(&self, exp: &dyn Expected) -> Error {
        Error::Value(format!("invalid value: expected {exp}, found map key {:?}", self.0))
    }
}

macro_rules! deserialize_key_parse {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            match self.0.parse::<$ty>() {
                Ok(x) => visitor.$visit(x),
                Err(_) => Err(self.invalid(&visitor)),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for KeyDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.0 {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    deserialize_key_parse! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(serde::de::value::CowStrDeserializer::<Error>::new(self.0))
    }

    serde::forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// Enum access: the variant name and, unless it is a unit variant written as
/// a bare string, the content.
struct EnumDeserializer<'de, T> {
    variant: Cow<'de, str>,
    content: Option<T>,
}

impl<'de, T: Deserializer<'de, Error = Error>> EnumAccess<'de> for EnumDeserializer<'de, T> {
    type Error = Error;
    type Variant = VariantDeserializer<T>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, VariantDeserializer<T>)> {
        let variant = seed.deserialize(KeyDeserializer(self.variant))?;
        Ok((variant, VariantDeserializer(self.content)))
    }
}

/// The content of an enum variant.
struct VariantDeserializer<T>(Option<T>);

fn unit_variant_error(what: &str) -> Error {
    Error::Value(format!("invalid type: expected {what}, found unit variant"))
}

impl<'de, T: Deserializer<'de, Error = Error>> VariantAccess<'de> for VariantDeserializer<T> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(v) => <()>::deserialize(v),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        match self.0 {
            Some(v) => seed.deserialize(v),
            None => Err(unit_variant_error("newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        match self.0 {
            Some(v) => v.deserialize_seq(visitor),
            None => Err(unit_variant_error("tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.0 {
            Some(v) => v.deserialize_struct("", fields, visitor),
            None => Err(unit_variant_error("struct variant")),
        }
    }
}

/// Reads a slice of values as a sequence (for [`from_values`]).
struct SliceDeserializer<'de>(&'de [Value]);

impl<'de> Deserializer<'de> for SliceDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visit_seq(self.0.iter(), visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        if self.0.len() != len {
            return Err(wrong_len(&Count(self.0.len(), "element", "elements"), &visitor));
        }
        visit_seq(self.0.iter(), visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        if self.0.len() != len {
            return Err(wrong_struct_len(name, len, &Count(self.0.len(), "element", "elements")));
        }
        visit_seq(self.0.iter(), visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq map struct enum identifier ignored_any
    }
}

// ---------------------------------------------------------------------------
// Deserialize for Value and Msg

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value (null, bool, number, string, bytes, array or map with string keys)")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        if let Ok(i) = i64::try_from(v) {
            Ok(Value::Int(i))
        } else if let Ok(u) = u64::try_from(v) {
            Ok(Value::UInt(u))
        } else {
            Err(E::custom(format!("integer {v} does not fit in 64 bits")))
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        match u64::try_from(v) {
            Ok(u) => Ok(Value::from(u)),
            Err(_) => Err(E::custom(format!("integer {v} does not fit in 64 bits"))),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Map(out))
    }
}

/// Any self-describing serde format's data becomes a [`Value`]: unsigned
/// integers are normalised, `None` and unit become `Null`, and maps must have
/// string keys.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct MsgVisitor;

impl<'de> Visitor<'de> for MsgVisitor {
    type Value = Msg;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message (a sequence of values)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Msg, A::Error> {
        let mut out = crate::value::Items::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Msg(out))
    }
}

/// A [`Msg`] deserialises from a sequence.
impl<'de> Deserialize<'de> for Msg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Msg, D::Error> {
        d.deserialize_seq(MsgVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ser::to_value;
    use serde::{Deserialize, Serialize};
    use std::collections::{BTreeMap, HashMap};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Newtype(i32);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pair(String, u16);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        name: String,
        age: u8,
        score: f64,
        tags: Vec<String>,
        parent: Option<Box<Rec>>,
        e: E,
        #[serde(default)]
        missing: Option<i32>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum E {
        A,
        B(u8),
        C(i32, bool),
        D { k: String },
    }

    /// A type that (de)serialises through serialize_bytes / deserialize_bytes.
    #[derive(Debug, PartialEq)]
    struct Blob(Vec<u8>);

    impl Serialize for Blob {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Blob {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Blob, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Blob;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                    Ok(Blob(v.to_vec()))
                }
                fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                    Ok(Blob(v))
                }
            }
            d.deserialize_bytes(V)
        }
    }

    /// Serialises, then deserialises both from the owned and the borrowed value.
    fn round_trip<T>(x: &T) -> Value
    where
        T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
    {
        let v = to_value(x).unwrap();
        assert_eq!(&from_value_ref::<T>(&v).unwrap(), x);
        assert_eq!(&from_value::<T>(v.clone()).unwrap(), x);
        v
    }

    fn err<T: DeserializeOwned + fmt::Debug>(v: Value) -> String {
        let by_ref = from_value_ref::<T>(&v).unwrap_err().to_string();
        let owned = from_value::<T>(v).unwrap_err().to_string();
        assert_eq!(by_ref, owned);
        owned
    }

    #[test]
    fn round_trips() {
        round_trip(&true);
        round_trip(&-7i8);
        round_trip(&u64::MAX);
        round_trip(&i64::MIN);
        round_trip(&(u64::MAX as u128));
        round_trip(&1.5f32);
        round_trip(&0.1f64);
        round_trip(&'ü');
        round_trip(&String::from("text"));
        round_trip(&());
        round_trip(&Unit);
        round_trip(&Newtype(-1));
        round_trip(&Pair("p".into(), 9));
        round_trip(&Some(5));
        round_trip(&None::<String>);
        round_trip(&(1u8, "two".to_string(), 3.0f64, [4i16, 5]));
        round_trip(&vec![E::A, E::B(1), E::C(-1, false), E::D { k: "x".into() }]);
        round_trip(&Blob(vec![0, 1, 255]));
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), vec![1, 2]);
        m.insert("b".to_string(), vec![]);
        round_trip(&m);
        let mut hm = HashMap::new();
        hm.insert(7u32, "seven".to_string());
        hm.insert(8u32, "eight".to_string());
        assert_eq!(round_trip(&hm).as_map().unwrap().len(), 2);
        let mut bm = BTreeMap::new();
        bm.insert(true, 1);
        round_trip(&bm);
        let rec = Rec {
            name: "n".into(),
            age: 200,
            score: 2.0,
            tags: vec!["t".into()],
            parent: Some(Box::new(Rec {
                name: "p".into(),
                age: 1,
                score: -0.5,
                tags: vec![],
                parent: None,
                e: E::B(3),
                missing: Some(1),
            })),
            e: E::D { k: "k".into() },
            missing: None,
        };
        round_trip(&rec);
    }

    #[test]
    fn option_null() {
        // null -> None; a non-null -> Some.
        assert_eq!(from_value::<Option<i32>>(Value::Null).unwrap(), None);
        assert_eq!(from_value::<Option<i32>>(Value::Int(1)).unwrap(), Some(1));
        // Some(None) collapses to null, which reads back as None.
        let v = to_value(&Some(None::<i32>)).unwrap();
        assert_eq!(v, Value::Null);
        assert_eq!(from_value::<Option<Option<i32>>>(v).unwrap(), None);
    }

    #[test]
    fn borrowing() {
        let v = Value::Array(vec![Value::Str("abc".into()), Value::Bytes(vec![1, 2])]);
        let (s, b): (&str, &[u8]) = from_value_ref(&v).unwrap();
        assert_eq!(s, "abc");
        assert_eq!(b, &[1, 2]);
        #[derive(Deserialize)]
        struct S<'a> {
            #[serde(borrow)]
            k: &'a str,
        }
        let m = Value::Map([("k".to_string(), Value::from("val"))].into_iter().collect());
        assert_eq!(from_value_ref::<S>(&m).unwrap().k, "val");
    }

    #[test]
    fn bytes_and_strings() {
        assert_eq!(from_value::<Blob>(Value::from("ab")).unwrap(), Blob(b"ab".to_vec()));
        assert_eq!(from_value::<Vec<u8>>(Value::Bytes(vec![1, 2])).unwrap(), vec![1, 2]);
        assert_eq!(from_value::<Vec<u8>>(Value::from(vec![1, 2])).unwrap(), vec![1, 2]);
        assert_eq!(
            err::<Blob>(Value::Array(vec![Value::Int(1)])),
            "invalid type: expected bytes, found array of 1 element"
        );
        assert_eq!(
            err::<String>(Value::Bytes(vec![1])),
            "invalid type: expected a string, found bytes (1 byte)"
        );
    }

    #[test]
    fn integer_ranges() {
        assert_eq!(
            err::<u8>(Value::Int(256)),
            "invalid value: expected u8, found integer 256 (out of range)"
        );
        assert_eq!(err::<u8>(Value::Int(-1)), "invalid value: expected u8, found integer -1 (out of range)");
        assert_eq!(
            err::<i64>(Value::UInt(u64::MAX)),
            "invalid value: expected i64, found integer 18446744073709551615 (out of range)"
        );
        assert_eq!(from_value::<i8>(Value::Int(-128)).unwrap(), -128);
        assert_eq!(from_value::<u64>(Value::UInt(u64::MAX)).unwrap(), u64::MAX);
        assert_eq!(from_value::<i128>(Value::UInt(u64::MAX)).unwrap(), u64::MAX as i128);
        assert_eq!(err::<i32>(Value::Float(1.0)), "invalid type: expected i32, found float 1.0");
        assert_eq!(from_value::<f64>(Value::Int(3)).unwrap(), 3.0);
        assert_eq!(from_value::<f32>(Value::UInt(1 << 63)).unwrap(), 9.223372e18);
    }

    #[test]
    fn error_wording() {
        assert_eq!(err::<String>(Value::Int(42)), "invalid type: expected a string, found integer 42");
        assert_eq!(err::<bool>(Value::Null), "invalid type: expected a boolean, found null");
        assert_eq!(err::<char>(Value::from("ab")), "invalid type: expected a character, found string \"ab\"");
        assert_eq!(err::<()>(Value::Bool(true)), "invalid type: expected unit, found bool true");
        let long = "x".repeat(100);
        assert_eq!(
            err::<i32>(Value::Str(long)),
            format!("invalid type: expected i32, found string \"{}\"...", "x".repeat(40))
        );
        assert_eq!(
            err::<Vec<i32>>(Value::Map(Map::new())),
            "invalid type: expected a sequence, found map of 0 entries"
        );
        assert_eq!(err::<Rec>(Value::Int(1)), "invalid type: expected struct Rec, found integer 1");
        assert_eq!(
            err::<E>(Value::Int(1)),
            "invalid type: expected enum E (a string or a map with one entry), found integer 1"
        );
        assert!(err::<E>(Value::from("Z")).starts_with("unknown variant `Z`"));
        assert_eq!(err::<E>(Value::from("B")), "invalid type: expected newtype variant, found unit variant");
        assert_eq!(
            err::<(i32, i32)>(Value::from(vec![1, 2, 3])),
            "invalid length: expected a tuple of size 2, found array of 3 elements"
        );
        assert_eq!(
            err::<(i32, i32)>(Value::from(vec![1])),
            "invalid length: expected a tuple of size 2, found array of 1 element"
        );
        assert_eq!(
            err::<Pair>(Value::from(vec![1])),
            "invalid length: expected tuple struct Pair with 2 elements, found array of 1 element"
        );
        // A Vec reading fewer elements than present cannot happen, but a
        // struct read from an array can leave some over.
        #[derive(Debug, Deserialize)]
        struct Two {
            _a: i32,
            _b: i32,
        }
        assert_eq!(
            err::<Two>(Value::from(vec![1, 2, 3])),
            "invalid length: expected 2 elements, found array of 3 elements"
        );
        let vs = [Value::from(1)];
        assert_eq!(
            from_values::<(i32, i32)>(&vs).unwrap_err().to_string(),
            "invalid length: expected a tuple of size 2, found 1 element"
        );
        let mut m = Map::new();
        m.insert("name".into(), 5.into());
        assert_eq!(err::<Rec>(Value::Map(m)), "invalid type: expected a string, found integer 5");
        let mut m = Map::new();
        m.insert("x".into(), 5.into());
        assert_eq!(
            err::<HashMap<u32, i32>>(Value::Map(m)),
            "invalid value: expected u32, found map key \"x\""
        );
    }

    #[test]
    fn msg_accessors() {
        let m = Msg::from_array(["add".into(), 2.into(), 3.5.into(), "x".into()]);
        assert_eq!(m.get::<i32>(1).unwrap(), 2);
        assert_eq!(
            m.get::<i32>(3).unwrap_err().to_string(),
            "message \"add\": element 3: invalid type: expected i32, found string \"x\""
        );
        let (tag, a, b, c): (String, u8, f32, String) = m.decode().unwrap();
        assert_eq!((tag.as_str(), a, b, c.as_str()), ("add", 2, 3.5, "x"));
        assert!(m.decode::<(String, u8)>().is_err());
        let all: Vec<Value> = from_values(&m).unwrap();
        assert_eq!(all, m.to_vec());
        #[derive(Deserialize)]
        struct Wrapped((String, i64, f64, String));
        assert_eq!(from_values::<Wrapped>(&m).unwrap().0 .1, 2);
        assert_eq!(from_value::<Msg>(Value::from(m.clone())).unwrap(), m);
        assert_eq!(Value::Int(5).to::<u8>().unwrap(), 5);
        assert_eq!(Value::from("p").into::<String>().unwrap(), "p");
    }

    #[test]
    fn value_from_value_and_json() {
        let v = Value::Array(vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-1),
            Value::UInt(u64::MAX),
            Value::Float(1.25),
            Value::Str("s".into()),
            Value::Bytes(vec![9]),
            Value::Map([("k".to_string(), Value::Array(vec![]))].into_iter().collect()),
        ]);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        assert_eq!(from_value_ref::<Value>(&v).unwrap(), v);
        let j: Value = serde_json::from_str(r#"[1, 18446744073709551615, -2, 1.0, "x", {"a": null}, 1e400]"#)
            .unwrap_or_else(|_| {
                serde_json::from_str(r#"[1, 18446744073709551615, -2, 1.0, "x", {"a": null}]"#).unwrap()
            });
        assert_eq!(j.as_array().unwrap()[0], Value::Int(1));
        assert_eq!(j.as_array().unwrap()[1], Value::UInt(u64::MAX));
        assert_eq!(j.as_array().unwrap()[3], Value::Float(1.0));
        let m: Msg = serde_json::from_str(r#"["a", 1]"#).unwrap();
        assert_eq!(m, Msg::from_array(["a".into(), 1.into()]));
        assert!(serde_json::from_str::<Msg>("{}").is_err());
    }

    #[test]
    fn ids() {
        use crate::id::PortId;
        let p: PortId = from_value(Value::from("n#p")).unwrap();
        assert_eq!(p.name(), "p");
        assert!(from_value::<PortId>(Value::from("")).is_err());
        assert_eq!(to_value(&p).unwrap(), Value::from("n#p"));
    }
}

//! Serde serialisation into [`Value`], without any intermediate format.
//!
//! [`to_value`] turns any `Serialize` type into a [`Value`]; the rules follow
//! serde_json's data model, with bytes kept as [`Value::Bytes`] and unsigned
//! integers normalised as everywhere in the crate (a value that fits `i64` is
//! [`Value::Int`], only larger ones are [`Value::UInt`]).
//!
//! | serde                          | [`Value`]                                  |
//! |--------------------------------|--------------------------------------------|
//! | bool                           | `Bool`                                     |
//! | i8..i64, u8..u64, i128, u128   | `Int`, or `UInt` above `i64::MAX` (error beyond `u64`) |
//! | f32, f64                       | `Float`                                    |
//! | char, str                      | `Str`                                      |
//! | bytes                          | `Bytes`                                    |
//! | none, unit, unit struct        | `Null`                                     |
//! | some(x), newtype struct(x)     | `x`                                        |
//! | unit variant                   | `Str(variant)`                             |
//! | newtype variant                | `Map{variant: x}`                          |
//! | seq, tuple, tuple struct       | `Array`                                    |
//! | tuple variant                  | `Map{variant: Array}`                      |
//! | map                            | `Map` (keys must be strings; integer, bool and char keys are stringified) |
//! | struct                         | `Map`                                      |
//! | struct variant                 | `Map{variant: Map}`                        |

use serde::ser::{self, Impossible, Serialize};

use crate::error::{Error, Result};
use crate::value::{Map, Msg, Value};

/// Converts any serde-serialisable value into a [`Value`].
///
/// ```
/// use aemp::{to_value, Value};
/// #[derive(serde::Serialize)]
/// struct P { x: i32, tag: &'static str }
/// let v = to_value(&P { x: 1, tag: "a" }).unwrap();
/// assert_eq!(v.to_string(), r#"{"tag":"a","x":1}"#);
/// assert_eq!(to_value(&(1u64 << 63)).unwrap(), Value::UInt(1 << 63));
/// ```
///
/// # Errors
/// [`Error::Value`] when a map key is not a string (nor an integer, bool or
/// char, which are stringified), when an integer does not fit 64 bits, or
/// when the type's own `Serialize` implementation fails.
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value> {
    v.serialize(ValueSerializer)
}

/// The serde serialiser whose output is a [`Value`].
struct ValueSerializer;

fn from_i128(v: i128) -> Result<Value> {
    if let Ok(i) = i64::try_from(v) {
        Ok(Value::Int(i))
    } else if let Ok(u) = u64::try_from(v) {
        Ok(Value::UInt(u))
    } else {
        Err(Error::Value(format!("integer {v} does not fit in 64 bits")))
    }
}

fn from_u64(v: u64) -> Value {
    if v <= i64::MAX as u64 {
        Value::Int(v as i64)
    } else {
        Value::UInt(v)
    }
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SerializeVec;
    type SerializeTuple = SerializeVec;
    type SerializeTupleStruct = SerializeVec;
    type SerializeTupleVariant = SerializeTupleVariant;
    type SerializeMap = SerializeMap;
    type SerializeStruct = SerializeMap;
    type SerializeStructVariant = SerializeStructVariant;

    fn serialize_bool(self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value> {
        from_i128(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value> {
        Ok(from_u64(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value> {
        match u64::try_from(v) {
            Ok(u) => Ok(from_u64(u)),
            Err(_) => Err(Error::Value(format!("integer {v} does not fit in 64 bits"))),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<Value> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value> {
        Ok(Value::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value> {
        Ok(Value::Str(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value> {
        Ok(Value::Str(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, v: &T) -> Result<Value> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value> {
        let mut m = Map::new();
        m.insert(variant.to_owned(), v.serialize(ValueSerializer)?);
        Ok(Value::Map(m))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeVec> {
        // The hint comes from the value being serialised, not from the
        // network, but cap it anyway so that a lying `Serialize` impl cannot
        // make us reserve absurd amounts.
        Ok(SerializeVec(Vec::with_capacity(len.unwrap_or(0).min(4096))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SerializeVec> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SerializeVec> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeTupleVariant> {
        Ok(SerializeTupleVariant { variant, items: Vec::with_capacity(len.min(4096)) })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<SerializeMap> {
        Ok(SerializeMap { map: Map::new(), key: None })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<SerializeMap> {
        Ok(SerializeMap { map: Map::new(), key: None })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<SerializeStructVariant> {
        Ok(SerializeStructVariant { variant, map: Map::new() })
    }
}

/// Collects the elements of a sequence, tuple or tuple struct.
struct SerializeVec(Vec<Value>);

impl ser::SerializeSeq for SerializeVec {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.0.push(v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SerializeVec {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SerializeVec {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value> {
        ser::SerializeSeq::end(self)
    }
}

/// Collects a tuple variant as `{variant: [fields...]}`.
struct SerializeTupleVariant {
    variant: &'static str,
    items: Vec<Value>,
}

impl ser::SerializeTupleVariant for SerializeTupleVariant {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.items.push(v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        let mut m = Map::new();
        m.insert(self.variant.to_owned(), Value::Array(self.items));
        Ok(Value::Map(m))
    }
}

/// Collects a map or a struct.
struct SerializeMap {
    map: Map,
    key: Option<String>,
}

impl ser::SerializeMap for SerializeMap {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error::Value("serialize_value called before serialize_key".into()))?;
        self.map.insert(key, v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        v: &V,
    ) -> Result<()> {
        let key = key.serialize(KeySerializer)?;
        self.map.insert(key, v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Map(self.map))
    }
}

impl ser::SerializeStruct for SerializeMap {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.map.insert(key.to_owned(), v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        Ok(Value::Map(self.map))
    }
}

/// Collects a struct variant as `{variant: {fields...}}`.
struct SerializeStructVariant {
    variant: &'static str,
    map: Map,
}

impl ser::SerializeStructVariant for SerializeStructVariant {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.map.insert(key.to_owned(), v.serialize(ValueSerializer)?);
        Ok(())
    }
    fn end(self) -> Result<Value> {
        let mut m = Map::new();
        m.insert(self.variant.to_owned(), Value::Map(self.map));
        Ok(Value::Map(m))
    }
}

/// Serialises a map key: strings as they are; integers, bools and chars
/// stringified (as serde_json does); anything else is an error.
struct KeySerializer;

fn key_error(found: &str) -> Error {
    Error::Value(format!("map keys must be strings, found {found}"))
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_bool(self, v: bool) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, _v: f32) -> Result<String> {
        Err(key_error("float"))
    }
    fn serialize_f64(self, _v: f64) -> Result<String> {
        Err(key_error("float"))
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String> {
        Err(key_error("bytes"))
    }
    fn serialize_none(self) -> Result<String> {
        Err(key_error("null"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<String> {
        Err(key_error("null"))
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<String> {
        Err(key_error(&format!("unit struct {name}")))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, v: &T) -> Result<String> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _v: &T,
    ) -> Result<String> {
        Err(key_error(&format!("enum variant {name}::{variant}")))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_error("array"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(key_error("array"))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct> {
        Err(key_error("array"))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_error(&format!("enum variant {name}::{variant}")))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_error("map"))
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(key_error(&format!("struct {name}")))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_error(&format!("enum variant {name}::{variant}")))
    }
}

/// A [`Value`] serialises as the matching serde type: `Null` as unit,
/// `Bytes` with `serialize_bytes`, `Array` as a sequence, `Map` as a map.
impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(v) => s.serialize_str(v),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Array(a) => s.collect_seq(a),
            Value::Map(m) => s.collect_map(m),
        }
    }
}

/// A [`Msg`] serialises as a sequence of its elements.
impl Serialize for Msg {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[derive(serde::Serialize)]
    struct Unit;

    #[derive(serde::Serialize)]
    struct Newtype(i32);

    #[derive(serde::Serialize)]
    struct Tuple(i32, &'static str);

    #[derive(serde::Serialize)]
    struct Point {
        x: i32,
        y: Option<f64>,
    }

    #[derive(serde::Serialize)]
    enum E {
        A,
        B(u8),
        C(i32, bool),
        D { k: String },
    }

    struct RawBytes(&'static [u8]);
    impl Serialize for RawBytes {
        fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn scalars() {
        assert_eq!(to_value(&true).unwrap(), Value::Bool(true));
        assert_eq!(to_value(&-5i8).unwrap(), Value::Int(-5));
        assert_eq!(to_value(&5u8).unwrap(), Value::Int(5));
        assert_eq!(to_value(&u64::MAX).unwrap(), Value::UInt(u64::MAX));
        assert_eq!(to_value(&(i64::MAX as u64)).unwrap(), Value::Int(i64::MAX));
        assert_eq!(to_value(&(i64::MIN as i128)).unwrap(), Value::Int(i64::MIN));
        assert_eq!(to_value(&(u64::MAX as u128)).unwrap(), Value::UInt(u64::MAX));
        assert!(to_value(&(u64::MAX as u128 + 1)).unwrap_err().to_string().contains("64 bits"));
        assert!(to_value(&(i64::MIN as i128 - 1)).is_err());
        assert_eq!(to_value(&1.5f32).unwrap(), Value::Float(1.5));
        assert_eq!(to_value(&'x').unwrap(), Value::Str("x".into()));
        assert_eq!(to_value("hi").unwrap(), Value::Str("hi".into()));
        assert_eq!(to_value(&RawBytes(b"\x00\xff")).unwrap(), Value::Bytes(vec![0, 255]));
        assert_eq!(to_value(&()).unwrap(), Value::Null);
        assert_eq!(to_value(&Unit).unwrap(), Value::Null);
        assert_eq!(to_value(&None::<i32>).unwrap(), Value::Null);
        assert_eq!(to_value(&Some(3)).unwrap(), Value::Int(3));
        assert_eq!(to_value(&Newtype(7)).unwrap(), Value::Int(7));
    }

    #[test]
    fn compounds() {
        assert_eq!(to_value(&vec![1, 2]).unwrap(), Value::Array(vec![1.into(), 2.into()]));
        assert_eq!(to_value(&(1, "a")).unwrap(), Value::Array(vec![1.into(), "a".into()]));
        assert_eq!(to_value(&Tuple(1, "a")).unwrap(), Value::Array(vec![1.into(), "a".into()]));
        assert_eq!(
            to_value(&Point { x: 1, y: None }).unwrap(),
            map(&[("x", Value::Int(1)), ("y", Value::Null)])
        );
        assert_eq!(to_value(&E::A).unwrap(), Value::Str("A".into()));
        assert_eq!(to_value(&E::B(2)).unwrap(), map(&[("B", Value::Int(2))]));
        assert_eq!(
            to_value(&E::C(1, true)).unwrap(),
            map(&[("C", Value::Array(vec![1.into(), true.into()]))])
        );
        assert_eq!(to_value(&E::D { k: "v".into() }).unwrap(), map(&[("D", map(&[("k", "v".into())]))]));
        let mut m = BTreeMap::new();
        m.insert("b", 2);
        m.insert("a", 1);
        assert_eq!(to_value(&m).unwrap(), map(&[("a", 1.into()), ("b", 2.into())]));
    }

    #[test]
    fn map_keys() {
        let mut m = HashMap::new();
        m.insert(3u32, "x");
        assert_eq!(to_value(&m).unwrap(), map(&[("3", "x".into())]));
        let mut m = HashMap::new();
        m.insert(true, 1);
        assert_eq!(to_value(&m).unwrap(), map(&[("true", 1.into())]));
        let mut m = HashMap::new();
        m.insert((1, 2), 1);
        let e = to_value(&m).unwrap_err().to_string();
        assert_eq!(e, "map keys must be strings, found array");
        let mut m = BTreeMap::new();
        m.insert(vec![1u8], 1);
        assert!(to_value(&m).is_err());
    }

    #[test]
    fn value_and_msg_round_trip() {
        let v = Value::Array(vec![
            Value::Null,
            Value::Bool(false),
            Value::Int(-3),
            Value::UInt(u64::MAX),
            Value::Float(0.25),
            Value::Str("s".into()),
            Value::Bytes(vec![1, 2]),
            map(&[("k", Value::Array(vec![]))]),
        ]);
        assert_eq!(to_value(&v).unwrap(), v);
        let m = Msg::from_array([Value::Str("tag".into()), Value::Int(1)]);
        assert_eq!(to_value(&m).unwrap(), Value::from(m.clone()));
        assert_eq!(
            Msg::encode(&("a", 1, [true])).unwrap(),
            Msg::from_array(["a".into(), 1.into(), vec![true].into()])
        );
        assert!(Msg::encode(&5).is_err());
    }
}

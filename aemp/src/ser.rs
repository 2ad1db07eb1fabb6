//! Placeholder until the serde serializer lands.
use crate::error::{Error, Result};
use crate::value::Value;
use serde::Serialize;

/// Converts a serde value into a [`Value`].
///
/// # Errors
/// When the value cannot be represented.
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map(Value::from).map_err(|e| Error::Value(e.to_string()))
}

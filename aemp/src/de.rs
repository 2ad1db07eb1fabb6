//! Placeholder until the serde deserializer lands.
use crate::error::{Error, Result};
use crate::value::Value;
use serde::de::DeserializeOwned;

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::from_str(&v.to_string()).unwrap_or(serde_json::Value::Null)
}

/// Converts a [`Value`] into a serde type.
///
/// # Errors
/// When the shape differs.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T> {
    from_value_ref(&v)
}

/// Converts a borrowed [`Value`] into a serde type.
///
/// # Errors
/// When the shape differs.
pub fn from_value_ref<T: DeserializeOwned>(v: &Value) -> Result<T> {
    serde_json::from_value(to_json(v)).map_err(|e| Error::Value(e.to_string()))
}

/// Converts a slice of values (as a sequence) into a serde type.
///
/// # Errors
/// When the shape differs.
pub fn from_values<T: DeserializeOwned>(vs: &[Value]) -> Result<T> {
    from_value_ref(&Value::Array(vs.to_vec()))
}

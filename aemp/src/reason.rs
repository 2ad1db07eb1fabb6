//! Kill reasons.

use std::fmt;

use crate::value::{Msg, Value};

/// Why a port died: a list of values, empty for a normal kill.
///
/// The forms the runtime itself produces:
/// - `()` normal ([`Reason::normal`]): monitors that kill other ports ignore it;
/// - `("die", text)`: a callback, task or init function failed ([`Reason::die`]);
/// - `("transport_error", nodeid, text)`: the connection to the port's node was
///   lost or could not be made ([`Reason::transport_error`]);
/// - `("no_such_port", text)`: the port did not exist when it was monitored;
/// - `("overflow", text)`: an async port's bounded inbox was full;
/// - anything a user passes to `kil`.
#[derive(Clone, PartialEq, Default)]
pub struct Reason(pub Vec<Value>);

impl Reason {
    /// The normal reason (no values).
    pub fn normal() -> Reason {
        Reason(Vec::new())
    }

    /// `("die", text)`.
    pub fn die(text: impl fmt::Display) -> Reason {
        Reason(vec![Value::from("die"), Value::from(text.to_string())])
    }

    /// `("transport_error", nodeid, text)`.
    pub fn transport_error(node: &str, text: impl fmt::Display) -> Reason {
        Reason(vec![Value::from("transport_error"), Value::from(node), Value::from(text.to_string())])
    }

    /// `("no_such_port", "cannot monitor nonexistent port")`, the original's text.
    pub fn no_such_port() -> Reason {
        Reason(vec![Value::from("no_such_port"), Value::from("cannot monitor nonexistent port")])
    }

    /// A reason from any values; `reason!`-like shorthand: `Reason::from(msg!["quit", 3])`.
    pub fn new(values: Vec<Value>) -> Reason {
        Reason(values)
    }

    /// Whether this is a normal kill (no values).
    pub fn is_normal(&self) -> bool {
        self.0.is_empty()
    }

    /// The first element as a string (`"die"`, `"transport_error"`, ...).
    pub fn kind(&self) -> Option<&str> {
        self.0.first().and_then(Value::as_str)
    }

    /// The values.
    pub fn values(&self) -> &[Value] {
        &self.0
    }

    /// The values as a message (to append to a monitor's message).
    pub fn into_vec(self) -> Vec<Value> {
        self.0
    }
}

impl From<Msg> for Reason {
    fn from(m: Msg) -> Reason {
        Reason(m.into_vec())
    }
}

impl From<Vec<Value>> for Reason {
    fn from(v: Vec<Value>) -> Reason {
        Reason(v)
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Reason {
        Reason(vec![Value::from(s)])
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prints `normal` for the normal reason, else the values as a JSON array.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("normal")
        } else {
            fmt::Display::fmt(&Value::Array(self.0.clone()), f)
        }
    }
}

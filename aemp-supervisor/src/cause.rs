//! Unwrapping the reasons supervisors wrap around their children's.

use aemp::{Reason, Value};

use crate::error::Error;
use crate::server::{MAX_RESTARTS, START_FAILED};

/// A reason with its supervisor layers taken off: which child, of which
/// child supervisor, failed, and why.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RootCause {
    /// The child IDs from the outermost supervisor down to the child that
    /// failed (empty when the reason was not a supervisor's).
    pub path: Vec<String>,
    /// The innermost reason: the one the failing child died with.
    pub reason: Reason,
}

/// Takes off every `("max_restarts", text, child ID, [reason])` and
/// `("start_failed", child ID, [reason])` layer.
///
/// ```
/// use aemp::{msg, Reason, Value};
/// use aemp_supervisor::root_cause;
/// let db = Reason::die("connection refused");
/// let inner = Reason::from(msg!["start_failed", "db", Value::Array(db.0.clone())]);
/// let outer = Reason::from(msg!["max_restarts", "restart intensity exceeded", "storage", Value::Array(inner.0)]);
/// let cause = root_cause(&outer);
/// assert_eq!(cause.path, ["storage", "db"]);
/// assert_eq!(cause.reason, db);
/// ```
pub fn root_cause(reason: &Reason) -> RootCause {
    let mut path = Vec::new();
    let mut r = reason.values();
    loop {
        let (id, inner) = match r.first().and_then(Value::as_str) {
            Some(MAX_RESTARTS) => (r.get(2), r.get(3)),
            Some(START_FAILED) => (r.get(1), r.get(2)),
            _ => break,
        };
        let (Some(id), Some(inner)) = (id.and_then(Value::as_str), inner.and_then(Value::as_array)) else {
            break;
        };
        path.push(id.to_owned());
        r = inner;
    }
    RootCause { path, reason: Reason(r.to_vec()) }
}

impl Error {
    /// The root cause of a failed start or of a supervisor's death (see
    /// [`root_cause`]): for [`Error::StartFailed`], the child's ID comes
    /// first in the path. `None` for other errors.
    pub fn root_cause(&self) -> Option<RootCause> {
        match self {
            Error::StartFailed { id, reason } => {
                let mut c = root_cause(reason);
                c.path.insert(0, id.clone());
                Some(c)
            }
            Error::SupervisorDead { reason, .. } => Some(root_cause(reason)),
            _ => None,
        }
    }
}

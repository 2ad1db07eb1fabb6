//! The crate's error type.

use std::fmt;

/// Everything that can go wrong in aemp, one enum for the crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A node or port ID is malformed.
    #[error("invalid ID {id:?}: {problem}")]
    BadId {
        /// The offending text.
        id: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A message value did not have the expected shape or type.
    #[error("{0}")]
    Value(String),
    /// A message element is missing.
    #[error("message has no element {index} (it has {len})")]
    MissingArg {
        /// The index asked for.
        index: usize,
        /// How many elements the message has.
        len: usize,
    },
    /// Bytes read from a peer or a file could not be decoded.
    #[error("decoding failed: {0}")]
    Decode(String),
    /// A protocol rule was broken by a peer.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A connection reached this node itself: the peer's greeting gives
    /// this node's own ID (a seed or address that points back here).
    #[error("the peer claims our own node ID {0}")]
    SelfConnection(String),
    /// Authentication with a peer failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// A TLS or certificate problem.
    #[error("TLS: {0}")]
    Tls(String),
    /// The configuration file or a profile is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// An operating-system I/O error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The node has been shut down.
    #[error("the node has been shut down")]
    Shutdown,
    /// A port is dead or unknown.
    #[error("no such port: {0}")]
    NoSuchPort(String),
    /// A port or task failed; the text becomes the `("die", text)` reason.
    #[error("{0}")]
    Die(String),
    /// A timeout expired.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl Error {
    /// Whether this is a peer refusing us for good: authentication or TLS
    /// failed (a wrong secret or certificate, no method in common).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Auth(_) | Error::Tls(_))
    }

    /// An [`Error::Die`] with the given text: returning it from a callback
    /// kills the port with `("die", text)`.
    pub fn die(text: impl fmt::Display) -> Error {
        Error::Die(text.to_string())
    }
}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Value(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Value(msg.to_string())
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// An element of a message is missing or does not have the expected
    /// type: the error of [`Msg::get`](crate::Msg::get),
    /// [`Msg::str`](crate::Msg::str), [`Msg::port`](crate::Msg::port) and
    /// [`Msg::at`](crate::Msg::at).
    ///
    /// Elements are numbered as in the message that was sent, its tag being
    /// element 0, in every kind of callback and in typed messages alike. A
    /// tag callback receives the message without its tag, so what it reads
    /// as argument `i` is element `i + 1`, and the error says both:
    /// `message "add": argument 0 (element 1): invalid type: expected i64,
    /// found string "x"`. In a default callback or an async port's inbox
    /// the whole message is read: `message "add": element 1: ...`.
    #[error("{}", element_text(tag.as_deref(), *index, *after_tag, problem))]
    Element {
        /// The message's tag, when known (the first element, when it is a
        /// string; in a tag callback, that callback's tag).
        tag: Option<String>,
        /// The index that was asked for.
        index: usize,
        /// Whether `index` counts from after the tag, as in a tag callback:
        /// the element is then number `index + 1` of the message as sent.
        after_tag: bool,
        /// What is wrong: `missing`, or what was expected and what was found.
        problem: String,
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
    /// An error of a crate built on aemp (such as `aemp-supervisor`, whose
    /// errors convert into this one so that `?` works in functions that
    /// return [`Result`]). It is kept whole: its text is this error's text,
    /// and [`Error::other_ref`] or [`std::error::Error::source`] reach it.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync + 'static>),
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

    /// An [`Error::Other`] holding `error`.
    pub fn other(error: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Other(Box::new(error))
    }

    /// The error inside an [`Error::Other`], if it is an `E`.
    ///
    /// ```
    /// use std::fmt;
    /// #[derive(Debug)]
    /// struct Mine;
    /// impl fmt::Display for Mine {
    ///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("mine") }
    /// }
    /// impl std::error::Error for Mine {}
    ///
    /// let e = aemp::Error::other(Mine);
    /// assert_eq!(e.to_string(), "mine");
    /// assert!(e.other_ref::<Mine>().is_some());
    /// ```
    pub fn other_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Other(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }
}

impl Error {
    /// This error as returned from a tag callback for `tag`: an
    /// [`Error::Element`] from reading the message the callback received
    /// (without its tag) names the tag and counts from after it.
    pub(crate) fn in_tag_callback(self, tag: &str) -> Error {
        match self {
            Error::Element { index, after_tag: false, problem, .. } => {
                Error::Element { tag: Some(tag.to_owned()), index, after_tag: true, problem }
            }
            other => other,
        }
    }

    /// This error as returned from an init function: its arguments are not
    /// a tagged message, so an [`Error::Element`] names no tag.
    pub(crate) fn in_spawn_arguments(self) -> Error {
        match self {
            Error::Element { index, after_tag, problem, .. } => {
                Error::Element { tag: None, index, after_tag, problem }
            }
            other => other,
        }
    }
}

/// The text of an [`Error::Element`].
fn element_text(tag: Option<&str>, index: usize, after_tag: bool, problem: &str) -> String {
    let place = if after_tag {
        format!("argument {index} (element {})", index + 1)
    } else {
        format!("element {index}")
    };
    match tag {
        Some(t) => format!("message {t:?}: {place}: {problem}"),
        None => format!("{place}: {problem}"),
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

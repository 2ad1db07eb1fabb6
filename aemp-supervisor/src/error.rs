//! The crate's error type.

use aemp::{NodeId, PortId, Reason};

use crate::info::ChildStatus;

/// Everything that can go wrong when starting or talking to a supervisor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A child (or, for [`Supervisor::start`](crate::Supervisor::start), one
    /// of the initial children) died before its start was confirmed.
    #[error("child {id:?} failed to start: {reason}")]
    StartFailed {
        /// The child's ID.
        id: String,
        /// Why its port died.
        reason: Reason,
    },
    /// The supervisor is dead (or died while handling the request).
    #[error("supervisor {port} is dead: {reason}")]
    SupervisorDead {
        /// The supervisor's port.
        port: PortId,
        /// Why it died.
        reason: Reason,
    },
    /// A child or supervisor spec is malformed or inconsistent.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// No child has this ID.
    #[error("no child {0:?}")]
    NoSuchChild(String),
    /// The operation needs a stopped child, and this one is not (it runs,
    /// or waits to be restarted: see
    /// [`Supervisor::terminate_child`](crate::Supervisor::terminate_child)).
    #[error("child {id:?} is {status}, not stopped")]
    ChildNotStopped {
        /// The child's ID.
        id: String,
        /// What it is doing.
        status: ChildStatus,
    },
    /// The supervisor has as many children as its
    /// [`max_children`](crate::SupervisorSpec::max_children) allows.
    #[error("the supervisor has its maximum of {max} children")]
    TooManyChildren {
        /// The limit.
        max: usize,
    },
    /// The node's process cannot run supervisors: it has not called
    /// [`install`](crate::install).
    #[error("node {0} cannot run supervisors: call aemp_supervisor::install() in its process first")]
    NotInstalled(NodeId),
    /// A child with this ID exists already.
    #[error("a child {0:?} exists already")]
    DuplicateChild(String),
    /// The operation does not fit the supervisor's strategy (for example
    /// [`start_dynamic`](crate::Supervisor::start_dynamic) without a
    /// simple-one-for-one template).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The supervisor answered something this crate does not understand.
    #[error("unexpected reply: {0}")]
    BadReply(String),
    /// An error of the underlying node.
    #[error(transparent)]
    Aemp(#[from] aemp::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

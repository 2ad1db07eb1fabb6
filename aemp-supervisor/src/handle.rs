//! The handle users hold: [`Supervisor`] starts a supervisor or attaches to
//! a running one, and talks to its port by messages (requests with a reply
//! port, answers or the supervisor's death).

use std::future::Future;

use aemp::{msg, Map, Msg, Node, NodeId, PortId, Reason, Value};

use crate::error::{Error, Result};
use crate::info::{bad_reply, ChildCounts, ChildInfo, ChildStatus, SupervisorInfo};
use crate::server::{install, START_FAILED};
use crate::spec::{ChildSpec, Placement, SupervisorSpec, SUPERVISOR_INIT};

/// A child named by its ID or by the port it runs as (for dynamic
/// children, whose IDs are made up by the supervisor).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChildRef {
    /// The child with this ID.
    Id(String),
    /// The child running as this port.
    Port(PortId),
}

impl ChildRef {
    /// The wire form: the ID, or `{"port": port}`.
    fn to_value(&self) -> Value {
        match self {
            ChildRef::Id(id) => Value::from(id),
            ChildRef::Port(p) => {
                let mut m = Map::new();
                m.insert("port".into(), Value::from(p));
                Value::Map(m)
            }
        }
    }
}

impl From<&str> for ChildRef {
    fn from(id: &str) -> ChildRef {
        ChildRef::Id(id.to_owned())
    }
}

impl From<String> for ChildRef {
    fn from(id: String) -> ChildRef {
        ChildRef::Id(id)
    }
}

impl From<&String> for ChildRef {
    fn from(id: &String) -> ChildRef {
        ChildRef::Id(id.clone())
    }
}

impl From<PortId> for ChildRef {
    fn from(port: PortId) -> ChildRef {
        ChildRef::Port(port)
    }
}

impl From<&PortId> for ChildRef {
    fn from(port: &PortId) -> ChildRef {
        ChildRef::Port(port.clone())
    }
}

/// A handle to a running supervisor (local or remote); cheap to clone.
///
/// Every method talks to the supervisor port by messages, so it works from
/// any node that can reach it.
#[derive(Debug, Clone)]
pub struct Supervisor {
    node: Node,
    port: PortId,
}

/// The error for a supervisor's death.
fn death_error(port: &PortId, reason: Reason) -> Error {
    if reason == Reason::die(format!("unknown init function {SUPERVISOR_INIT:?}")) {
        return Error::NotInstalled(port.node());
    }
    let v = reason.values();
    if reason.kind() == Some(START_FAILED) {
        if let (Some(id), Some(inner)) =
            (v.get(1).and_then(Value::as_str), v.get(2).and_then(Value::as_array))
        {
            return Error::StartFailed { id: id.to_owned(), reason: Reason(inner.to_vec()) };
        }
    }
    Error::SupervisorDead { port: port.clone(), reason }
}

impl Supervisor {
    /// Starts a supervisor on `node` and returns once every child in `spec`
    /// has started, in order.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] for a bad spec; [`Error::StartFailed`] with
    /// the child's reason when a child died before its start was confirmed,
    /// or did not confirm it in time (the children started before it are
    /// stopped again, in reverse order).
    pub async fn start(node: &Node, spec: SupervisorSpec) -> Result<Supervisor> {
        let here = node.id().clone();
        Supervisor::start_on(node, &here, spec).await
    }

    /// Starts a supervisor on another node (spawned there by name: that
    /// node's process must have called [`install`]), talking to it from
    /// `node`.
    ///
    /// # Errors
    /// As [`Supervisor::start`], and [`Error::NotInstalled`] when that
    /// node's process has not called [`install`].
    pub async fn start_on(node: &Node, on: &NodeId, spec: SupervisorSpec) -> Result<Supervisor> {
        install();
        spec.validate()?;
        // The supervisor answers `["started", port]` once its children run,
        // or `["failed", [reason]]` just before it dies without having
        // started: a death that may come before the monitor below is placed.
        let (tx, rx) = tokio::sync::oneshot::channel::<Msg>();
        let mut tx = Some(tx);
        let reply = node.port_with(move |ctx, m: Msg| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(m);
            }
            ctx.kil_self(Reason::normal());
        });
        let mut v = spec.to_value();
        if let Value::Map(m) = &mut v {
            m.insert("ack".into(), Value::from(msg![&reply, "started"]));
        }
        let port = node.spawn(on, SUPERVISOR_INIT, Msg::from_array([v]));
        let dead = node.dead(&port);
        let r = tokio::select! {
            biased;
            answer = rx => match answer {
                Ok(m) if m.tag() == Some("started") => Ok(Supervisor { node: node.clone(), port: port.clone() }),
                Ok(m) => {
                    let reason = m.at(1).ok().and_then(Value::as_array).map(<[Value]>::to_vec).unwrap_or_default();
                    Err(death_error(&port, Reason(reason)))
                }
                Err(_) => Err(Error::Aemp(aemp::Error::Shutdown)),
            },
            reason = dead => Err(death_error(&port, reason)),
        };
        node.kil(&reply, Reason::normal());
        r
    }

    /// A handle to a supervisor that runs already (for example one found in
    /// the group [`GROUP`](crate::GROUP)), used from `node`.
    pub fn attach(node: &Node, port: PortId) -> Supervisor {
        Supervisor { node: node.clone(), port }
    }

    /// The supervisor's port.
    pub fn port(&self) -> &PortId {
        &self.port
    }

    /// Resolves with the reason once the supervisor is dead.
    pub fn dead(&self) -> impl Future<Output = Reason> + Send + 'static {
        self.node.dead(&self.port)
    }

    /// Sends a request with a fresh reply port appended and waits for the
    /// answer, or for the supervisor's death.
    async fn request(&self, mut m: Msg) -> Result<Msg> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let reply = self.node.port_with(move |ctx, m: Msg| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(m);
            }
            ctx.kil_self(Reason::normal());
        });
        let dead = self.node.dead(&self.port);
        m.push(&reply);
        self.node.snd(&self.port, m);
        let r = tokio::select! {
            biased;
            answer = rx => answer.map_err(|_| Error::Aemp(aemp::Error::Shutdown)),
            reason = dead => Err(Error::SupervisorDead { port: self.port.clone(), reason }),
        };
        self.node.kil(&reply, Reason::normal());
        r
    }

    fn answer_error(m: &Msg) -> Error {
        let detail = m.str(2).unwrap_or_default().to_owned();
        match m.str(1) {
            Ok("start_failed") => Error::StartFailed {
                id: detail,
                reason: Reason(
                    m.at(3).ok().and_then(Value::as_array).map(<[Value]>::to_vec).unwrap_or_default(),
                ),
            },
            Ok("duplicate") => Error::DuplicateChild(detail),
            Ok("not_stopped") => match m.str(3).ok().and_then(ChildStatus::from_name) {
                Some(status) => Error::ChildNotStopped { id: detail, status },
                None => Error::BadReply(m.to_string()),
            },
            Ok("max_children") => match m.get::<usize>(2) {
                Ok(max) => Error::TooManyChildren { max },
                Err(_) => Error::BadReply(m.to_string()),
            },
            Ok("no_such_child") => Error::NoSuchChild(detail),
            Ok("invalid") => Error::InvalidSpec(detail),
            Ok("unsupported") => Error::Unsupported(detail),
            _ => Error::BadReply(m.to_string()),
        }
    }

    /// The supervisor's state: strategy, restart counts and children.
    ///
    /// # Errors
    /// [`Error::SupervisorDead`], or [`Error::BadReply`] for an answer of
    /// the wrong shape.
    pub async fn info(&self) -> Result<SupervisorInfo> {
        let m = self.request(msg!["which_children"]).await?;
        SupervisorInfo::from_value(m.at(0).map_err(|_| bad_reply("empty answer"))?)
    }

    /// The children in start order, each with its status, node, restarts
    /// (within the intensity period and in all) and, while it waits out a
    /// backoff delay, the time until its next start.
    ///
    /// # Errors
    /// As [`Supervisor::info`].
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>> {
        Ok(self.info().await?.children)
    }

    /// How many children there are, running, supervisors and workers
    /// (answered at once, without a list).
    ///
    /// # Errors
    /// As [`Supervisor::info`].
    pub async fn count_children(&self) -> Result<ChildCounts> {
        let m = self.request(msg!["count_children"]).await?;
        ChildCounts::from_value(m.at(0).map_err(|_| Error::BadReply("empty answer".into()))?)
    }

    /// Adds a child after the others and starts it; returns its port once
    /// its start is confirmed.
    ///
    /// # Errors
    /// [`Error::DuplicateChild`], [`Error::InvalidSpec`],
    /// [`Error::TooManyChildren`], [`Error::Unsupported`] for a
    /// simple-one-for-one supervisor, [`Error::StartFailed`] (the child is
    /// then not kept), [`Error::SupervisorDead`].
    pub async fn start_child(&self, spec: ChildSpec) -> Result<PortId> {
        spec.check()?;
        let m = self.request(msg!["start_child", spec.to_value()]).await?;
        Self::started(&m).map(|(_, port)| port)
    }

    /// Starts a child from a simple-one-for-one supervisor's template, with
    /// `args` appended to the template's arguments; returns the child's
    /// generated ID (`template-n`) and its port.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for other strategies,
    /// [`Error::TooManyChildren`], and as [`Supervisor::start_child`].
    pub async fn start_dynamic(&self, args: Msg) -> Result<(String, PortId)> {
        let m = self.request(msg!["start_dynamic", Value::from(args)]).await?;
        Self::started(&m)
    }

    /// As [`start_dynamic`](Supervisor::start_dynamic), with this child
    /// placed by `placement` instead of the template's.
    ///
    /// # Errors
    /// As [`Supervisor::start_dynamic`].
    pub async fn start_dynamic_on(&self, args: Msg, placement: Placement) -> Result<(String, PortId)> {
        let m = self.request(msg!["start_dynamic", Value::from(args), placement.to_value()]).await?;
        Self::started(&m)
    }

    /// Stops a child as its [`Shutdown`](crate::Shutdown) says and keeps
    /// its spec: it stays stopped until
    /// [`restart_child`](Supervisor::restart_child) or a restart of its
    /// group. A temporary or dynamic child is forgotten instead, as in OTP.
    /// A child that waits out a backoff delay has its pending restart
    /// cancelled. Stopping a stopped child does nothing.
    ///
    /// # Errors
    /// [`Error::NoSuchChild`], [`Error::SupervisorDead`].
    pub async fn terminate_child(&self, child: impl Into<ChildRef>) -> Result<()> {
        self.ok(msg!["terminate_child", child.into().to_value()]).await
    }

    /// Starts a stopped child again; returns its port once its start is
    /// confirmed.
    ///
    /// # Errors
    /// [`Error::ChildNotStopped`] when it runs or waits to be restarted;
    /// [`Error::NoSuchChild`]; [`Error::StartFailed`] (it then stays
    /// stopped); [`Error::Unsupported`] for a simple-one-for-one supervisor;
    /// [`Error::SupervisorDead`].
    pub async fn restart_child(&self, id: &str) -> Result<PortId> {
        let m = self.request(msg!["restart_child", id]).await?;
        Self::started(&m).map(|(_, port)| port)
    }

    /// Forgets a stopped child's spec.
    ///
    /// # Errors
    /// [`Error::ChildNotStopped`] when it runs or waits to be restarted
    /// (stop it first, or use [`remove_child`](Supervisor::remove_child));
    /// [`Error::NoSuchChild`]; [`Error::Unsupported`] for a
    /// simple-one-for-one supervisor; [`Error::SupervisorDead`].
    pub async fn delete_child(&self, id: &str) -> Result<()> {
        self.ok(msg!["delete_child", id]).await
    }

    /// Stops a child (as [`terminate_child`](Supervisor::terminate_child)
    /// does, cancelling a pending restart) and forgets it.
    ///
    /// # Errors
    /// [`Error::NoSuchChild`], [`Error::SupervisorDead`].
    pub async fn remove_child(&self, child: impl Into<ChildRef>) -> Result<()> {
        self.ok(msg!["remove_child", child.into().to_value()]).await
    }

    /// The `["ok", id, port]` answer to a start.
    fn started(m: &Msg) -> Result<(String, PortId)> {
        match (m.tag(), m.str(1), m.port(2)) {
            (Some("ok"), Ok(id), Ok(port)) => Ok((id.to_owned(), port)),
            _ => Err(Self::answer_error(m)),
        }
    }

    /// Sends a request answered by `["ok", ...]` or an error.
    async fn ok(&self, request: Msg) -> Result<()> {
        let m = self.request(request).await?;
        match m.tag() {
            Some("ok") => Ok(()),
            _ => Err(Self::answer_error(&m)),
        }
    }

    /// Stops every child in reverse start order (a simple-one-for-one
    /// supervisor's all at once, within one shared deadline), then the
    /// supervisor itself (normally); returns once it is dead.
    ///
    /// # Errors
    /// [`Error::SupervisorDead`] when it was dead already or died with
    /// another reason.
    pub async fn stop(&self) -> Result<()> {
        let dead = self.node.dead(&self.port);
        self.node.snd(&self.port, msg!["stop"]);
        let reason = dead.await;
        if reason.is_normal() {
            Ok(())
        } else {
            Err(Error::SupervisorDead { port: self.port.clone(), reason })
        }
    }
}

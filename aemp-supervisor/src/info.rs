//! What a supervisor reports about itself and its children: [`SupervisorInfo`],
//! [`ChildInfo`] and [`ChildStatus`], read back from the map the supervisor
//! answers `["which_children", reply]` with, and [`ChildCounts`].

use std::fmt;
use std::time::Duration;

use aemp::{Map, NodeId, PortId, Reason, Value};

use crate::error::{Error, Result};
use crate::intensity::Intensity;
use crate::spec::{ChildKind, Restart};
use crate::strategy::Strategy;

/// A child's state, as
/// [`Supervisor::which_children`](crate::Supervisor::which_children) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChildStatus {
    /// Spawned; its start is not confirmed yet.
    Starting,
    /// Running.
    Running,
    /// Being stopped by the supervisor.
    Stopping,
    /// Exited; the supervisor has not decided about it yet.
    Exited,
    /// Waiting out a backoff delay before its restart.
    Backoff,
    /// Not running, and not to be restarted until asked
    /// ([`restart_child`](crate::Supervisor::restart_child)) or until its
    /// group restarts.
    Stopped,
}

impl fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ChildStatus {
    /// The wire name (`"running"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ChildStatus::Starting => "starting",
            ChildStatus::Running => "running",
            ChildStatus::Stopping => "stopping",
            ChildStatus::Exited => "exited",
            ChildStatus::Backoff => "backoff",
            ChildStatus::Stopped => "stopped",
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<ChildStatus> {
        Some(match s {
            "starting" => ChildStatus::Starting,
            "running" => ChildStatus::Running,
            "stopping" => ChildStatus::Stopping,
            "exited" => ChildStatus::Exited,
            "backoff" => ChildStatus::Backoff,
            "stopped" => ChildStatus::Stopped,
            _ => return None,
        })
    }
}

/// One child of a supervisor.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChildInfo {
    /// Its ID.
    pub id: String,
    /// Its init function.
    pub init: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: Restart,
    /// What it is doing.
    pub status: ChildStatus,
    /// Its port, while it runs.
    pub port: Option<PortId>,
    /// Its node, while it runs or starts.
    pub node: Option<NodeId>,
    /// Its restarts within the supervisor's intensity period, up to now:
    /// what counts toward giving up.
    pub recent_restarts: u32,
    /// Its restarts since the supervisor started.
    pub total_restarts: u32,
    /// While it waits out a backoff delay: how long until its next start.
    pub next_attempt_in: Option<Duration>,
    /// The reason of its last exit.
    pub last_exit: Option<Reason>,
}

/// A supervisor and its children, as
/// [`Supervisor::info`](crate::Supervisor::info) reports it (and
/// the `["which_children", reply]` message answers, as a map).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SupervisorInfo {
    /// The supervisor's port.
    pub port: PortId,
    /// Its strategy.
    pub strategy: Strategy,
    /// The supervisor that started it, if it is a child.
    pub parent: Option<PortId>,
    /// Its restart intensity.
    pub intensity: Intensity,
    /// Restart decisions within the intensity period, up to now: when one
    /// more would exceed `intensity.max_restarts`, the supervisor gives up.
    pub recent_restarts: u32,
    /// Restart decisions since it started.
    pub total_restarts: u64,
    /// The children in start order.
    pub children: Vec<ChildInfo>,
}

impl SupervisorInfo {
    /// Reads the map a supervisor answers `which_children` with.
    ///
    /// # Errors
    /// [`Error::BadReply`] naming the missing or malformed key.
    pub fn from_value(v: &Value) -> Result<SupervisorInfo> {
        let m = v.as_map().ok_or_else(|| bad_reply("which_children answer is not a map"))?;
        let s = |m: &Map, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let port =
            s(m, "supervisor").and_then(|p| PortId::new(p).ok()).ok_or_else(|| bad_reply("supervisor"))?;
        let strategy =
            s(m, "strategy").and_then(|x| Strategy::from_name(&x)).ok_or_else(|| bad_reply("strategy"))?;
        let parent = s(m, "parent").and_then(|p| PortId::new(p).ok());
        let max_restarts = m.get("max_restarts").and_then(Value::as_u64).unwrap_or(0) as u32;
        let period = m
            .get("period")
            .and_then(Value::as_f64)
            .and_then(|x| Duration::try_from_secs_f64(x).ok())
            .unwrap_or_default();
        let count = |m: &Map, k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
        let list = m.get("children").and_then(Value::as_array).ok_or_else(|| bad_reply("children"))?;
        let mut children = Vec::with_capacity(list.len());
        for c in list {
            let cm = c.as_map().ok_or_else(|| bad_reply("child is not a map"))?;
            children.push(ChildInfo {
                id: s(cm, "id").ok_or_else(|| bad_reply("child id"))?,
                init: s(cm, "init").unwrap_or_default(),
                kind: if s(cm, "kind").as_deref() == Some("supervisor") {
                    ChildKind::Supervisor
                } else {
                    ChildKind::Worker
                },
                restart: s(cm, "restart").and_then(|r| Restart::from_name(&r)).unwrap_or_default(),
                status: s(cm, "status")
                    .and_then(|x| ChildStatus::from_name(&x))
                    .ok_or_else(|| bad_reply("child status"))?,
                port: s(cm, "port").and_then(|p| PortId::new(p).ok()),
                node: s(cm, "node").and_then(|p| NodeId::new(p).ok()),
                recent_restarts: count(cm, "recent_restarts") as u32,
                total_restarts: count(cm, "total_restarts") as u32,
                next_attempt_in: cm
                    .get("next_attempt_in")
                    .and_then(Value::as_f64)
                    .and_then(|x| Duration::try_from_secs_f64(x).ok()),
                last_exit: cm.get("last_exit").and_then(Value::as_array).map(|a| Reason(a.to_vec())),
            });
        }
        Ok(SupervisorInfo {
            port,
            strategy,
            parent,
            intensity: Intensity::new(max_restarts, period),
            recent_restarts: count(m, "recent_restarts") as u32,
            total_restarts: count(m, "total_restarts"),
            children,
        })
    }
}

/// How many children a supervisor has, as OTP's `count_children` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ChildCounts {
    /// Children the supervisor knows (running or not).
    pub specs: usize,
    /// Children running now.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are workers.
    pub workers: usize,
}

impl ChildCounts {
    /// The wire form: a map with `specs`, `active`, `supervisors`, `workers`.
    pub(crate) fn to_value(self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("specs", self.specs),
            ("active", self.active),
            ("supervisors", self.supervisors),
            ("workers", self.workers),
        ] {
            m.insert(k.into(), Value::from(v));
        }
        Value::Map(m)
    }

    /// Reads the wire form.
    pub(crate) fn from_value(v: &Value) -> Result<ChildCounts> {
        let m =
            v.as_map().ok_or_else(|| Error::BadReply(format!("count_children answer is not a map: {v}")))?;
        let n = |k: &str| {
            m.get(k)
                .and_then(Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| Error::BadReply(format!("count_children: {k}")))
        };
        Ok(ChildCounts {
            specs: n("specs")?,
            active: n("active")?,
            supervisors: n("supervisors")?,
            workers: n("workers")?,
        })
    }
}

pub(crate) fn bad_reply(what: &str) -> Error {
    Error::BadReply(format!("which_children: {what}"))
}

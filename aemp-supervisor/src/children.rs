//! A supervisor's children, by start order, ID and port, with the number
//! of children on each node: every lookup, insertion, removal and state
//! change costs the same however many children there are.
//!
//! A child's state changes only through [`Children::set_state`], which keeps
//! the port and node indexes in step.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aemp::{NodeId, PortId, Reason, TimerGuard};
use tokio::time::Instant;

use crate::info::ChildStatus;
use crate::intensity::{Intensity, RestartWindow};
use crate::spec::{ChildKind, ChildSpec};

/// A child's place in the start order (smaller starts first).
pub(crate) type Key = u64;

/// What a child is doing.
pub(crate) enum St {
    /// Not running and not meant to (stopped by hand, left stopped, or not
    /// started yet).
    Stopped,
    /// Spawned; its start is not confirmed yet.
    Starting {
        node: NodeId,
        wrapper: PortId,
        _deadline: Option<TimerGuard>,
    },
    Running {
        node: NodeId,
        port: PortId,
    },
    /// Asked to stop; its exit is awaited.
    Stopping {
        node: NodeId,
        port: PortId,
        _deadline: Option<TimerGuard>,
    },
    /// Exited; the decision about it is pending.
    Exited,
    /// Waiting out a backoff delay (timer `seq`) before its restart.
    Backoff {
        seq: u64,
        due: Instant,
    },
}

impl St {
    pub(crate) fn node(&self) -> Option<&NodeId> {
        match self {
            St::Starting { node, .. } | St::Running { node, .. } | St::Stopping { node, .. } => Some(node),
            _ => None,
        }
    }

    pub(crate) fn port(&self) -> Option<&PortId> {
        match self {
            St::Running { port, .. } | St::Stopping { port, .. } => Some(port),
            _ => None,
        }
    }

    /// Spawned and not known dead: its exit is still to come.
    pub(crate) fn is_live(&self) -> bool {
        self.node().is_some()
    }

    pub(crate) fn status(&self) -> ChildStatus {
        match self {
            St::Stopped => ChildStatus::Stopped,
            St::Starting { .. } => ChildStatus::Starting,
            St::Running { .. } => ChildStatus::Running,
            St::Stopping { .. } => ChildStatus::Stopping,
            St::Exited => ChildStatus::Exited,
            St::Backoff { .. } => ChildStatus::Backoff,
        }
    }
}

pub(crate) struct Child {
    pub(crate) spec: ChildSpec,
    /// Counts starts: messages about an older start are ignored.
    pub(crate) gen: u64,
    state: St,
    pub(crate) total_restarts: u32,
    /// Its restarts, for the count within the intensity period.
    pub(crate) recent: RestartWindow,
    /// Backoff attempts since it last ran for the backoff's reset time.
    pub(crate) attempt: u32,
    pub(crate) last_exit: Option<Reason>,
    /// A node just lost: not a candidate for the next start.
    pub(crate) avoid: Option<NodeId>,
    pub(crate) since: Option<Instant>,
    /// How long it ran before its last exit.
    pub(crate) ran: Option<Duration>,
    /// The wrapper of its current start, if on the supervisor's node.
    pub(crate) local_wrapper: Option<PortId>,
}

impl Child {
    pub(crate) fn new(spec: ChildSpec, intensity: Intensity) -> Child {
        Child {
            spec,
            gen: 0,
            state: St::Stopped,
            total_restarts: 0,
            recent: RestartWindow::new(intensity),
            attempt: 0,
            last_exit: None,
            avoid: None,
            since: None,
            ran: None,
            local_wrapper: None,
        }
    }

    pub(crate) fn state(&self) -> &St {
        &self.state
    }

    pub(crate) fn id(&self) -> &str {
        &self.spec.id
    }
}

#[derive(Default)]
pub(crate) struct Children {
    by_key: BTreeMap<Key, Child>,
    by_id: HashMap<String, Key>,
    by_port: HashMap<PortId, Key>,
    /// Children starting, running or stopping on each node.
    load: HashMap<NodeId, usize>,
    supervisors: usize,
    next_key: Key,
}

impl Children {
    /// Adds a child after the others; `None` if its ID is taken.
    pub(crate) fn insert(&mut self, child: Child) -> Option<Key> {
        if self.by_id.contains_key(child.id()) {
            return None;
        }
        self.next_key += 1;
        let key = self.next_key;
        self.by_id.insert(child.id().to_owned(), key);
        if child.spec.kind == ChildKind::Supervisor {
            self.supervisors += 1;
        }
        self.by_key.insert(key, child);
        Some(key)
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<Child> {
        self.set_state(key, St::Stopped);
        let c = self.by_key.remove(&key)?;
        self.by_id.remove(c.id());
        if c.spec.kind == ChildKind::Supervisor {
            self.supervisors -= 1;
        }
        Some(c)
    }

    /// Sets a child's state; returns the old one.
    pub(crate) fn set_state(&mut self, key: Key, st: St) -> Option<St> {
        let c = self.by_key.get_mut(&key)?;
        let old = std::mem::replace(&mut c.state, st);
        if let Some(p) = old.port() {
            self.by_port.remove(p);
        }
        if let Some(n) = old.node() {
            if let Some(l) = self.load.get_mut(n) {
                *l -= 1;
                if *l == 0 {
                    self.load.remove(n);
                }
            }
        }
        if let Some(p) = c.state.port() {
            self.by_port.insert(p.clone(), key);
        }
        if let Some(n) = c.state.node() {
            *self.load.entry(n.clone()).or_default() += 1;
        }
        Some(old)
    }

    pub(crate) fn get(&self, key: Key) -> Option<&Child> {
        self.by_key.get(&key)
    }

    /// The child, to change anything but its state.
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut Child> {
        self.by_key.get_mut(&key)
    }

    pub(crate) fn key(&self, id: &str) -> Option<Key> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn key_of_port(&self, port: &PortId) -> Option<Key> {
        self.by_port.get(port).copied()
    }

    /// The children in start order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (Key, &Child)> {
        self.by_key.iter().map(|(k, c)| (*k, c))
    }

    /// The keys from `key` on, in start order.
    pub(crate) fn keys_from(&self, key: Key) -> impl Iterator<Item = Key> + '_ {
        self.by_key.range(key..).map(|(k, _)| *k)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Children with a running (or stopping) port.
    pub(crate) fn running(&self) -> usize {
        self.by_port.len()
    }

    pub(crate) fn supervisors(&self) -> usize {
        self.supervisors
    }

    /// Children starting, running or stopping on `node`.
    pub(crate) fn load(&self, node: &NodeId) -> usize {
        self.load.get(node).copied().unwrap_or(0)
    }
}

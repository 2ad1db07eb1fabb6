//! The peer table (one [`Peer`] per remote node, with its link's state,
//! its send queue and the monitors on its ports) and the address book.
//!
//! Locks: the peers' map and the address book are each taken alone or
//! under one peer's state, never the other way round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Framing, Net};
use crate::core::Action;
use crate::id::NodeId;
use crate::value::Msg;

/// The established link to a peer.
pub(super) struct Up {
    pub(super) conn: u64,
    /// Wakes this link's writer (each link has its own, so that a link on
    /// its way out cannot take the wake-up meant for its successor).
    pub(super) wake: Arc<Notify>,
    /// Ends this link's connection task (and closes its socket) at once:
    /// when the link fails, is replaced, or the node shuts down.
    pub(super) closed: tokio_util::sync::CancellationToken,
    pub(super) framing: Framing,
    pub(super) aemp: bool,
    pub(super) incarnation: Option<String>,
    /// Who dialled this connection.
    pub(super) dialer: NodeId,
}

#[derive(Default)]
pub(super) struct PeerState {
    pub(super) up: Option<Up>,
    /// Messages queued while not connected.
    pub(super) pending: Vec<Msg>,
    pub(super) pending_bytes: usize,
    /// When the first pending message was queued (the connect deadline runs from it).
    pub(super) pending_since: Option<Instant>,
    /// Encoded bytes for the writer.
    pub(super) out: Vec<u8>,
    /// The socket of a plain TCP link, for writes without a task switch.
    pub(super) sock: Option<Arc<tokio::net::tcp::OwnedWriteHalf>>,
    /// The writer task has taken bytes out of `out` and is writing them.
    pub(super) writing: bool,
    /// A dialling task is running.
    pub(super) dialing: bool,
    /// The authenticated connection that is becoming the link.
    pub(super) claim: Option<(u64, NodeId)>,
    /// How many connections from this node are past their greetings and
    /// not yet authenticated.
    pub(super) greeted: u32,
    /// One of our dials to this node is under way.
    pub(super) attempting: bool,
    /// Local monitors on this node's ports: port name -> actions.
    pub(super) monitors: Monitors,
    /// Ports whose monitors were taken to fire for a loss and have not
    /// fired yet (a count per port): messages to them are dropped until
    /// the dispatcher fires those monitors, so that nothing sent after a
    /// lost message reaches the port before the monitor tells its owner
    /// (no silent holes).
    pub(super) lost: HashMap<Box<str>, u32>,
    /// Removed from the peers' map (a node that left): whoever still holds
    /// this entry must take the node's current one instead.
    pub(super) forgotten: bool,
}

/// Everything about one remote node: its link, what is queued for it, the
/// monitors on its ports.
/// Monitors on a node's ports: port name -> (monitor ID, action).
pub(super) type Monitors = HashMap<Box<str>, Vec<(u64, Action)>>;

impl PeerState {
    /// Takes every monitor on the node's ports to fire for a loss; their
    /// ports count as lost until they have fired.
    pub(super) fn take_monitors_for_loss(&mut self) -> Monitors {
        let mons = std::mem::take(&mut self.monitors);
        for name in mons.keys() {
            *self.lost.entry(name.clone()).or_default() += 1;
        }
        mons
    }

    /// Takes the monitors on one port to fire for a loss (see
    /// [`PeerState::take_monitors_for_loss`]).
    pub(super) fn take_port_monitors_for_loss(&mut self, name: &str) -> Monitors {
        let mut fire = HashMap::new();
        if let Some(list) = self.monitors.remove(name) {
            *self.lost.entry(Box::from(name)).or_default() += 1;
            fire.insert(Box::from(name), list);
        }
        fire
    }

    /// Whether messages to port `name` are dropped (see `lost`).
    pub(super) fn is_lost(&self, name: &str) -> bool {
        !self.lost.is_empty() && self.lost.contains_key(name)
    }

    /// The monitors of a loss on port `name` have fired.
    pub(super) fn fired(&mut self, name: &str) {
        if let Some(n) = self.lost.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                self.lost.remove(name);
            }
        }
    }
}

pub(crate) struct Peer {
    /// The network, for flushing this peer's outbox.
    pub(super) net: Weak<Net>,
    pub(super) id: NodeId,
    pub(super) st: Mutex<PeerState>,
    /// Wakes a dial waiting to retry: the node has new addresses.
    pub(super) new_addrs: Notify,
    /// Wakes a dial waiting for a connection from the node to finish its
    /// handshake.
    pub(super) settled: Notify,
    /// A link to this node has come up (the node authenticated): only such
    /// nodes are known nodes, listed and passed on to others. Outside the
    /// state's lock, so that the list can be made under one peer's lock.
    pub(super) met: AtomicBool,
}

impl Net {
    /// The peer of a node given by its ID string, made if new.
    pub(super) fn peer_str(&self, id: &str) -> Option<Arc<Peer>> {
        if let Some(p) = self.peers.lock().get(id) {
            return Some(p.clone());
        }
        NodeId::new(id).ok().map(|id| self.peer(&id))
    }

    /// The peer of a node, made if new.
    pub(super) fn peer(&self, id: &NodeId) -> Arc<Peer> {
        self.peers
            .lock()
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(Peer {
                    net: self.weak.clone(),
                    id: id.clone(),
                    st: Mutex::default(),
                    new_addrs: Notify::new(),
                    settled: Notify::new(),
                    met: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// The peer of a node, if there is one.
    pub(super) fn existing_peer(&self, id: &NodeId) -> Option<Arc<Peer>> {
        self.peers.lock().get(id).cloned()
    }

    /// Records listener addresses of a node (from Global). A node learnt
    /// with no address gets no entry: there is nothing to dial.
    pub(crate) fn learn_addrs(&self, id: &NodeId, addrs: Vec<String>) {
        if *id == self.me || addrs.is_empty() {
            return;
        }
        let new = {
            let mut book = self.addrs.lock();
            let new = book.get(id).is_none_or(|old| addrs.iter().any(|a| !old.contains(a)));
            book.insert(id.clone(), addrs);
            new
        };
        if let Some(peer) = self.existing_peer(id).filter(|_| new) {
            peer.new_addrs.notify_one();
        }
    }

    /// Records an address of a node that the user gave; it is kept even
    /// while the node has never been reached.
    pub(crate) fn give_addr(&self, id: &NodeId, addr: String) {
        self.given.lock().insert(id.clone());
        let mut a = self.addrs_of(id);
        a.push(addr);
        self.learn_addrs(id, a);
    }

    /// The known addresses of a node.
    pub(crate) fn addrs_of(&self, id: &NodeId) -> Vec<String> {
        self.addrs.lock().get(id).cloned().unwrap_or_default()
    }

    /// Every node we know of (not ourselves): those that have
    /// authenticated on a link and those whose address the user gave, not
    /// every ID someone has named.
    pub(crate) fn known_nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.given.lock().iter().cloned().collect();
        v.extend(self.peers.lock().values().filter(|p| p.met.load(Ordering::Acquire)).map(|p| p.id.clone()));
        v.sort();
        v.dedup();
        v
    }

    /// The nodes with a live connection.
    pub(crate) fn up_nodes(&self) -> Vec<NodeId> {
        // Never hold the map's lock while taking a peer's (lock order: a
        // peer's state may be held while the map is consulted).
        let peers: Vec<Arc<Peer>> = self.peers.lock().values().cloned().collect();
        let mut v: Vec<NodeId> =
            peers.iter().filter(|p| p.st.lock().up.is_some()).map(|p| p.id.clone()).collect();
        v.sort();
        v
    }

    /// Whether a node has a live connection.
    pub(crate) fn is_up(&self, id: &NodeId) -> bool {
        self.existing_peer(id).is_some_and(|p| p.st.lock().up.is_some())
    }

    /// Forgets a node that nothing needs (no link, nothing queued or
    /// monitored) and that cannot be dialled (no known address: a private
    /// node that disconnected) or was never reached (an ID someone named,
    /// perhaps made up; its addresses go too, unless the user gave them).
    /// Without this every client that ever connected, and every node ID
    /// ever named, would stay in the tables sent to each new connection.
    pub(super) fn forget_if_unreachable(&self, peer: &Arc<Peer>) {
        let dialable = !self.addrs_of(&peer.id).is_empty();
        if dialable && peer.met.load(Ordering::Acquire) {
            return;
        }
        let forgot = self.forget_idle(peer);
        if forgot && dialable && !self.given.lock().contains(&peer.id) {
            self.addrs.lock().remove(&peer.id);
        }
    }

    /// Removes `peer` from the map if nothing needs it; returns whether it did.
    fn forget_idle(&self, peer: &Arc<Peer>) -> bool {
        let mut peers = self.peers.lock();
        // Only try the peer's lock: blocking on it while holding the map
        // would break the lock order (a busy peer is simply kept). The
        // lock is held while the entry goes, and the entry is marked, so
        // that no one adds to an entry that is no longer in the map.
        let Some(mut st) = peer.st.try_lock() else { return false };
        let idle = st.up.is_none()
            && st.claim.is_none()
            && st.greeted == 0
            && st.pending.is_empty()
            && st.monitors.is_empty()
            && st.lost.is_empty()
            && !st.dialing;
        if idle && peers.get(&peer.id).is_some_and(|p| Arc::ptr_eq(p, peer)) {
            peers.remove(&peer.id);
            st.forgotten = true;
            return true;
        }
        false
    }

    /// How many nodes have an entry, and how many an address.
    #[cfg(test)]
    pub(crate) fn table_sizes(&self) -> (usize, usize) {
        (self.peers.lock().len(), self.addrs.lock().len())
    }

    /// Takes the monitors on port `name` of `node`: the node told us, with
    /// `kil`, that the port died.
    pub(super) fn take_monitors(&self, node: &NodeId, name: &str) -> Vec<Action> {
        let Some(p) = self.existing_peer(node) else { return Vec::new() };
        let mut st = p.st.lock();
        st.monitors.remove(name).map(|v| v.into_iter().map(|(_, a)| a).collect()).unwrap_or_default()
    }
}

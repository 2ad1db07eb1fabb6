//! The network layer: listeners, connections, the handshake, per-node send
//! queues and remote monitors (the book's protocol chapter describes the
//! wire side).
//!
//! [`Net`] is the network state of one node; its rooms:
//!
//! | file | owns |
//! |---|---|
//! | `config.rs` | [`NetConfig`], the node's network settings |
//! | `framing.rs` | the two framings a link can speak |
//! | `peers.rs` | the peer table (one [`Peer`] per remote node) and the address book |
//! | `send.rs` | the send path: enqueue, flush, failure of a link |
//! | `ports.rs` | the dispatcher's interface ([`Remote`]), implemented over the peers |
//! | `accept.rs` | listening, accepting, connection and handshake slots |
//! | `dial.rs` | dialling: addresses, seeds, retries |
//! | `handshake.rs` | a connection's handshake (the I/O) |
//! | `negotiate.rs` | what two greetings decide, and the peer's auth line (pure) |
//! | `claim.rs` | which connection becomes the link when both sides dial (pure rule, applied under the peer's lock) |
//! | `link.rs` | a live link: becoming it, its reader and writer, routing what arrives |
//! | `stream.rs` | byte-stream adapters (plain or TLS, bytes read ahead) |
//! | `stats.rs` | what each link carried and what it is, for [`crate::NodeStats`] |
//!
//! Locks: a peer's state (`Peer::st`), then Global's state (taken by
//! [`LinkEvents::opening_messages`] under the peer's lock), then the
//! address book or the peers' map; never two peers' states at once. The
//! peer's mutex also guards its monitors together with its send queue,
//! which is what keeps the loss guarantee: a monitor registered before a
//! message was queued is in the table when that link fails.
//!
//! The network reaches the dispatcher through the node's command queue
//! ([`Shared::call`], [`Shared::push`]), or, in a connection's reader,
//! runs what arrived itself when no one else is running the node's
//! commands ([`Shared::run_here`], never under a peer's lock); it reaches
//! Global only through [`LinkEvents`].

mod accept;
mod claim;
mod config;
mod dial;
mod framing;
mod handshake;
mod link;
mod negotiate;
mod peers;
mod ports;
mod send;
mod stats;
mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::core::Shared;
use crate::error::{Error, Result};
use crate::id::NodeId;
use crate::reason::Reason;
use crate::value::Msg;
use crate::wire::greeting;

pub use config::NetConfig;
pub(crate) use link::route_incoming;
pub(crate) use peers::Peer;

#[cfg(doc)]
use crate::remote::Remote;

use framing::Framing;

/// What the network tells the service that runs on it (Global) about
/// links to other nodes. Each link is named by its connection's number:
/// the events of two links to one node may arrive out of order (a link's
/// end is told after its peer's lock is released, when the next link may
/// already be up), and the service orders them by that number.
pub(crate) trait LinkEvents: Send + Sync {
    /// The messages that open link `conn`, sent ahead of anything queued.
    /// Called under the peer's lock, once the connection is sure to become
    /// the link (a link to the node it replaces ends here, if its end was
    /// not told yet).
    fn opening_messages(&self, node: &NodeId, conn: u64) -> Vec<Msg>;
    /// Link `conn` came up (after its opening messages were queued).
    fn link_up(&self, node: &NodeId, conn: u64);
    /// Link `conn` went down.
    fn link_down(&self, node: &NodeId, conn: u64, reason: &Reason);
}

/// The network state of a node.
pub(crate) struct Net {
    /// This value, for the peers it makes (their outboxes flush through it).
    weak: Weak<Net>,
    shared: Weak<Shared>,
    me: NodeId,
    cfg: NetConfig,
    incarnation: String,
    tls: Option<crate::tls::TlsSetup>,
    listen: Vec<String>,
    /// Bound listeners, until [`Net::listen`] starts accepting on them.
    listeners: Mutex<Vec<TcpListener>>,
    peers: Mutex<crate::util::FastMap<NodeId, Arc<Peer>>>,
    /// The address book: listener addresses of other nodes (kept apart from
    /// the peers' states so that Global can read it while one is locked).
    addrs: Mutex<HashMap<NodeId, Vec<String>>>,
    /// Nodes whose addresses the user gave ([`Net::give_addr`]): kept in the
    /// address book even before their node was ever reached.
    given: Mutex<std::collections::HashSet<NodeId>>,
    /// Why the last dial of a node failed, until a link to it comes up
    /// (for the errors of sends and calls that time out).
    failures: Mutex<HashMap<NodeId, String>>,
    next_conn: AtomicU64,
    open_conns: AtomicUsize,
    /// Incoming handshakes in progress, per remote address, oldest first.
    handshaking: Mutex<HashMap<std::net::IpAddr, accept::Handshakes>>,
    /// Who hears of links coming up and going down.
    events: OnceLock<Weak<dyn LinkEvents>>,
    /// Woken whenever a connection comes up (for `Node::wait_up`).
    pub(crate) up_event: Notify,
}

impl Net {
    /// Checks the settings and binds the listeners; nothing is accepted
    /// before [`Net::listen`].
    pub(crate) async fn bind(shared: &Arc<Shared>, cfg: NetConfig) -> Result<Arc<Net>> {
        if cfg.framings.is_empty() {
            return Err(Error::Config("framings: at least one of msgpack, json is needed".into()));
        }
        if let Some(f) = cfg.framings.iter().find(|f| Framing::from_name(f).is_none()) {
            return Err(Error::Config(format!("framings: {f:?} is not one aemp speaks (msgpack, json)")));
        }
        let tls = match &cfg.cert_pem {
            Some(pem) => Some(crate::tls::TlsSetup::from_pem(pem)?),
            None => None,
        };
        let mut listeners = Vec::new();
        let mut listen = Vec::new();
        for b in &cfg.binds {
            let l = TcpListener::bind(b.as_str())
                .await
                .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("cannot bind {b}: {e}"))))?;
            let addr = l.local_addr()?;
            listen.push(addr.to_string());
            listeners.push(l);
        }
        Ok(Arc::new_cyclic(|weak| Net {
            weak: weak.clone(),
            shared: Arc::downgrade(shared),
            me: shared.id.clone(),
            incarnation: greeting::new_incarnation(),
            tls,
            listen,
            listeners: Mutex::new(listeners),
            peers: Mutex::default(),
            addrs: Mutex::new(HashMap::new()),
            given: Mutex::default(),
            failures: Mutex::default(),
            next_conn: AtomicU64::new(1),
            open_conns: AtomicUsize::new(0),
            handshaking: Mutex::new(HashMap::new()),
            events: OnceLock::new(),
            up_event: Notify::new(),
            cfg,
        }))
    }

    /// Sets who hears of links coming up and going down (once).
    pub(crate) fn set_events(&self, events: Weak<dyn LinkEvents>) {
        let _ = self.events.set(events);
    }

    /// Starts accepting on the bound listeners.
    pub(crate) fn listen(self: &Arc<Net>) {
        let Some(shared) = self.shared() else { return };
        for l in std::mem::take(&mut *self.listeners.lock()) {
            let net = self.clone();
            shared.spawn_tracked(async move { net.accept_loop(l).await });
        }
    }

    /// The addresses the listeners are bound to.
    pub(crate) fn listen_addrs(&self) -> &[String] {
        &self.listen
    }

    pub(crate) fn cfg(&self) -> &NetConfig {
        &self.cfg
    }

    pub(crate) fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }

    pub(crate) fn me(&self) -> &NodeId {
        &self.me
    }

    /// Who hears of links, while it lives.
    fn events(&self) -> Option<Arc<dyn LinkEvents>> {
        self.events.get().and_then(Weak::upgrade)
    }

    /// Closes every connection (shutdown).
    fn close_all(&self) {
        let peers: Vec<Arc<Peer>> = self.peers.lock().values().cloned().collect();
        for p in peers {
            let mut st = p.st.lock();
            if let Some(up) = st.up.take() {
                up.closed.cancel();
                // What is queued goes if the socket takes it now (a last
                // message, or our auth line when the link came up a
                // moment ago): at best effort, never waiting.
                if let (Some(sock), false) = (&st.sock, st.writing) {
                    let _ = sock.try_write(&st.out);
                }
                st.sock = None;
                st.out.clear();
            }
        }
    }
}

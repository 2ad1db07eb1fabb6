//! Dialling: a node's known addresses with retries, a dial made from the
//! caller's task (`Node::connect`), and seeds (addresses whose node is not
//! known yet).
//!
//! Takes one peer's lock at a time, never across an await.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::config::secs;
use super::link::LiveLink;
use super::{Net, Peer};
use crate::error::{Error, Result};
use crate::id::NodeId;

/// Most nodes whose last dial failure is kept.
const MAX_FAILURES: usize = 4096;

impl Net {
    /// Starts a task that dials `peer` until it is linked or nothing
    /// waits for it any more.
    pub(super) fn start_dial(&self, peer: Arc<Peer>) {
        let (Some(shared), Some(net)) = (self.shared(), self.weak.upgrade()) else { return };
        shared.spawn_tracked(async move { net.dial_loop(peer).await });
    }

    /// Tries the node's addresses until a connection is up, nothing is
    /// pending any more, or the node is unknown.
    async fn dial_loop(self: Arc<Net>, peer: Arc<Peer>) {
        // The original waits a random 0-1 s before the first attempt; we go at once.
        loop {
            let (addrs, wanted) = {
                let st = peer.st.lock();
                (
                    self.addrs_of(&peer.id),
                    st.up.is_none() && (!st.pending.is_empty() || !st.monitors.is_empty()),
                )
            };
            if !wanted {
                break;
            }
            // A connection from that node is in its handshake: give it a
            // moment to finish rather than race it. Only a moment: a
            // stranger giving the node's ID that never authenticates must
            // not hold the dial off.
            let settled = peer.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if peer.st.lock().greeted > 0 {
                let _ = tokio::time::timeout(secs(self.cfg.network_latency), settled).await;
                if peer.st.lock().up.is_some() {
                    break;
                }
            }
            if addrs.is_empty() {
                self.dial_failed(&peer.id, "no known address".into());
            }
            for a in addrs {
                if let Some(link) = self.dial_addr(&peer, &a).await {
                    self.clone().run_link(link).await;
                }
                if peer.st.lock().up.is_some() {
                    break;
                }
            }
            if peer.st.lock().up.is_some() {
                break;
            }
            // Addresses learned meanwhile (from Global, say, for a node
            // that had none) end the wait at once.
            tokio::select! {
                _ = tokio::time::sleep(secs(self.cfg.connect_interval)) => {}
                _ = peer.new_addrs.notified() => {}
            }
        }
        peer.st.lock().dialing = false;
        self.forget_if_unreachable(&peer);
    }

    /// One attempt to make a link to `peer` at `addr`: TCP connect and
    /// handshake (failures are logged).
    ///
    /// A link that came up meanwhile (the node dialled us) ends the attempt:
    /// before it is made, before our greeting goes out, and when the peer's
    /// greeting is in (see `claim::arbitrate`). Past our auth line, a second
    /// connection dialled by the lower node ID would be taken by both sides
    /// in place of the live link, firing its monitors.
    async fn dial_addr(self: &Arc<Net>, peer: &Arc<Peer>, addr: &str) -> Option<LiveLink> {
        // Whether the link is up; our dial counts as under way only while
        // it is not.
        let linked = |peer: &Peer| {
            let mut st = peer.st.lock();
            st.attempting = st.up.is_none();
            !st.attempting
        };
        if linked(peer) {
            return None;
        }
        tracing::trace!(node = %peer.id, addr, "dialling");
        let link = match connect_addr(addr, secs(self.cfg.network_latency.max(1.0))).await {
            Some(Ok(_)) if linked(peer) => {
                tracing::trace!(node = %peer.id, addr, "linked while dialling: connection dropped");
                None
            }
            Some(Ok(sock)) => {
                let greeted = self.greet_now(&sock, addr.parse().ok(), true);
                match self.establish(sock, true, greeted, None, None).await {
                    Ok(link) => Some(link),
                    Err(e) if linked(peer) => {
                        tracing::trace!(node = %peer.id, addr, "linked while dialling: {e}");
                        None
                    }
                    Err(e) => {
                        if e.is_refusal() {
                            // Worth seeing without debug logging: a wrong
                            // secret or certificate never heals by itself.
                            tracing::warn!(node = %peer.id, addr, "connection refused: {e}");
                        } else {
                            tracing::debug!(node = %peer.id, addr, "connection ended: {e}");
                        }
                        self.dial_failed(&peer.id, format!("{addr}: {e}"));
                        None
                    }
                }
            }
            Some(Err(e)) => {
                tracing::debug!(node = %peer.id, addr, "connect failed: {e}");
                self.dial_failed(&peer.id, format!("{addr}: connect failed: {e}"));
                None
            }
            None => {
                tracing::debug!(node = %peer.id, addr, "connect timed out");
                self.dial_failed(&peer.id, format!("{addr}: connect timed out"));
                None
            }
        };
        peer.st.lock().attempting = false;
        link
    }

    /// Records why a dial of `node` failed (see `Remote::last_failure`).
    fn dial_failed(&self, node: &NodeId, why: String) {
        let mut f = self.failures.lock();
        // Bounded: made-up node IDs must not grow it without end.
        if f.len() >= MAX_FAILURES && !f.contains_key(node) {
            f.clear();
        }
        f.insert(node.clone(), why);
    }

    /// Dials `node` from the calling task when nothing else is dialling it
    /// or connecting from it: once the handshake is done the link is up,
    /// with no hand-off to a dialling task and back (for `Node::connect`).
    /// Returns whether the link is up; when not, the usual dialling (with
    /// its retries) is left to take over.
    pub(crate) async fn dial_here(self: &Arc<Net>, node: &NodeId) -> bool {
        let addrs = self.addrs_of(node);
        if addrs.is_empty() {
            return false;
        }
        let peer = self.peer(node);
        {
            let mut st = peer.st.lock();
            if st.dialing || st.up.is_some() || st.greeted > 0 || st.forgotten {
                return false;
            }
            st.dialing = true;
        }
        let _dialing = DialingHere { net: self.clone(), peer: peer.clone() };
        for a in addrs {
            if let Some(link) = self.dial_addr(&peer, &a).await {
                if let Some(shared) = self.shared() {
                    shared.spawn_tracked(self.clone().run_link(link));
                }
                return true;
            }
        }
        false
    }

    /// The addresses a seed stands for: the address itself, or every
    /// address its host name resolves to (as a headless service's name
    /// does), looked up afresh on each call.
    pub(crate) async fn seed_addrs(&self, seed: &str) -> Result<Vec<SocketAddr>> {
        if let Ok(a) = seed.parse::<SocketAddr>() {
            return Ok(vec![a]);
        }
        let limit = secs(self.cfg.network_latency.max(1.0));
        let found = tokio::time::timeout(limit, tokio::net::lookup_host(seed))
            .await
            .map_err(|_| Error::Timeout(format!("resolving {seed}")))?
            .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("resolving {seed}: {e}"))))?;
        Ok(found.collect())
    }

    /// Dials an address whose node is not known yet (a seed); returns the
    /// node's ID once the connection has ended.
    ///
    /// When the handshake fails, `named` receives the node ID the peer's
    /// greeting gave, if it got that far (a seed that is already connected
    /// to us is refused as a duplicate, and is known by that ID).
    pub(crate) async fn dial_seed(
        self: Arc<Net>,
        addr: &str,
        found: impl FnOnce(&NodeId),
        named: &mut Option<NodeId>,
    ) -> Result<NodeId> {
        let sock = connect_addr(addr, secs(self.cfg.network_latency.max(1.0)))
            .await
            .ok_or_else(|| Error::Timeout(format!("connect to {addr}")))??;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        // We dialled this connection, though we learn the node's ID only
        // from its greeting.
        let (tx_named, rx_named) = tokio::sync::oneshot::channel();
        let greeted = self.greet_now(&sock, addr.parse().ok(), true);
        let conn = self.run_connection_reporting(sock, true, greeted, None, Some((tx, tx_named)));
        tokio::pin!(conn);
        // Report the node as soon as the handshake names it, then run the
        // connection to its end.
        let r = tokio::select! {
            r = &mut conn => r,
            id = &mut rx => {
                let id = id.map_err(|_| Error::Protocol("no peer".into()))?;
                found(&id);
                conn.await?;
                return Ok(id);
            }
        };
        if let Err(e) = r {
            *named = rx_named.await.ok();
            return Err(e);
        }
        let id = rx.try_recv().map_err(|_| Error::Protocol("no peer".into()))?;
        found(&id);
        Ok(id)
    }
}

/// Connects to `host:port` within `limit` (`None` when it timed out); a
/// literal IP address skips the resolver (which runs on a blocking thread).
///
/// A connect on loopback or a fast LAN is done by the next turn of the
/// reactor, so it gets that turn before the timer is armed: arming a timer
/// on an idle runtime wakes its parked I/O driver, which costs a set-up
/// more than the connect itself.
pub(super) async fn connect_addr(addr: &str, limit: Duration) -> Option<std::io::Result<TcpStream>> {
    let connect = async {
        match addr.parse::<SocketAddr>() {
            Ok(a) => TcpStream::connect(a).await,
            Err(_) => TcpStream::connect(addr).await,
        }
    };
    let mut connect = std::pin::pin!(connect);
    if let Some(r) = poll_once(connect.as_mut()).await {
        return Some(r);
    }
    tokio::task::yield_now().await;
    if let Some(r) = poll_once(connect.as_mut()).await {
        return Some(r);
    }
    tokio::time::timeout(limit, connect).await.ok()
}

/// Polls `f` once: its output if it is ready.
async fn poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
    let mut f = f;
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// A dial made by `Net::dial_here`: when it ends (also when the caller
/// gave up on it half-way), the node may be dialled again, and is at once
/// when something waits for it.
struct DialingHere {
    net: Arc<Net>,
    peer: Arc<Peer>,
}

impl Drop for DialingHere {
    fn drop(&mut self) {
        let mut st = self.peer.st.lock();
        st.attempting = false;
        st.dialing = st.up.is_none() && (!st.pending.is_empty() || !st.monitors.is_empty());
        let redial = st.dialing;
        drop(st);
        if redial {
            self.net.start_dial(self.peer.clone());
        }
    }
}

//! Listening and accepting: the connection slots ([`NetConfig::max_connections`])
//! and the per-address handshake slots ([`NetConfig::max_handshakes_per_ip`])
//! that keep one host's silent sockets from taking every slot. When an
//! address has used all of its handshake slots, its oldest handshake still
//! in progress makes way for the new arrival: a real client behind the
//! same address (a NAT, a shared host) gets in, and a silent socket lasts
//! only until that address opens more connections.
//!
//! Takes only the slot counters' own lock.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Net;
#[cfg(doc)]
use super::NetConfig;

impl Net {
    pub(super) async fn accept_loop(self: Arc<Net>, l: TcpListener) {
        loop {
            let (sock, addr) = match l.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Take the slot here, before the next accept, so that a burst
            // of connections cannot pass the check all at once.
            let Some(slot) = ConnSlot::try_take(&self) else {
                tracing::warn!(%addr, "connection refused: {} connections open", self.cfg.max_connections);
                drop(sock);
                continue;
            };
            let hs_slot = HandshakeSlot::take(&self, addr.ip());
            let net = self.clone();
            // Greet at once, before the connection's task starts: the peer
            // waits for our lines before it can authenticate (see greet_now).
            let greeted = self.greet_now(&sock, Some(addr), false);
            if let Some(shared) = self.shared() {
                shared.spawn_tracked(async move {
                    let _slot = slot;
                    if let Err(e) =
                        net.clone().run_connection_reporting(sock, false, greeted, Some(hs_slot), None).await
                    {
                        tracing::warn!(%addr, "incoming connection closed: {e}");
                    }
                });
            }
        }
    }
}

/// The handshakes one address has in progress, oldest first: each one's
/// number and what ends it early.
pub(super) type Handshakes = VecDeque<(u64, CancellationToken)>;

/// One of the [`NetConfig::max_handshakes_per_ip`] handshakes one address
/// may have in progress; given back when the handshake ends.
pub(super) struct HandshakeSlot {
    net: Arc<Net>,
    ip: IpAddr,
    id: u64,
    /// Cancelled when a newer handshake from the same address takes the slot.
    pub(super) evicted: CancellationToken,
}

impl HandshakeSlot {
    /// A slot for a handshake from `ip`; when all of that address's slots
    /// are taken, the oldest of its handshakes is ended to make room.
    fn take(net: &Arc<Net>, ip: IpAddr) -> HandshakeSlot {
        let id = net.next_conn.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        let mut m = net.handshaking.lock();
        let list = m.entry(ip).or_default();
        while list.len() >= net.cfg.max_handshakes_per_ip.max(1) {
            let Some((_, oldest)) = list.pop_front() else { break };
            oldest.cancel();
        }
        list.push_back((id, evicted.clone()));
        HandshakeSlot { net: net.clone(), ip, id, evicted }
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut m = self.net.handshaking.lock();
        if let Some(list) = m.get_mut(&self.ip) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                m.remove(&self.ip);
            }
        }
    }
}

/// One of the [`NetConfig::max_connections`] connections a node may have
/// open; given back when dropped.
pub(super) struct ConnSlot(Arc<Net>);

impl ConnSlot {
    /// A slot for a connection we dial (counted, never refused).
    pub(super) fn take(net: &Arc<Net>) -> ConnSlot {
        net.open_conns.fetch_add(1, Ordering::AcqRel);
        ConnSlot(net.clone())
    }

    /// A slot for an accepted connection, unless all are taken.
    fn try_take(net: &Arc<Net>) -> Option<ConnSlot> {
        let max = net.cfg.max_connections;
        net.open_conns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| ConnSlot(net.clone()))
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.open_conns.fetch_sub(1, Ordering::AcqRel);
    }
}

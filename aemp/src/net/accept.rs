//! Listening and accepting: the connection slots ([`NetConfig::max_connections`])
//! and the per-address handshake slots ([`NetConfig::max_handshakes_per_ip`])
//! that keep one host's silent sockets from taking every slot.
//!
//! Takes only the slot counters' own lock.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

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
            let Some(hs_slot) = HandshakeSlot::try_take(&self, addr.ip()) else {
                tracing::warn!(
                    %addr,
                    "connection refused: {} handshakes from {} in progress",
                    self.cfg.max_handshakes_per_ip,
                    addr.ip()
                );
                continue;
            };
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

/// One of the [`NetConfig::max_handshakes_per_ip`] handshakes one address
/// may have in progress; given back when the handshake ends.
pub(super) struct HandshakeSlot(Arc<Net>, std::net::IpAddr);

impl HandshakeSlot {
    fn try_take(net: &Arc<Net>, ip: std::net::IpAddr) -> Option<HandshakeSlot> {
        let mut m = net.handshaking.lock();
        let n = m.entry(ip).or_insert(0);
        if *n >= net.cfg.max_handshakes_per_ip {
            return None;
        }
        *n += 1;
        Some(HandshakeSlot(net.clone(), ip))
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut m = self.0.handshaking.lock();
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
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

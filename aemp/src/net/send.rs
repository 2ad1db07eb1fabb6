//! The send path: queueing for a node (while its link comes up), encoding
//! into a live link's buffer, flushing it, and the failure of a link.
//!
//! Everything here runs under one peer's lock at a time; monitors are fired
//! after it is let go, through the dispatcher's queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::config::secs;
use super::framing::Framing;
use super::peers::{Monitors, PeerState};
use super::{Net, Peer};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::id::NodeId;
use crate::reason::Reason;
use crate::remote::{Dirty, Outbox};
use crate::value::{Msg, Value};

impl Outbox for Peer {
    fn flush(self: Arc<Self>) {
        if let Some(net) = self.net.upgrade() {
            net.flush(&self);
        }
    }
}

impl Net {
    /// Sends a raw protocol message (first element = destination port name) to a node.
    pub(crate) fn send_raw(&self, node: &NodeId, msg: Msg) {
        if *node == self.me {
            return;
        }
        let peer = self.peer(node);
        self.enqueue(&peer, msg);
    }

    /// Sends a notification (a `kil` for a remote monitor) if the node's link
    /// is up. When it is down the node's side has already fired its
    /// monitors with `transport_error`, so there is no one to tell; and a
    /// node gone for good is not brought back into the tables by it.
    pub(crate) fn notify_if_up(&self, node: &NodeId, msg: Msg) {
        match self.existing_peer(node) {
            Some(peer) if peer.st.lock().up.is_some() => self.enqueue(&peer, msg),
            _ => tracing::debug!(%node, "notification for a node that is down dropped"),
        }
    }

    /// Sends `payload` to port `dest` of `peer` (`snd` of a remote port).
    pub(super) fn enqueue_to(&self, peer: &Arc<Peer>, dest: &str, payload: Msg) {
        let mut st = peer.st.lock();
        if st.is_lost(dest) {
            // Dropped: its port's loss is being reported. A monitor placed on
            // the port since the loss has now lost a message too, and fires.
            tracing::debug!(node = %peer.id, port = dest, "message to a port whose loss is being reported dropped");
            let fire = st.take_port_monitors_for_loss(dest);
            drop(st);
            let reason = Reason::transport_error(peer.id.as_str(), "message lost with the link");
            self.fire_monitors(peer, fire, reason);
            return;
        }
        if st.up.is_some() {
            self.write_locked_to(
                peer,
                st,
                Some(dest),
                |framing, out| framing.encode_dest(dest, &payload.0, out),
                None,
            );
            return;
        }
        drop(st);
        let mut full = Vec::with_capacity(payload.0.len() + 1);
        full.push(Value::from(dest));
        full.extend(payload.0);
        self.enqueue(peer, Msg::from(full));
    }

    /// Encodes into the live connection's buffer (the lock is held); the
    /// writer task is woken, or, with `dirty`, the caller flushes later.
    pub(super) fn write_locked_to(
        &self,
        peer: &Arc<Peer>,
        mut st: parking_lot::MutexGuard<'_, PeerState>,
        dest: Option<&str>,
        encode: impl FnOnce(Framing, &mut Vec<u8>) -> Result<()>,
        dirty: Option<&mut Dirty>,
    ) {
        let Some(up) = &st.up else { return };
        let (framing, conn, link_wake) = (up.framing, up.conn, up.wake.clone());
        let was_empty = st.out.is_empty();
        if let Err(e) = encode(framing, &mut st.out) {
            let (fire, reason) = unsendable(&peer.id, &mut st, dest, &e);
            drop(st);
            self.fire_monitors(peer, fire, reason);
            return;
        }
        st.traffic.msgs_out += 1;
        if st.out.len() > self.cfg.send_queue_limit {
            drop(st);
            self.fail(peer, conn, "send queue limit exceeded");
            return;
        }
        drop(st);
        match dirty {
            Some(d) => {
                let same = |o: &Arc<dyn Outbox>| std::ptr::addr_eq(Arc::as_ptr(o), Arc::as_ptr(peer));
                if !d.last().is_some_and(same) {
                    d.push(peer.clone());
                }
            }
            None => {
                if was_empty {
                    link_wake.notify_one();
                }
            }
        }
    }

    /// Writes what is buffered for `peer` now, from the calling task, when
    /// the link is plain TCP and the writer task is idle; else wakes it.
    pub(super) fn flush(&self, peer: &Arc<Peer>) {
        let mut st = peer.st.lock();
        if st.out.is_empty() || st.writing {
            return;
        }
        let link_wake = st.up.as_ref().map(|u| u.wake.clone());
        let Some(sock) = st.sock.clone() else {
            drop(st);
            if let Some(w) = link_wake {
                w.notify_one();
            }
            return;
        };
        let mut written = 0;
        let failure = loop {
            match sock.try_write(&st.out[written..]) {
                Ok(n) => {
                    written += n;
                    if written == st.out.len() {
                        break None;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break None,
                Err(e) => break Some(e),
            }
        };
        st.out.drain(..written);
        st.traffic.bytes_out += written as u64;
        let rest = !st.out.is_empty();
        let conn = st.up.as_ref().map(|u| u.conn);
        drop(st);
        if let (Some(e), Some(c)) = (failure, conn) {
            self.fail(peer, c, &format!("write error: {e}"));
        } else if let (true, Some(w)) = (rest, link_wake) {
            w.notify_one();
        }
    }

    pub(super) fn enqueue(&self, peer: &Arc<Peer>, msg: Msg) {
        let mut st = peer.st.lock();
        if st.forgotten {
            drop(st);
            return self.enqueue(&self.peer(&peer.id), msg);
        }
        if st.up.is_some() {
            // `msg` carries its destination first.
            let dest = msg.0.first().and_then(Value::as_str).map(str::to_owned);
            self.write_locked_to(peer, st, dest.as_deref(), |framing, out| framing.encode(&msg.0, out), None);
            return;
        }
        st.pending_bytes += estimate(&msg);
        st.pending.push(msg);
        if st.pending_since.is_none() {
            st.pending_since = Some(Instant::now());
            let p = peer.clone();
            let timeout = secs(self.cfg.connect_timeout);
            if let (Some(shared), Some(net)) = (self.shared(), self.weak.upgrade()) {
                shared.spawn_tracked(async move {
                    tokio::time::sleep(timeout).await;
                    net.connect_deadline(&p);
                });
            }
        }
        if st.pending_bytes > self.cfg.send_queue_limit {
            let pending = std::mem::take(&mut st.pending);
            st.pending_bytes = 0;
            st.pending_since = None;
            let mons = st.take_monitors_for_loss();
            drop(st);
            drop(pending);
            tracing::warn!(node = %peer.id, "send queue limit exceeded while connecting");
            self.fire_monitors(
                peer,
                mons,
                Reason::transport_error(peer.id.as_str(), "send queue limit exceeded"),
            );
            return;
        }
        let dial = !st.dialing;
        st.dialing = true;
        drop(st);
        if dial {
            self.start_dial(peer.clone());
        }
    }

    /// No connection came up in time for the queued messages.
    fn connect_deadline(&self, peer: &Arc<Peer>) {
        let mut st = peer.st.lock();
        if st.up.is_some() || st.pending_since.is_none() {
            return;
        }
        if st
            .pending_since
            .is_some_and(|t| t.elapsed() + Duration::from_millis(5) < secs(self.cfg.connect_timeout))
        {
            return;
        }
        st.pending.clear();
        st.pending_bytes = 0;
        st.pending_since = None;
        let mons = st.take_monitors_for_loss();
        drop(st);
        // The reason stays the one AnyEvent::MP gives (code matches on
        // it); the log says how the last attempt ended.
        match self.failures.lock().get(&peer.id) {
            Some(last) => tracing::warn!(node = %peer.id, "unable to connect (last attempt: {last})"),
            None => tracing::warn!(node = %peer.id, "unable to connect"),
        }
        self.fire_monitors(peer, mons, Reason::transport_error(peer.id.as_str(), "unable to connect"));
    }

    pub(super) fn fire_monitors(&self, peer: &Arc<Peer>, mons: Monitors, reason: Reason) {
        if mons.is_empty() {
            return;
        }
        let Some(shared) = self.shared() else { return };
        let peer = peer.clone();
        shared.call(move |core: &mut Core| {
            for (name, actions) in mons {
                // Sends from the monitors' own callbacks go through.
                peer.st.lock().fired(&name);
                for (_, a) in actions {
                    core.fire(&name, a, reason.clone());
                }
            }
            if let Some(net) = peer.net.upgrade() {
                net.forget_if_unreachable(&peer);
            }
        });
    }

    /// The connection `conn` to `peer` failed: drop what was not written,
    /// fire every monitor on the node's ports.
    pub(super) fn fail(&self, peer: &Arc<Peer>, conn: u64, text: &str) {
        let mut st = peer.st.lock();
        if st.up.as_ref().map(|u| u.conn) != Some(conn) {
            return;
        }
        if let Some(up) = st.up.take() {
            up.closed.cancel();
        }
        st.sock = None;
        st.writing = false;
        st.out = Vec::new();
        st.pending.clear();
        st.pending_bytes = 0;
        st.pending_since = None;
        let mons = st.take_monitors_for_loss();
        drop(st);
        tracing::info!(node = %peer.id, "connection lost: {text}");
        if let Some(shared) = self.shared() {
            let id = peer.id.clone();
            shared.call(move |core: &mut Core| core.drop_remote_monitors(&id));
        }
        let reason = Reason::transport_error(peer.id.as_str(), text);
        self.fire_monitors(peer, mons, reason.clone());
        if let Some(ev) = self.events() {
            ev.link_down(&peer.id, conn, &reason);
        }
        self.forget_if_unreachable(peer);
    }
}

/// A message that the link's framing cannot carry (bytes over json, say)
/// is lost: it is logged, and the monitors of its destination port are
/// taken, to fire with `("transport_error", node, "message not sent: ...")`
/// so that the loss is not silent.
pub(super) type Lost = (Monitors, Reason);

pub(super) fn unsendable(node: &NodeId, st: &mut PeerState, dest: Option<&str>, e: &Error) -> Lost {
    tracing::error!(%node, port = ?dest, "message not sent: {e}");
    let fire = match dest.filter(|d| !d.is_empty()) {
        Some(d) => st.take_port_monitors_for_loss(d),
        None => HashMap::new(),
    };
    (fire, Reason::transport_error(node.as_str(), format!("message not sent: {e}")))
}

/// A rough size of a queued message, for the send queue's limit.
fn estimate(m: &Msg) -> usize {
    fn size(v: &Value) -> usize {
        match v {
            Value::Str(s) => s.len() + 3,
            Value::Bytes(b) => b.len() + 5,
            Value::Array(a) => 2 + a.iter().map(size).sum::<usize>(),
            Value::Map(m) => 2 + m.iter().map(|(k, v)| k.len() + 3 + size(v)).sum::<usize>(),
            _ => 9,
        }
    }
    2 + m.0.iter().map(size).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::{mpsc, oneshot};

    use crate::remote::Remote;
    use crate::{msg, NetConfig, Node, NodeEvent, Reason, Value};

    async fn public(id: &str) -> Node {
        let c = NetConfig {
            binds: vec!["127.0.0.1:0".into()],
            secret: Some("loss-test".into()),
            ..NetConfig::default()
        };
        Node::builder().id(id).net_config(c).build().await.unwrap()
    }

    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(20), f).await.expect("in time")
    }

    /// A message sent to a monitored remote port after its link failed, but
    /// before the dispatcher fired the monitor, is dropped rather than queued
    /// for the next link (where it would arrive after the lost ones), and a
    /// monitor placed on the port in between fires for it.
    // The dispatcher's state is held across awaits on purpose: the
    // dispatcher only ever try-locks it, so nothing blocks on it.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_between_a_links_loss_and_its_monitor_firing_is_dropped_and_reported() {
        let a = public("loss-a").await;
        let b = public("loss-b").await;
        a.add_node_addr(b.id(), b.listen_addrs()[0].clone());
        let (tx, mut got) = mpsc::unbounded_channel::<Value>();
        let sink = b
            .named_port("sink", move |_, m| {
                let _ = tx.send(m[0].clone());
            })
            .unwrap();
        let (fired_tx, mut fired) = mpsc::unbounded_channel();
        let _first = a.mon(&sink, move |r: Reason| {
            let _ = fired_tx.send(r);
        });
        a.snd(&sink, msg!["first"]);
        assert_eq!(within(got.recv()).await.unwrap(), Value::from("first"));
        let (down_tx, mut down) = mpsc::unbounded_channel();
        a.mon_nodes(move |ev| {
            if let NodeEvent::Down(..) = ev {
                let _ = down_tx.send(());
            }
        });
        let net = a.shared().global().unwrap().net.clone();

        // The dispatcher is held: the link's loss is seen, its monitors
        // are taken, but they cannot fire yet.
        let held = a.shared().hold_dispatcher();
        b.shutdown().await;
        within(down.recv()).await;
        let (late_tx, late) = oneshot::channel();
        let late_id = a.shared().next_mon();
        assert!(Remote::mon(&*net, &sink, late_id, crate::core::Action::Notify(late_tx)).is_none());
        Remote::send(&*net, &sink, msg!["after the loss"]);
        let peer = net.existing_peer(b.id()).unwrap();
        // (The new monitor's own `mon1` request is queued; the message is not.)
        let queued =
            peer.st.lock().pending.iter().any(|m| m.0.first().and_then(Value::as_str) == Some("sink"));
        assert!(!queued, "queued for the next link: a silent hole");
        drop(held);
        a.shared().call(|_| {});

        assert_eq!(within(fired.recv()).await.unwrap().kind(), Some("transport_error"));
        // It fires for the dropped message, not later for want of a link.
        let r = within(late).await.unwrap();
        assert_eq!(r.0.get(2).and_then(Value::as_str), Some("message lost with the link"), "{r}");
        a.shutdown().await;
    }
}

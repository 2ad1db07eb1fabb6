//! What a node's links carry and what they are: counters kept in each
//! peer's state, under its lock (plain fields, no atomic operation): the
//! send path counts under the lock it holds to encode a message, the
//! writer under the one it takes after a write, the reader takes it once
//! per batch of messages it read. And the figures of [`LinkStats`] made
//! from them.
//!
//! Takes one peer's lock at a time (see `peers.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::framing::Framing;
use super::{Net, Peer};
use crate::stats::LinkStats;

/// What the links to one node carried, since this node first knew it.
#[derive(Default)]
pub(super) struct Traffic {
    /// Messages encoded for the node (queued ones once their link is up).
    pub(super) msgs_out: u64,
    /// Bytes written to the node's sockets.
    pub(super) bytes_out: u64,
    /// Messages read from the node (keepalives not counted).
    pub(super) msgs_in: u64,
    /// Bytes of messages read from the node.
    pub(super) bytes_in: u64,
    /// Links that came up to the node.
    pub(super) links: u64,
}

impl Traffic {
    /// Adds `(messages, bytes)` read by a link's reader.
    pub(super) fn received(&mut self, (msgs, bytes): (u64, u64)) {
        self.msgs_in += msgs;
        self.bytes_in += bytes;
    }
}

/// What a link is: fixed when its handshake ends.
pub(super) struct LinkAbout {
    /// When the link came up.
    pub(super) since: Instant,
    /// The other end of its connection.
    pub(super) remote: Option<SocketAddr>,
    /// The auth method the peer proved itself with.
    pub(super) auth: String,
    /// Whether the connection runs over TLS.
    pub(super) tls: bool,
    /// The framing the peer sends.
    pub(super) recv_framing: Framing,
}

impl LinkAbout {
    /// A link that is coming up now; `auth_line` is the peer's.
    pub(super) fn new(remote: Option<SocketAddr>, auth_line: &str, tls: bool, recv: Framing) -> LinkAbout {
        let auth = auth_line.split(';').next().unwrap_or_default().trim().to_owned();
        LinkAbout { since: Instant::now(), remote, auth, tls, recv_framing: recv }
    }
}

fn framing_name(f: Framing) -> &'static str {
    match f {
        Framing::Json => "json",
        Framing::Msgpack => "msgpack",
    }
}

impl Net {
    /// The figures of every node this node has an entry for, by node ID.
    pub(crate) fn link_stats(&self) -> Vec<LinkStats> {
        // Never hold the map's lock while taking a peer's (lock order).
        let peers: Vec<Arc<Peer>> = self.peers.lock().values().cloned().collect();
        let mut v: Vec<LinkStats> = peers.iter().map(|p| self.peer_stats(p)).collect();
        v.sort_by(|a, b| a.peer.cmp(&b.peer));
        v
    }

    fn peer_stats(&self, peer: &Peer) -> LinkStats {
        let addresses = self.addrs_of(&peer.id);
        let st = peer.st.lock();
        let t = &st.traffic;
        let mut s = LinkStats::new(peer.id.clone());
        s.up = st.up.is_some();
        s.addresses = addresses;
        s.messages_sent = t.msgs_out;
        s.messages_received = t.msgs_in;
        s.bytes_sent = t.bytes_out;
        s.bytes_received = t.bytes_in;
        s.send_queue_bytes = st.out.len() + st.pending_bytes;
        s.pending_messages = st.pending.len();
        s.reconnects = t.links.saturating_sub(1);
        s.monitors = st.monitors.values().map(Vec::len).sum();
        if let Some(up) = &st.up {
            s.incarnation = up.incarnation.clone();
            s.remote_addr = up.about.remote.map(|a| a.to_string());
            s.send_framing = Some(framing_name(up.framing).to_owned());
            s.recv_framing = Some(framing_name(up.about.recv_framing).to_owned());
            s.auth = Some(up.about.auth.clone());
            s.tls = up.about.tls;
            s.aemp = up.aemp;
            s.dialed_here = up.dialer == self.me;
            s.age = Some(up.about.since.elapsed());
        }
        s
    }
}

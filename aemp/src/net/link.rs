//! A live link: a connection past its handshake becoming its node's link
//! (Global's opening messages and what was queued go out first), its writer
//! and reader tasks, and routing what arrives to the node's ports (run at
//! once when no one else is running the node's commands, else queued for
//! the dispatcher).
//!
//! Takes one peer's lock at a time; Global's state is taken under it only
//! through `LinkEvents::opening_messages`.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::accept::ConnSlot;
use super::config::secs;
use super::framing::Framing;
use super::handshake::Handshaken;
use super::peers::{PeerState, Up};
use super::send::{unsendable, Lost};
use super::stream::{Link, WriteSide};
use super::{Net, Peer};
use crate::core::{Cmd, Key, Shared};
use crate::error::{Error, Result};
use crate::id::NodeId;
use crate::reason::Reason;
use crate::value::{Msg, Value};
use crate::wire::codec::{split, Dest, SplitReader};

/// How many bytes of messages a connection hands to its node before it
/// waits for the node to catch up (receive-side backpressure).
const RECV_AHEAD: usize = 4 << 20;

/// A connection that has become the link to its node (see `Net::run_link`).
pub(super) struct LiveLink {
    pub(super) peer: Arc<Peer>,
    conn: u64,
    rd: Box<dyn AsyncRead + Unpin + Send>,
    wr: WriteSide,
    leftover: Vec<u8>,
    send_framing: Framing,
    recv_framing: Framing,
    peer_timeout: Option<f64>,
    wake: Arc<Notify>,
    closed: CancellationToken,
    /// Counts the connection while it lives (see `ConnSlot`).
    pub(super) slot: Option<ConnSlot>,
}

impl Net {
    /// Makes a connection past its handshake the link to its node: Global's
    /// opening messages and what was queued go out first.
    pub(super) fn become_link(&self, hs: Handshaken, peer: Arc<Peer>, conn: u64) -> Result<LiveLink> {
        let events = self.events();
        let closed = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let up = Up {
            wake: wake.clone(),
            closed: closed.clone(),
            conn,
            framing: hs.send_framing,
            aemp: hs.aemp,
            incarnation: hs.incarnation,
            dialer: hs.dialer,
            about: Box::new(hs.about),
        };
        let replaced = {
            let mut st = peer.st.lock();
            if st.claim.as_ref().map(|c| c.0) != Some(conn) {
                return Err(Error::Protocol(format!("connection to {} superseded by another", peer.id)));
            }
            // Global's opening messages, made only once this connection is
            // sure to be the link (lock order: a peer's state, then Global's,
            // then the address book or the peers' map; never another peer's).
            // When it replaces a live link (the peer restarted, or a 0.9
            // peer switched connections), Global starts over with it.
            let opening = events.as_ref().map(|ev| ev.opening_messages(&peer.id, conn)).unwrap_or_default();
            st.claim = None;
            self.install(&peer, &mut st, up, &hs.first, opening)
        };
        if let Some((mons, reason)) = replaced {
            tracing::info!(node = %peer.id, %reason, "connection replaced");
            self.fire_monitors(&peer, mons, reason);
        }
        let (send_framing, recv_framing) = (hs.send_framing, hs.recv_framing);
        tracing::info!(node = %peer.id, ?send_framing, ?recv_framing, "connection up");
        if let Some(ev) = &events {
            ev.link_up(&peer.id, conn);
        }
        self.up_event.notify_waiters();
        let (rd, wr): (Box<dyn AsyncRead + Unpin + Send>, WriteSide) = match hs.stream {
            Link::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                let w = Arc::new(w);
                peer.st.lock().sock = Some(w.clone());
                (Box::new(r), WriteSide::Plain(w))
            }
            Link::Tls(b) => {
                let (r, w) = tokio::io::split(b);
                (Box::new(r), WriteSide::Tls(w))
            }
        };
        Ok(LiveLink {
            peer,
            conn,
            rd,
            wr,
            leftover: hs.leftover,
            send_framing,
            recv_framing,
            peer_timeout: hs.peer_timeout,
            wake,
            closed,
            slot: None,
        })
    }

    /// Installs `up` as the peer's link (its lock held): the handshake's
    /// last bytes, Global's `opening` messages, then what was queued.
    /// Returns the monitors of a link it replaced, to fire.
    fn install(
        &self,
        peer: &Arc<Peer>,
        st: &mut PeerState,
        up: Up,
        first: &[u8],
        opening: Vec<Msg>,
    ) -> Option<Lost> {
        let framing = up.framing;
        let restarted_from = |old: &Up| old.incarnation.is_some() && old.incarnation != up.incarnation;
        let replaced = st.up.take().map(|old| {
            old.closed.cancel();
            // The old connection is gone: what it carried may be lost.
            let reason = if restarted_from(&old) {
                Reason::transport_error(peer.id.as_str(), "peer restarted")
            } else {
                Reason(vec![Value::from("transport_error"), Value::from("switched connections")])
            };
            (st.take_monitors_for_loss(), reason)
        });
        st.sock = None;
        st.writing = false;
        self.failures.lock().remove(&peer.id);
        st.up = Some(up);
        st.traffic.links += 1;
        peer.met.store(true, std::sync::atomic::Ordering::Release);
        st.out.clear();
        st.out.extend_from_slice(first);
        for m in opening {
            match framing.encode(&m.0, &mut st.out) {
                Ok(()) => st.traffic.msgs_out += 1,
                Err(e) => tracing::error!("global message not encodable: {e}"),
            }
        }
        let pending = std::mem::take(&mut st.pending);
        st.pending_bytes = 0;
        st.pending_since = None;
        for m in pending {
            let Err(e) = framing.encode(&m.0, &mut st.out) else {
                st.traffic.msgs_out += 1;
                continue;
            };
            let dest = m.0.first().and_then(Value::as_str);
            let (fire, reason) = unsendable(&peer.id, st, dest, &e);
            self.fire_monitors(peer, fire, reason);
        }
        replaced
    }

    /// Carries a link's messages both ways until it closes or fails.
    pub(super) async fn run_link(self: Arc<Net>, link: LiveLink) {
        let _slot = link.slot;
        let (peer, conn) = (link.peer, link.conn);
        let wtimeout = secs((self.cfg.advertised_timeout() as f64 - self.cfg.network_latency).max(1.0));
        let writer = {
            let net = self.clone();
            let peer = peer.clone();
            let (wake, wr, framing) = (link.wake, link.wr, link.send_framing);
            async move { net.writer(peer, conn, wake, wr, wtimeout, framing).await }
        };
        let reader = self.clone().reader(
            peer.clone(),
            conn,
            link.rd,
            link.leftover,
            link.recv_framing,
            link.peer_timeout,
        );
        let text = tokio::select! {
            r = reader => r,
            r = writer => r,
            _ = link.closed.cancelled() => "connection closed".to_owned(),
        };
        self.fail(&peer, conn, &text);
    }

    async fn writer(
        self: Arc<Net>,
        peer: Arc<Peer>,
        conn: u64,
        wake: Arc<Notify>,
        mut wr: WriteSide,
        keepalive: Duration,
        framing: Framing,
    ) -> String {
        let mut buf = Vec::new();
        // One keepalive timer for the link, moved on only when it fires
        // (as the reader's): a keepalive goes after `keepalive` without a
        // write by this task.
        let mut quiet = Box::pin(tokio::time::sleep(keepalive));
        let mut last_write = Instant::now();
        loop {
            let (live, idle) = {
                let mut st = peer.st.lock();
                let live = st.up.as_ref().map(|u| u.conn) == Some(conn);
                if live && !st.out.is_empty() {
                    std::mem::swap(&mut st.out, &mut buf);
                    st.writing = true;
                }
                (live, buf.is_empty())
            };
            if !live {
                wr.shutdown().await;
                return "connection closed".into();
            }
            if idle {
                tokio::select! {
                    biased;
                    () = wake.notified() => {}
                    () = quiet.as_mut() => {
                        let due = last_write + keepalive;
                        if Instant::now() >= due {
                            let _ = framing.encode(&[], &mut peer.st.lock().out);
                            quiet.as_mut().reset(Instant::now() + keepalive);
                        } else {
                            quiet.as_mut().reset(due);
                        }
                    }
                }
                continue;
            }
            let r = wr.write_all(&buf).await;
            last_write = Instant::now();
            {
                let mut st = peer.st.lock();
                st.writing = false;
                if r.is_ok() {
                    st.traffic.bytes_out += buf.len() as u64;
                }
            }
            if let Err(e) = r {
                return format!("write error: {e}");
            }
            buf.clear();
            if buf.capacity() > 1 << 20 {
                buf = Vec::new();
            }
        }
    }

    async fn reader(
        self: Arc<Net>,
        peer: Arc<Peer>,
        conn: u64,
        mut rd: impl AsyncRead + Unpin,
        leftover: Vec<u8>,
        framing: Framing,
        peer_timeout: Option<f64>,
    ) -> String {
        let Some(shared) = self.shared() else { return "node gone".into() };
        let mut dec = framing.reader(self.cfg.limits());
        let mut recent = RecentPorts::default();
        let mut buf = leftover;
        let mut cmds: Vec<Cmd> = Vec::new();
        let mut silence = peer_timeout.map(secs).map(Silence::new);
        // Bytes handed to the node since the node last caught up with us.
        let mut ahead = 0usize;
        loop {
            // When no one else is running the node's commands, each message
            // runs as soon as it is decoded (what it allocated is freed
            // while still in the cache); else they queue for the dispatcher.
            let mut tally = Unrecorded::default();
            let direct = shared.run_here(|core| {
                decode_each(&shared, &peer.id, &mut *dec, &mut recent, &buf, |cmd, upto| {
                    tally.saw(upto);
                    // A request to the node port may ask for this link's
                    // figures: they include it and what came before.
                    if matches!(cmd, Cmd::NodePort(..)) {
                        tally.record(&peer);
                    }
                    core.exec(cmd);
                })
            });
            let decoded = match direct {
                Some(r) => {
                    ahead = 0;
                    r
                }
                None => decode_each(&shared, &peer.id, &mut *dec, &mut recent, &buf, |cmd, upto| {
                    tally.saw(upto);
                    cmds.push(cmd);
                }),
            };
            if let Ok(used) = decoded {
                tally.upto = used;
            }
            tally.record(&peer);
            shared.push_and_run(&mut cmds);
            let used = match decoded {
                Ok(used) => used,
                Err(e) => {
                    tracing::warn!(node = %peer.id, "closing connection: {e}");
                    return format!("protocol error: {e}");
                }
            };
            ahead += used;
            if ahead > RECV_AHEAD {
                // The node is behind: wait until it has handled what this
                // connection gave it before reading more, so that a peer
                // sending faster than the node's callbacks run is held back
                // by TCP instead of filling this node's memory.
                let (tx, rx) = tokio::sync::oneshot::channel();
                shared.call(move |_| {
                    let _ = tx.send(());
                });
                if rx.await.is_err() {
                    return "node gone".into();
                }
                ahead = 0;
            }
            if used > 0 {
                buf.drain(..used);
            }
            if buf.capacity() - buf.len() < 16 * 1024 {
                buf.reserve(64 * 1024);
            }
            match read_timed(&mut rd, &mut buf, &mut silence).await {
                None => return "read timeout".into(),
                Some(Ok(0)) => return "connection closed by peer".into(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return format!("read error: {e}"),
            }
            if peer.st.lock().up.as_ref().map(|u| u.conn) != Some(conn) {
                return "connection replaced".into();
            }
        }
    }
}

/// Decodes every whole message at the start of `buf` and hands each, as a
/// command for the dispatcher, to `sink` with the number of bytes read up
/// to its end; returns how many bytes they all took.
fn decode_each(
    shared: &Shared,
    from: &NodeId,
    dec: &mut dyn SplitReader,
    recent: &mut RecentPorts,
    buf: &[u8],
    mut sink: impl FnMut(Cmd, usize),
) -> Result<usize> {
    let mut start = 0;
    while let Some((dest, msg, used)) = dec.decode_split(&buf[start..])? {
        start += used;
        if let Some(c) = route(shared, recent, from, dest, msg) {
            sink(c, start);
        }
    }
    Ok(start)
}

/// Messages and bytes read from a link and not yet added to its figures.
#[derive(Default)]
struct Unrecorded {
    msgs: u64,
    /// The read buffer's bytes up to `from` are recorded, up to `upto` read.
    from: usize,
    upto: usize,
}

impl Unrecorded {
    fn saw(&mut self, upto: usize) {
        self.msgs += 1;
        self.upto = upto;
    }

    fn record(&mut self, peer: &Peer) {
        if self.upto > self.from {
            peer.st.lock().traffic.received((self.msgs, (self.upto - self.from) as u64));
        }
        self.msgs = 0;
        self.from = self.upto;
    }
}

/// A link's read timeout: one timer for the whole connection, moved on
/// only when it fires (a timer set up and torn down for every read would
/// cost each message a trip through the runtime's timer wheel).
struct Silence {
    limit: Duration,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    last_read: Instant,
}

impl Silence {
    fn new(limit: Duration) -> Silence {
        Silence { limit, timer: Box::pin(tokio::time::sleep(limit)), last_read: Instant::now() }
    }
}

/// Reads into `buf`; `None` when the peer stayed silent past the timeout.
async fn read_timed(
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    silence: &mut Option<Silence>,
) -> Option<std::io::Result<usize>> {
    let read = rd.read_buf(buf);
    let Some(s) = silence else { return Some(read.await) };
    tokio::pin!(read);
    let r = loop {
        tokio::select! {
            biased;
            r = &mut read => break r,
            () = s.timer.as_mut() => {
                let due = s.last_read + s.limit;
                if Instant::now() >= due {
                    return None;
                }
                s.timer.as_mut().reset(due);
            }
        }
    };
    // Bytes that waited in the socket while this process was stopped past
    // the timeout are not delivered: the peer has given the link up already
    // (it heard nothing from us), and its monitors have fired.
    let now = Instant::now();
    if now >= s.last_read + s.limit {
        return None;
    }
    s.last_read = now;
    Some(r)
}

/// Routes one decoded message as a connection's reader does (the node
/// port's requests included), as if it had come from node `from`.
pub(crate) fn route_incoming(shared: &Arc<Shared>, from: &NodeId, msg: Vec<Value>) {
    let (dest, msg) = split(msg);
    if let Some(c) = route(shared, &mut RecentPorts::default(), from, dest, msg) {
        shared.push(c);
    }
}

/// A message from a peer, as a command for the dispatcher (`None` for a
/// keepalive or a malformed destination).
fn route(shared: &Shared, recent: &mut RecentPorts, from: &NodeId, dest: Dest<'_>, msg: Msg) -> Option<Cmd> {
    let target = match dest {
        Dest::Keepalive => return None,
        Dest::Port(name) => {
            let target = (!name.is_empty()).then(|| recent.key(shared, &name));
            recent.last = Some(target.clone());
            target
        }
        Dest::Same => match &recent.last {
            Some(target) => target.clone(),
            None => {
                tracing::error!(node = %from, "message to the same port as none before it dropped");
                return None;
            }
        },
        Dest::Invalid(kind) => {
            tracing::warn!(node = %from, "message whose destination is a {kind} dropped");
            return None;
        }
    };
    Some(match target {
        None => Cmd::NodePort(from.clone(), msg),
        Some(key) => Cmd::Deliver(key, msg),
    })
}

/// The keys of the named ports a link's recent messages went to: a message
/// to one of them shares its key instead of copying the name into a new one.
#[derive(Default)]
struct RecentPorts {
    /// Where the last message went (`None` inside: the node port), for
    /// [`Dest::Same`].
    last: Option<Option<Key>>,
    names: Vec<Arc<str>>,
    /// The entry replaced next once all are taken.
    next: usize,
}

impl RecentPorts {
    const KEPT: usize = 4;

    fn key(&mut self, shared: &Shared, name: &str) -> Key {
        if let Some(n) = self.names.iter().find(|n| ***n == *name) {
            return Key::Name(n.clone());
        }
        let key = shared.key_of(name);
        if let Key::Name(n) = &key {
            if self.names.len() < Self::KEPT {
                self.names.push(n.clone());
            } else {
                self.names[self.next] = n.clone();
                self.next = (self.next + 1) % Self::KEPT;
            }
        }
        key
    }
}

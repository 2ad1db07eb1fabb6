//! Which connection may become the link to a node when several race (both
//! sides dial at once, a peer restarts, a duplicate arrives): the rule as a
//! pure function ([`arbitrate`]), and its application under the peer's
//! lock: [`Net::screen`] when a connection's greetings are in, and
//! [`Net::claim`] once the peer has authenticated, guarded by [`Claimed`].
//!
//! One connection per node pair ([the wire protocol's connection
//! rules](https://metacpan.org/pod/AnyEvent::MP::Transport)). A connection
//! takes its node's claim only once the peer has proved the shared secret,
//! so a stranger giving another node's ID in its greeting holds nothing
//! that could delay the real node. Between aemp nodes two rules keep both
//! sides on the same connection when both dial at once: a node whose own
//! dial is under way refuses an incoming connection from a higher node ID
//! when the greetings are in, before its auth line goes out (its dial will
//! win there), a node that finds the link up when the greetings of its own
//! dial are in drops that dial (the peer has not had our auth line, so it
//! cannot have taken the connection), and of two authenticated connections
//! to the same incarnation the one dialled by the lower node ID wins (the
//! other is refused, or is replaced and its monitors fire).
//!
//! Takes one peer's lock.

use std::sync::Arc;

use super::peers::PeerState;
use super::{Net, Peer};
use crate::error::{Error, Result};
use crate::id::NodeId;

/// A connection past its greeting that wants to become the link.
#[derive(Clone, Copy, Debug)]
pub(super) struct Contender<'a> {
    /// The connection's number on this node.
    pub(super) conn: u64,
    /// Who dialled it.
    pub(super) dialer: &'a NodeId,
    /// Whether the peer speaks aemp's extensions (0.9 does not).
    pub(super) aemp: bool,
    /// The peer's incarnation, from its greeting.
    pub(super) incarnation: Option<&'a str>,
}

/// The live link a contender would replace.
#[derive(Clone, Copy, Debug)]
pub(super) struct Current<'a> {
    /// Whether its peer speaks aemp's extensions.
    pub(super) aemp: bool,
    /// Its peer's incarnation.
    pub(super) incarnation: Option<&'a str>,
    /// Who dialled it.
    pub(super) dialer: &'a NodeId,
}

/// What this node knows of the node a contender connects to.
#[derive(Clone, Copy, Debug)]
pub(super) struct Race<'a> {
    /// This node.
    pub(super) me: &'a NodeId,
    /// The other node.
    pub(super) peer: &'a NodeId,
    /// A dial of ours to it is under way and has not read its greeting.
    pub(super) attempting: bool,
    /// Whether the contender's greetings are in and our auth line has not
    /// gone out (else the peer has authenticated).
    pub(super) greeted: bool,
    /// Its live link, if any.
    pub(super) up: Option<Current<'a>>,
    /// The connection that holds the claim now, and who dialled it.
    pub(super) claim: Option<(u64, &'a NodeId)>,
}

/// Why a contender may not become the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Our own dial, and the link came up meanwhile.
    Linked,
    /// Both dialled at once and our own dial will win on both sides.
    OurDialWins,
    /// A second connection to the same incarnation of an aemp peer, not
    /// dialled by the lower node ID.
    Duplicate,
    /// A 0.9 peer that is connected already (0.9 keeps the first).
    AlreadyConnected,
    /// Another connection past its greeting, dialled by a lower node ID,
    /// holds the claim.
    Simultaneous,
}

impl Refusal {
    /// The error a refused connection ends with.
    pub(super) fn into_error(self, peer: &NodeId) -> Error {
        Error::Protocol(match self {
            Refusal::Linked => format!("linked to {peer} meanwhile: this connection is not needed"),
            Refusal::OurDialWins => format!("simultaneous connection with {peer}: ours wins"),
            Refusal::Duplicate => format!("duplicate connection with {peer} refused"),
            Refusal::AlreadyConnected => format!("already connected to {peer}"),
            Refusal::Simultaneous => format!("simultaneous connection with {peer} refused"),
        })
    }
}

/// Decides whether `c` may take the claim on its node.
pub(super) fn arbitrate(race: &Race<'_>, c: &Contender<'_>) -> std::result::Result<(), Refusal> {
    let we_dialed = c.dialer == race.me;
    if we_dialed && race.greeted && race.up.is_some() {
        return Err(Refusal::Linked);
    }
    if !we_dialed && c.aemp && race.attempting && race.me < race.peer && race.up.is_none() {
        return Err(Refusal::OurDialWins);
    }
    if let Some(up) = &race.up {
        let same_life = up.incarnation.is_some() && up.incarnation == c.incarnation;
        if c.aemp && up.aemp && same_life {
            // A duplicate of a live connection between aemp nodes: the one
            // dialled by the lower node ID wins on both sides.
            if up.dialer <= c.dialer {
                return Err(Refusal::Duplicate);
            }
        } else if !c.aemp && !up.aemp {
            // 0.9 closes a new connection when one is established.
            return Err(Refusal::AlreadyConnected);
        }
    }
    if let Some((other, other_dialer)) = race.claim {
        if other != c.conn && c.aemp && other_dialer < c.dialer {
            return Err(Refusal::Simultaneous);
        }
    }
    Ok(())
}

impl Net {
    /// The greetings are in: refuses the connection now, before our auth
    /// line goes out, when [`arbitrate`] would refuse it (an incoming
    /// connection from a higher node ID while our dial is under way, a
    /// duplicate of a live link). Returns `Ok(false)` when `peer` is no
    /// longer the node's entry (it was forgotten in between). Takes no
    /// claim: an incoming connection is only counted as greeted, which a
    /// dial waits for a little (see `Net::dial_loop`).
    pub(super) fn screen(&self, peer: &Arc<Peer>, c: &Contender<'_>) -> Result<bool> {
        let mut st = peer.st.lock();
        if st.forgotten {
            return Ok(false);
        }
        arbitrate(&race(&self.me, peer, &st, Some(st.attempting)), c).map_err(|r| r.into_error(&peer.id))?;
        if c.dialer != &self.me {
            st.greeted += 1;
        }
        Ok(true)
    }

    /// The peer has authenticated: claims `peer`'s entry for the connection
    /// unless [`arbitrate`] refuses it. Our own dial being under way no
    /// longer counts: the peer may have taken this connection as its link
    /// already. Returns `Ok(false)` when `peer` is no longer the node's
    /// entry.
    pub(super) fn claim(&self, peer: &Arc<Peer>, c: &Contender<'_>) -> Result<bool> {
        let mut st = peer.st.lock();
        if st.forgotten {
            return Ok(false);
        }
        arbitrate(&race(&self.me, peer, &st, None), c).map_err(|r| r.into_error(&peer.id))?;
        st.claim = Some((c.conn, c.dialer.clone()));
        Ok(true)
    }
}

/// What this node knows of `peer`'s connections, from its state `st`:
/// when the greetings are in, with whether our dial is under way
/// (`attempting`), else (`None`) once the peer has authenticated.
fn race<'a>(me: &'a NodeId, peer: &'a Peer, st: &'a PeerState, attempting: Option<bool>) -> Race<'a> {
    Race {
        me,
        peer: &peer.id,
        attempting: attempting.unwrap_or(false),
        greeted: attempting.is_some(),
        up: st.up.as_ref().map(|u| Current {
            aemp: u.aemp,
            incarnation: u.incarnation.as_deref(),
            dialer: &u.dialer,
        }),
        claim: st.claim.as_ref().map(|(c, d)| (*c, d)),
    }
}

/// A connection's hold on its node's entry while it is being set up: the
/// entry its greeting named (counted as greeted until the peer
/// authenticates, when it came in), then the claim. Both are let go when
/// the connection does not become the link, also when the handshake is
/// dropped half-way, and an entry nothing else needs is forgotten.
pub(super) struct Claimed {
    net: Arc<Net>,
    conn: u64,
    /// The entry the greeting named, or the one claimed.
    peer: Option<Arc<Peer>>,
    /// Whether this connection counts in `peer`'s `greeted`.
    greeted: bool,
}

impl Claimed {
    /// Nothing held yet.
    pub(super) fn new(net: Arc<Net>, conn: u64) -> Claimed {
        Claimed { net, conn, peer: None, greeted: false }
    }

    /// The node the connection's greeting named, if it got that far.
    pub(super) fn named(&self) -> Option<&NodeId> {
        self.peer.as_ref().map(|p| &p.id)
    }

    /// The greetings are in: screens the connection on the entry of the
    /// node they named (see [`Net::screen`]) and returns that entry.
    pub(super) fn screen(&mut self, id: &NodeId, c: &Contender<'_>) -> Result<Arc<Peer>> {
        loop {
            let peer = self.net.peer(id);
            self.peer = Some(peer.clone());
            if self.net.screen(&peer, c)? {
                self.greeted = c.dialer != &self.net.me;
                return Ok(peer);
            }
            // That entry was forgotten in between: take the node's new one.
        }
    }

    /// The peer has authenticated: stops counting as greeted and claims
    /// the node's entry (see [`Net::claim`]), which it returns.
    pub(super) fn claim(&mut self, c: &Contender<'_>) -> Result<Arc<Peer>> {
        self.ungreet();
        let Some(id) = self.peer.as_ref().map(|p| p.id.clone()) else {
            return Err(Error::Protocol("authenticated before the greetings named a node".into()));
        };
        loop {
            let peer = self.net.peer(&id);
            self.peer = Some(peer.clone());
            if self.net.claim(&peer, c)? {
                return Ok(peer);
            }
        }
    }

    /// The connection became the link: nothing to let go.
    pub(super) fn done(mut self) {
        self.peer = None;
    }

    fn ungreet(&mut self) {
        if !std::mem::take(&mut self.greeted) {
            return;
        }
        if let Some(p) = &self.peer {
            p.st.lock().greeted -= 1;
            p.settled.notify_waiters();
        }
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.ungreet();
        let Some(p) = self.peer.take() else { return };
        let mut st = p.st.lock();
        if st.claim.as_ref().map(|c| c.0) == Some(self.conn) {
            st.claim = None;
        }
        drop(st);
        // A node ID heard only in a greeting that never authenticated is
        // not a known node.
        self.net.forget_if_unreachable(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// One row: the situation, the contender, the verdict.
    struct Row {
        name: &'static str,
        /// Decided when the greetings are in (else once authenticated).
        greeted: bool,
        attempting: bool,
        /// (aemp, incarnation, dialer) of the live link.
        up: Option<(bool, Option<&'static str>, &'static str)>,
        /// (conn, dialer) of the claim held now.
        claim: Option<(u64, &'static str)>,
        /// (conn, dialer, aemp, incarnation) of the contender.
        c: (u64, &'static str, bool, Option<&'static str>),
        want: std::result::Result<(), Refusal>,
    }

    const ROWS: &[Row] = &[
        Row {
            name: "our own dial finds the link up when the greetings are in: dropped before our auth line",
            greeted: true,
            attempting: true,
            up: Some((true, Some("i1"), "b")),
            claim: None,
            c: (3, "a", true, Some("i1")),
            want: Err(Refusal::Linked),
        },
        Row {
            name: "our own dial finds a link to a 0.9 node up when the greetings are in",
            greeted: true,
            attempting: true,
            up: Some((false, None, "b")),
            claim: None,
            c: (3, "a", false, None),
            want: Err(Refusal::Linked),
        },
        Row {
            name: "an incoming duplicate of a live link we dialled is refused when the greetings are in",
            greeted: true,
            attempting: false,
            up: Some((true, Some("i1"), "a")),
            claim: None,
            c: (3, "b", true, Some("i1")),
            want: Err(Refusal::Duplicate),
        },
        Row {
            name: "a first connection, nothing else going on",
            greeted: false,
            attempting: false,
            up: None,
            claim: None,
            c: (1, "b", true, Some("i1")),
            want: Ok(()),
        },
        Row {
            name: "our dial is under way and we are lower: the incoming one from the higher node is refused",
            greeted: true,
            attempting: true,
            up: None,
            claim: None,
            c: (2, "b", true, Some("i1")),
            want: Err(Refusal::OurDialWins),
        },
        Row {
            name: "our dial is under way but the incoming one is from 0.9: no aemp rule applies",
            greeted: true,
            attempting: true,
            up: None,
            claim: None,
            c: (2, "b", false, None),
            want: Ok(()),
        },
        Row {
            name: "our own dial claims while our dial is marked under way",
            greeted: true,
            attempting: true,
            up: None,
            claim: None,
            c: (2, "a", true, Some("i1")),
            want: Ok(()),
        },
        Row {
            name: "duplicate of a live link to the same incarnation, the live one dialled by the lower node",
            greeted: false,
            attempting: false,
            up: Some((true, Some("i1"), "a")),
            claim: None,
            c: (3, "b", true, Some("i1")),
            want: Err(Refusal::Duplicate),
        },
        Row {
            name: "duplicate of a live link dialled by the same node",
            greeted: false,
            attempting: false,
            up: Some((true, Some("i1"), "b")),
            claim: None,
            c: (3, "b", true, Some("i1")),
            want: Err(Refusal::Duplicate),
        },
        Row {
            name: "duplicate dialled by the lower node replaces a live link dialled by the higher one",
            greeted: false,
            attempting: false,
            up: Some((true, Some("i1"), "b")),
            claim: None,
            c: (3, "a", true, Some("i1")),
            want: Ok(()),
        },
        Row {
            name: "the peer restarted (new incarnation): the new connection replaces the live link",
            greeted: false,
            attempting: false,
            up: Some((true, Some("i1"), "a")),
            claim: None,
            c: (3, "b", true, Some("i2")),
            want: Ok(()),
        },
        Row {
            name: "a 0.9 peer already connected: 0.9 keeps its first connection",
            greeted: false,
            attempting: false,
            up: Some((false, None, "b")),
            claim: None,
            c: (3, "b", false, None),
            want: Err(Refusal::AlreadyConnected),
        },
        Row {
            name: "an aemp peer replacing a link to a 0.9 node under the same ID",
            greeted: false,
            attempting: false,
            up: Some((false, None, "b")),
            claim: None,
            c: (3, "b", true, Some("i1")),
            want: Ok(()),
        },
        Row {
            name: "two connections past their greetings: the one dialled by the lower node holds, the higher's is refused",
            greeted: false,
            attempting: false,
            up: None,
            claim: Some((1, "a")),
            c: (2, "b", true, Some("i1")),
            want: Err(Refusal::Simultaneous),
        },
        Row {
            name: "two connections past their greetings: the lower node's takes the claim from the higher's",
            greeted: false,
            attempting: false,
            up: None,
            claim: Some((1, "b")),
            c: (2, "a", true, Some("i1")),
            want: Ok(()),
        },
        Row {
            name: "the claim is this very connection's",
            greeted: false,
            attempting: false,
            up: None,
            claim: Some((2, "a")),
            c: (2, "b", true, Some("i1")),
            want: Ok(()),
        },
        Row {
            name: "a 0.9 contender is not refused by a claim",
            greeted: false,
            attempting: false,
            up: None,
            claim: Some((1, "a")),
            c: (2, "b", false, None),
            want: Ok(()),
        },
    ];

    #[test]
    fn arbitration_table() {
        // This node is "a"; the peer is "b" (a < b).
        let (a, b) = (id("a"), id("b"));
        for row in ROWS {
            let up_dialer = row.up.map(|u| id(u.2));
            let claim_dialer = row.claim.map(|c| id(c.1));
            let race = Race {
                me: &a,
                peer: &b,
                attempting: row.attempting,
                greeted: row.greeted,
                up: row.up.map(|(aemp, incarnation, _)| Current {
                    aemp,
                    incarnation,
                    dialer: up_dialer.as_ref().unwrap(),
                }),
                claim: row.claim.map(|(conn, _)| (conn, claim_dialer.as_ref().unwrap())),
            };
            let dialer = id(row.c.1);
            let c = Contender { conn: row.c.0, dialer: &dialer, aemp: row.c.2, incarnation: row.c.3 };
            assert_eq!(arbitrate(&race, &c), row.want, "{}", row.name);
        }
    }

    #[test]
    fn the_higher_node_lets_the_lower_nodes_dial_win() {
        // Seen from "b", the higher node: its own dial under way does not
        // refuse the lower node's incoming connection.
        let (a, b) = (id("a"), id("b"));
        let race = Race { me: &b, peer: &a, attempting: true, greeted: true, up: None, claim: None };
        let c = Contender { conn: 5, dialer: &a, aemp: true, incarnation: Some("i") };
        assert_eq!(arbitrate(&race, &c), Ok(()));
    }

    #[test]
    fn refusals_name_the_peer() {
        let b = id("b");
        for r in [
            Refusal::Linked,
            Refusal::OurDialWins,
            Refusal::Duplicate,
            Refusal::AlreadyConnected,
            Refusal::Simultaneous,
        ] {
            assert!(r.into_error(&b).to_string().contains(" b"), "{r:?}");
        }
    }
}

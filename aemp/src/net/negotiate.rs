//! What a connection's greetings decide, and the check of the peer's auth
//! line: pure functions of the handshake lines and this node's settings
//! (no I/O, no locks), for protocol version 0, which AnyEvent::MP 0.9 and
//! aemp speak.
//!
//! The handshake calls them in order: [`identify`] (who is at the other
//! end), then the claim on that node's entry, then [`plan`] (TLS, the auth
//! method, the framing we send and our auth line), and [`accept_auth`] on
//! the peer's auth line. A later protocol version would get a module of its
//! own beside this one, chosen from the version in the peer's greeting.

use super::framing::Framing;
use crate::error::{Error, Result};
use crate::id::NodeId;
use crate::wire::auth::{self, AuthLine, AuthMethod};
use crate::wire::greeting::{self, Greeting};

/// This node's side of a negotiation.
#[derive(Clone, Copy, Debug)]
pub(super) struct Local<'a> {
    /// This node's ID.
    pub(super) me: &'a NodeId,
    /// The shared secret, when it is set and not empty.
    pub(super) secret: Option<&'a str>,
    /// Whether the peer may use the `cleartext` method.
    pub(super) allow_cleartext: bool,
    /// Whether `tls_anon` may be used.
    pub(super) allow_tls_anon: bool,
    /// Whether this node has a certificate (TLS).
    pub(super) have_cert: bool,
    /// The framings this node accepts.
    pub(super) framings: &'a [String],
}

/// The two handshake lines of one side: the greeting and the nonce line.
pub(super) type Lines<'a> = [&'a str; 2];

/// Who is at the other end: the peer's greeting, checked, and its node ID.
///
/// # Errors
/// A malformed greeting or nonce, a greeting that echoes ours, and
/// [`Error::SelfConnection`] when the peer claims our own node ID.
pub(super) fn identify(local: &Local<'_>, ours: Lines<'_>, theirs: Lines<'_>) -> Result<(Greeting, NodeId)> {
    let g = greeting::parse(theirs[0])?;
    greeting::check_nonce(theirs[1])?;
    if theirs == ours {
        return Err(Error::Protocol("the peer echoed our greeting".into()));
    }
    let peer = NodeId::new(&g.node_id)?;
    if peer == *local.me {
        return Err(Error::SelfConnection(peer.to_string()));
    }
    Ok((g, peer))
}

/// What the greetings decide, before a byte more is sent.
#[derive(Debug)]
pub(super) struct Plan {
    /// Whether TLS starts after the greetings.
    pub(super) tls_on: bool,
    /// Whether this side is the TLS client (when TLS is on).
    pub(super) tls_client: bool,
    /// The framing this side sends.
    pub(super) send_framing: Framing,
    /// Our auth line, line end included.
    pub(super) auth_line: String,
}

/// Chooses TLS, the auth method and the framing we send, and makes our
/// auth line, for a peer that [`identify`] accepted.
///
/// # Errors
/// [`Error::Auth`] when no auth method is in common, [`Error::Protocol`]
/// when no framing is.
pub(super) fn plan(local: &Local<'_>, ours: Lines<'_>, theirs: Lines<'_>, peer_g: &Greeting) -> Result<Plan> {
    let tls_on = greeting::tls_on(local.have_cert, peer_g);
    let sendable = greeting::sendable_auths(local.secret.is_some(), local.allow_tls_anon);
    let method = greeting::choose_auth(&peer_g.auths, &sendable, tls_on).ok_or_else(|| {
        Error::Auth(format!(
            "no auth method in common with {} (it accepts {})",
            peer_g.node_id,
            peer_g.auths.join(",")
        ))
    })?;
    let method =
        AuthMethod::from_name(&method).ok_or_else(|| Error::Auth(format!("unknown method {method}")))?;
    let framing = greeting::choose_framing(&peer_g.framings, &greeting::OUR_FRAMINGS).ok_or_else(|| {
        Error::Protocol(format!(
            "no framing in common with {} (it accepts {}; aemp speaks msgpack and json)",
            peer_g.node_id,
            peer_g.framings.join(",")
        ))
    })?;
    let send_framing = Framing::from_name(&framing)
        .ok_or_else(|| Error::Protocol(format!("unsupported framing {framing}")))?;
    let token = auth::token(method, local.secret, (ours[0], ours[1]), (theirs[0], theirs[1]))?;
    let line = AuthLine { method: method.name().to_owned(), token, framing };
    Ok(Plan {
        tls_on,
        tls_client: greeting::we_are_tls_client(ours[1], theirs[1]),
        send_framing,
        auth_line: format!("{}\n", line.to_line()),
    })
}

/// Checks the peer's auth line (without its line end); returns the framing
/// the peer will send.
///
/// # Errors
/// [`Error::Auth`] for a method this node does not accept or a token that
/// does not match (naming `peer`); [`Error::Protocol`] for a framing this
/// node does not accept.
pub(super) fn accept_auth(
    local: &Local<'_>,
    ours: Lines<'_>,
    theirs: Lines<'_>,
    peer: &NodeId,
    tls_on: bool,
    line: &str,
) -> Result<Framing> {
    let theirs_line = AuthLine::parse(line)?;
    let m =
        auth::accept_peer_method(&theirs_line.method, local.allow_cleartext, local.allow_tls_anon, tls_on)?;
    auth::verify(m, local.secret, (ours[0], ours[1]), (theirs[0], theirs[1]), &theirs_line.token).map_err(
        |e| match e {
            Error::Auth(text) => Error::Auth(format!("{peer}: {text}")),
            other => Error::Auth(format!("{peer}: {other}")),
        },
    )?;
    greeting::accept_peer_framing(&theirs_line.framing)?;
    if !local.framings.contains(&theirs_line.framing) {
        return Err(Error::Protocol(format!(
            "peer wants to send {}, which this node does not accept",
            theirs_line.framing
        )));
    }
    Framing::from_name(&theirs_line.framing)
        .ok_or_else(|| Error::Protocol(format!("unsupported framing {}", theirs_line.framing)))
}

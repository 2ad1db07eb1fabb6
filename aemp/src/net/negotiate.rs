//! What a connection's greetings decide, and the check of the peer's auth
//! line: pure functions of the handshake lines and this node's settings
//! (no I/O, no locks), for protocol version 0, which AnyEvent::MP 0.9 and
//! aemp speak.
//!
//! The handshake calls them in order: [`identify`] (who is at the other
//! end), [`plan`] (TLS, the auth method, the framing we send and our auth
//! line), then the screening of the connection on that node's entry, and
//! [`accept_auth`] on the peer's auth line, after which the connection
//! claims the entry. A later protocol version would get a module of its
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One side of a handshake: its settings and its two lines.
    struct Side {
        id: NodeId,
        secret: Option<&'static str>,
        allow_cleartext: bool,
        allow_tls_anon: bool,
        have_cert: bool,
        framings: Vec<String>,
        lines: [String; 2],
    }

    impl Side {
        fn new(id: &str) -> Side {
            let mut s = Side {
                id: NodeId::new(id).unwrap(),
                secret: Some("s3cret"),
                allow_cleartext: false,
                allow_tls_anon: false,
                have_cert: false,
                framings: vec!["msgpack".into(), "json".into()],
                lines: [String::new(), greeting::new_nonce()],
            };
            s.greet();
            s
        }

        /// Makes the greeting line from the settings (call after changing them).
        fn greet(&mut self) {
            let mut g = greeting::our_greeting(
                self.id.as_str(),
                self.allow_cleartext,
                self.allow_tls_anon,
                self.have_cert,
                30,
                None,
                "inc",
                greeting::PROVIDER,
            );
            g.framings = self.framings.clone();
            self.lines[0] = g.to_line();
        }

        fn local(&self) -> Local<'_> {
            Local {
                me: &self.id,
                secret: self.secret,
                allow_cleartext: self.allow_cleartext,
                allow_tls_anon: self.allow_tls_anon,
                have_cert: self.have_cert,
                framings: &self.framings,
            }
        }

        fn lines(&self) -> Lines<'_> {
            [&self.lines[0], &self.lines[1]]
        }
    }

    /// Runs both sides' negotiation as the handshake does: identify, plan,
    /// then each checks the other's auth line. Returns (a's plan, the
    /// framing a receives) or the first error, from a's side first.
    fn run(a: &Side, b: &Side) -> Result<(Plan, Framing)> {
        let (gb, idb) = identify(&a.local(), a.lines(), b.lines())?;
        let (ga, _) = identify(&b.local(), b.lines(), a.lines())?;
        let pa = plan(&a.local(), a.lines(), b.lines(), &gb)?;
        let pb = plan(&b.local(), b.lines(), a.lines(), &ga)?;
        assert_eq!(pa.tls_on, pb.tls_on, "both sides agree on TLS");
        if pa.tls_on {
            assert_ne!(pa.tls_client, pb.tls_client, "exactly one TLS client");
        }
        let recv = accept_auth(&a.local(), a.lines(), b.lines(), &idb, pa.tls_on, pb.auth_line.trim_end())?;
        accept_auth(&b.local(), b.lines(), a.lines(), &a.id, pb.tls_on, pa.auth_line.trim_end())?;
        assert_eq!(recv, pb.send_framing);
        Ok((pa, recv))
    }

    fn method(p: &Plan) -> String {
        AuthLine::parse(p.auth_line.trim_end()).unwrap().method
    }

    #[test]
    fn negotiation_table() {
        type Setup = fn(&mut Side, &mut Side);
        // (what, changes to a and b, a's auth method, a's send framing, TLS)
        let ok: &[(&str, Setup, &str, Framing, bool)] = &[
            ("defaults: blake3 and msgpack", |_, _| {}, "hmac_blake3_256", Framing::Msgpack, false),
            (
                "the peer accepts json only",
                |_, b| b.framings = vec!["json".into()],
                "hmac_blake3_256",
                Framing::Json,
                false,
            ),
            (
                "both have certificates: TLS, and still the preferred secret-based method",
                |a, b| {
                    a.have_cert = true;
                    b.have_cert = true;
                },
                "hmac_blake3_256",
                Framing::Msgpack,
                true,
            ),
            (
                "one certificate only: no TLS",
                |a, _| a.have_cert = true,
                "hmac_blake3_256",
                Framing::Msgpack,
                false,
            ),
            (
                "TLS without a secret: the method bound to the TLS session",
                |a, b| {
                    for s in [a, b] {
                        s.have_cert = true;
                        s.secret = None;
                        s.allow_tls_anon = true;
                    }
                },
                "tls_md6_64_256",
                Framing::Msgpack,
                true,
            ),
        ];
        for (what, setup, want_method, want_framing, want_tls) in ok {
            let (mut a, mut b) = (Side::new("a"), Side::new("b"));
            setup(&mut a, &mut b);
            a.greet();
            b.greet();
            let (p, _) = run(&a, &b).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(method(&p), *want_method, "{what}");
            assert_eq!(p.send_framing, *want_framing, "{what}");
            assert_eq!(p.tls_on, *want_tls, "{what}");
        }

        // (what, changes to a and b, a word the error must contain)
        let refused: &[(&str, Setup, &str)] = &[
            ("no secret and no TLS: nothing to authenticate with", |a, _| a.secret = None, "no auth method"),
            ("different secrets", |_, b| b.secret = Some("other"), "does not match"),
            ("the peer claims our own ID", |_, b| b.id = NodeId::new("a").unwrap(), "our own node ID"),
            ("no framing in common", |_, b| b.framings = vec!["cbor".into()], "no framing in common"),
            (
                "tls_anon without TLS is never chosen, so no method is left",
                |a, b| {
                    for s in [a, b] {
                        s.secret = None;
                        s.allow_tls_anon = true;
                    }
                },
                "no auth method",
            ),
        ];
        for (what, setup, want) in refused {
            let (mut a, mut b) = (Side::new("a"), Side::new("b"));
            setup(&mut a, &mut b);
            a.greet();
            b.greet();
            match run(&a, &b) {
                Ok(_) => panic!("{what}: negotiated"),
                Err(e) => assert!(e.to_string().contains(want), "{what}: {e}"),
            }
        }
    }

    #[test]
    fn identify_refuses_bad_greetings() {
        let a = Side::new("a");
        let b = Side::new("b");
        let nonce = greeting::new_nonce();
        let cases: &[(&str, [&str; 2], &str)] = &[
            ("an echo of our own lines", a.lines(), "echoed"),
            ("a protocol-1 greeting", ["aemp;1;b;hmac_md6_64_256;json", &nonce], "version mismatch"),
            ("not a greeting", ["GET / HTTP/1.1", &nonce], "not an AEMP greeting"),
            ("an empty nonce line", [&b.lines[0], ""], "nonce line is empty"),
            ("a nonce line that is not base64", [&b.lines[0], "a b"], "not base64"),
        ];
        for (what, theirs, want) in cases {
            let e = identify(&a.local(), a.lines(), *theirs).err().unwrap_or_else(|| panic!("{what}"));
            assert!(e.to_string().contains(want), "{what}: {e}");
        }
        let e = identify(&a.local(), a.lines(), [&a.lines[0].clone(), &nonce]).err().unwrap();
        assert!(matches!(e, Error::SelfConnection(_)), "{e}");
    }

    #[test]
    fn accept_auth_refuses_what_the_configuration_does_not_allow() {
        let (a, b) = (Side::new("a"), Side::new("b"));
        let cases: &[(&str, bool, &str)] = &[
            ("cleartext;00;msgpack", false, "cleartext, which is not allowed"),
            ("tls_md6_64_256;00;msgpack", false, "needs TLS"),
            ("tls_anon;;msgpack", true, "tls_anon, which is not allowed"),
            ("rot13;00;msgpack", false, "does not accept"),
        ];
        for (line, tls, want) in cases {
            let e = accept_auth(&a.local(), a.lines(), b.lines(), &b.id, *tls, line).err().unwrap();
            assert!(e.to_string().contains(want), "{line}: {e}");
        }
        // A peer that sends a framing this node did not offer.
        let mut a = Side::new("a");
        a.framings = vec!["json".into()];
        let (ga, _) = identify(&b.local(), b.lines(), a.lines()).unwrap();
        let pb = plan(&b.local(), b.lines(), a.lines(), &ga).unwrap();
        assert_eq!(pb.send_framing, Framing::Msgpack);
        let e = accept_auth(&a.local(), a.lines(), b.lines(), &b.id, false, pb.auth_line.trim_end())
            .err()
            .unwrap();
        assert!(e.to_string().contains("which this node does not accept"), "{e}");
    }
}

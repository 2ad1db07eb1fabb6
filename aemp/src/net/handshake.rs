//! A connection's handshake, the I/O half: greetings written at once, the
//! peer's lines read, TLS started, auth lines exchanged, up to the
//! connection's becoming the link to its node. What the lines decide is
//! pure code in `negotiate.rs` and `claim.rs`.
//!
//! Takes one peer's lock at a time (through the claim), never across an
//! await.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::accept::{ConnSlot, HandshakeSlot};
use super::claim::{Claimed, Contender};
use super::config::secs;
use super::framing::Framing;
use super::link::LiveLink;
use super::negotiate::{self, Local, Plan};
use super::stats::LinkAbout;
use super::stream::{Link, Prefixed};
use super::{Net, Peer};
use crate::error::{Error, Result};
use crate::id::NodeId;
use crate::wire::greeting::{self, Greeting, LineReader};

impl Net {
    /// Runs one connection to its end: handshake, then the link (returns
    /// when the connection is closed).
    pub(super) async fn run_connection_reporting(
        self: Arc<Net>,
        sock: TcpStream,
        we_dialed: bool,
        greeted: Greeted,
        hs_slot: Option<HandshakeSlot>,
        report: Option<Report>,
    ) -> Result<()> {
        let link = self.establish(sock, we_dialed, greeted, hs_slot, report).await?;
        self.run_link(link).await;
        Ok(())
    }

    /// One connection's handshake, up to its becoming the link to its node.
    pub(super) async fn establish(
        self: &Arc<Net>,
        sock: TcpStream,
        we_dialed: bool,
        greeted: Greeted,
        hs_slot: Option<HandshakeSlot>,
        report: Option<Report>,
    ) -> Result<LiveLink> {
        // Accepted connections hold their slot already (see accept_loop).
        let slot = we_dialed.then(|| ConnSlot::take(self));
        let mut greeted = greeted;
        let conn = greeted.conn;
        let deadline = Instant::now() + secs(self.cfg.handshake_timeout);
        let mut claimed = greeted.claimed.take().unwrap_or_else(|| Claimed::new(self.clone(), conn));
        let evicted = hs_slot.as_ref().map(|s| s.evicted.clone()).unwrap_or_default();
        let hs = tokio::select! {
            hs = tokio::time::timeout_at(deadline, self.handshake(sock, greeted, we_dialed, &mut claimed)) => {
                hs.unwrap_or_else(|_| Err(Error::Protocol("handshake did not finish in time".into())))
            }
            () = evicted.cancelled() => Err(Error::Protocol(format!(
                "handshake ended to make room: {} newer handshakes from the same address",
                self.cfg.max_handshakes_per_ip
            ))),
        };
        drop(hs_slot);
        let (hs, peer) = match hs {
            Ok(x) => x,
            Err(e) => {
                if let (Some((_, named)), Some(id)) = (report, claimed.named()) {
                    let _ = named.send(id.clone());
                }
                return Err(e);
            }
        };
        if let Some((r, _)) = report {
            let _ = r.send(peer.id.clone());
        }
        let mut link = self.become_link(hs, peer, conn)?;
        claimed.done();
        link.slot = slot;
        Ok(link)
    }

    /// Our two greeting lines for a new connection.
    ///
    /// A dialler writes them at once (a new socket's send buffer is empty,
    /// so it takes them whole): the peer needs them before it can
    /// authenticate, so they go out before the connection's task is even
    /// scheduled. An acceptor first takes what the dialler has sent so far.
    /// When that is its whole greeting, the acceptor decides on the
    /// connection right here and sends its greeting and auth line in one
    /// write, which needs one wake-up of the dialler instead of two.
    /// Neither side ever waits for the other's greeting before sending its
    /// own. `peer_addr` is the peer's address when the caller
    /// knows it already (the socket is asked otherwise).
    pub(super) fn greet_now(
        self: &Arc<Net>,
        sock: &TcpStream,
        peer_addr: Option<SocketAddr>,
        we_dialed: bool,
    ) -> Greeted {
        let _ = sock.set_nodelay(true);
        self.limit_unacknowledged(sock);
        let peer_addr = peer_addr.or_else(|| sock.peer_addr().ok()).map(|a| a.to_string());
        let mut ours = greeting::our_greeting(
            self.me.as_str(),
            self.cfg.allow_cleartext,
            self.cfg.allow_tls_anon,
            self.tls.is_some(),
            self.cfg.advertised_timeout(),
            peer_addr.as_deref(),
            &self.incarnation,
            greeting::PROVIDER,
        );
        ours.framings = self.cfg.framings.clone();
        let l1 = ours.to_line();
        let l2 = greeting::new_nonce();
        let mut out = format!("{l1}\n{l2}\n").into_bytes();
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let mut claimed = Claimed::new(self.clone(), conn);
        let mut g = Greeted {
            l1,
            l2,
            unsent: Vec::new(),
            lines: Lines::new(self.cfg.max_line),
            conn,
            claimed: None,
            decided: None,
        };
        if !we_dialed {
            g.lines.buf.reserve(1024);
            let _ = sock.try_read_buf(&mut g.lines.buf);
            g.decided = match g.lines.ready_pair() {
                Ok(Some((r1, r2))) => {
                    let d = self.decide([&g.l1, &g.l2], [&r1, &r2], g.conn, false, &mut claimed);
                    // Under TLS the auth line waits for the TLS handshake.
                    if let Ok(d) = &d {
                        if !d.plan.tls_on {
                            out.extend_from_slice(d.plan.auth_line.as_bytes());
                        }
                    }
                    Some(d.map(|d| (r1, r2, d)))
                }
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            };
        }
        let written = sock.try_write(&out).unwrap_or(0);
        out.drain(..written);
        g.unsent = out;
        g.claimed = Some(claimed);
        g
    }

    async fn handshake(
        self: &Arc<Net>,
        sock: TcpStream,
        greeted: Greeted,
        we_dialed: bool,
        claimed: &mut Claimed,
    ) -> Result<(Handshaken, Arc<Peer>)> {
        let Greeted { l1, l2, mut unsent, mut lines, conn, decided, .. } = greeted;
        let remote = sock.peer_addr().ok();
        let mut stream = Link::Plain(sock);
        let decided_early = decided.is_some();
        let decided = match decided {
            // An acceptor decided when it saw the dialler's greeting.
            Some(d) => d,
            None => {
                if !unsent.is_empty() {
                    stream.write_all(&unsent).await?;
                    unsent.clear();
                }
                let r1 = lines.next(&mut stream).await?;
                tracing::trace!(conn, "greeting received");
                let r2 = lines.next(&mut stream).await?;
                self.decide([&l1, &l2], [&r1, &r2], conn, we_dialed, claimed).map(|d| (r1, r2, d))
            }
        };
        let (r1, r2, d) = match decided {
            Ok(x) => x,
            Err(e) => {
                // Refused: the peer still learns who refused it (a seed
                // dialled twice is known by the ID it gave).
                if !unsent.is_empty() {
                    let _ = stream.write_all(&unsent).await;
                }
                return Err(e);
            }
        };
        // An acceptor's auth line may have gone with its greeting already.
        let auth_queued = decided_early && !d.plan.tls_on;
        if d.plan.tls_on {
            // TLS starts after both greetings, before the auth lines.
            if !unsent.is_empty() {
                stream.write_all(&unsent).await?;
                unsent.clear();
            }
            stream = self.start_tls(stream, lines.take_rest(), d.plan.tls_client, &d.peer).await?;
        }
        // Our auth line. When theirs is in already (it came with their
        // greeting), it is checked first, and ours leaves with the link's
        // first messages: one write, one wake-up of the peer.
        if !auth_queued {
            unsent.extend_from_slice(d.plan.auth_line.as_bytes());
        }
        let ra = match lines.ready()? {
            Some(line) => line,
            None => {
                stream.write_all(&unsent).await?;
                stream.flush().await?;
                unsent.clear();
                tracing::trace!(conn, "auth line sent");
                lines.next(&mut stream).await?
            }
        };
        tracing::trace!(conn, "auth line received");
        let recv_framing = match negotiate::accept_auth(
            &self.local(),
            [&l1, &l2],
            [&r1, &r2],
            &d.peer,
            d.plan.tls_on,
            &ra,
        ) {
            Ok(f) => f,
            Err(e) => {
                // Our auth line still goes out (it would have with our
                // greeting, had theirs been in first), so that the peer
                // learns why, not only that the connection closed.
                if !unsent.is_empty() {
                    let _ = stream.write_all(&unsent).await;
                    let _ = stream.flush().await;
                }
                return Err(e);
            }
        };
        let peer = claimed.claim(&d.contender(conn))?;
        Ok((
            Handshaken {
                stream,
                leftover: lines.take_rest(),
                send_framing: d.plan.send_framing,
                recv_framing,
                peer_timeout: d.greeting.timeout(),
                aemp: d.greeting.is_aemp_ext(),
                incarnation: d.greeting.incarnation().map(str::to_owned),
                dialer: d.dialer,
                first: unsent,
                about: LinkAbout::new(remote, &ra, d.plan.tls_on, recv_framing),
            },
            peer,
        ))
    }

    /// Starts TLS on a connection past both greetings; `read_ahead` is what
    /// was read beyond them.
    async fn start_tls(
        &self,
        stream: Link,
        read_ahead: Vec<u8>,
        client: bool,
        peer: &NodeId,
    ) -> Result<Link> {
        let tls = self.tls.as_ref().ok_or_else(|| Error::Tls("no certificate".into()))?;
        let inner = Prefixed::new(read_ahead, Box::new(stream));
        let failed = |e: std::io::Error| Error::Tls(format!("handshake with {peer}: {e}"));
        // Boxed: the TLS handshake's state is large, and a plain connection
        // should not carry (and move) room for it.
        Ok(Link::Tls(if client {
            let c = tokio_rustls::TlsConnector::from(tls.client_config());
            Box::new(Box::pin(c.connect(crate::tls::server_name(), inner)).await.map_err(failed)?)
        } else {
            let a = tokio_rustls::TlsAcceptor::from(tls.server_config());
            Box::new(Box::pin(a.accept(inner)).await.map_err(failed)?)
        }))
    }

    /// A link whose writes go unacknowledged (the other direction may still
    /// flow, keeping the read timeout quiet) fails within the monitor
    /// timeout, as a silent one does: the kernel gives up on data
    /// unacknowledged for that long (Linux's `TCP_USER_TIMEOUT`).
    fn limit_unacknowledged(&self, sock: &TcpStream) {
        #[cfg(target_os = "linux")]
        {
            let limit = secs(self.cfg.monitor_timeout);
            if let Err(e) = socket2::SockRef::from(sock).set_tcp_user_timeout(Some(limit)) {
                tracing::debug!("TCP_USER_TIMEOUT not set: {e}");
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = sock;
    }

    /// This node's side of a negotiation.
    fn local(&self) -> Local<'_> {
        Local {
            me: &self.me,
            secret: self.cfg.secret.as_deref().filter(|s| !s.is_empty()),
            allow_cleartext: self.cfg.allow_cleartext,
            allow_tls_anon: self.cfg.allow_tls_anon,
            have_cert: self.tls.is_some(),
            framings: &self.cfg.framings,
        }
    }

    /// Everything the two greetings decide, before a byte more is sent:
    /// whether the connection may go on (see `Net::screen`), TLS, and our
    /// auth line.
    fn decide(
        self: &Arc<Net>,
        ours: [&str; 2],
        theirs: [&str; 2],
        conn: u64,
        we_dialed: bool,
        claimed: &mut Claimed,
    ) -> Result<Decided> {
        let local = self.local();
        let (greeting, peer) = negotiate::identify(&local, ours, theirs)?;
        let dialer = if we_dialed { self.me.clone() } else { peer.clone() };
        let d = Decided { plan: negotiate::plan(&local, ours, theirs, &greeting)?, greeting, peer, dialer };
        claimed.screen(&d.peer, &d.contender(conn))?;
        Ok(d)
    }
}

/// Who to tell of a seed connection's node: once its handshake is done, and
/// when it failed after the greeting named the node.
pub(super) type Report = (oneshot::Sender<NodeId>, oneshot::Sender<NodeId>);

/// A new connection past `Net::greet_now`.
pub(super) struct Greeted {
    /// Our greeting lines.
    l1: String,
    l2: String,
    /// What the socket did not take of ours at once.
    unsent: Vec<u8>,
    /// What the peer sent so far.
    lines: Lines,
    conn: u64,
    /// The connection's hold on its node's entry.
    claimed: Option<Claimed>,
    /// An acceptor that had the dialler's greeting: its lines and what
    /// they decided.
    decided: Option<Result<(String, String, Decided)>>,
}

/// What a connection's two greetings decided (see `Net::decide`).
struct Decided {
    greeting: Greeting,
    peer: NodeId,
    plan: Plan,
    dialer: NodeId,
}

impl Decided {
    /// The connection as a contender for its node's link.
    fn contender(&self, conn: u64) -> Contender<'_> {
        Contender {
            conn,
            dialer: &self.dialer,
            aemp: self.greeting.is_aemp_ext(),
            incarnation: self.greeting.incarnation(),
        }
    }
}

/// A connection past its handshake, about to become its node's link.
pub(super) struct Handshaken {
    pub(super) stream: Link,
    pub(super) leftover: Vec<u8>,
    pub(super) send_framing: Framing,
    pub(super) recv_framing: Framing,
    pub(super) peer_timeout: Option<f64>,
    pub(super) aemp: bool,
    pub(super) incarnation: Option<String>,
    pub(super) dialer: NodeId,
    /// Handshake bytes still to go out ahead of any message (our auth line,
    /// when it waited for the peer's to be checked).
    pub(super) first: Vec<u8>,
    /// What the link is, for its figures.
    pub(super) about: LinkAbout,
}

/// Reads handshake lines, keeping what follows them.
pub(super) struct Lines {
    buf: Vec<u8>,
    reader: LineReader,
}

impl Lines {
    pub(super) fn new(max: usize) -> Lines {
        Lines { buf: Vec::with_capacity(512), reader: LineReader::with_max_line(max) }
    }

    async fn next<S: AsyncRead + Unpin>(&mut self, s: &mut S) -> Result<String> {
        loop {
            if let Some(line) = self.ready()? {
                return Ok(line);
            }
            // Straight into the buffer: no chunk on the stack (it would
            // live in the connection's future, moved and zeroed).
            self.buf.reserve(1024);
            let n = s.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(Error::Protocol("connection closed during the handshake".into()));
            }
        }
    }

    /// The next two lines when both have arrived already.
    fn ready_pair(&mut self) -> Result<Option<(String, String)>> {
        if self.buf.iter().filter(|&&b| b == b'\n').count() < 2 {
            return Ok(None);
        }
        let first = self.ready()?;
        Ok(first.zip(self.ready()?))
    }

    /// The next line when it has arrived already.
    fn ready(&mut self) -> Result<Option<String>> {
        Ok(self.reader.next_line(&self.buf)?.map(|(line, used)| {
            self.buf.drain(..used);
            line
        }))
    }

    fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use std::time::Duration;

    use super::*;
    use crate::wire::auth::{self, AuthLine, AuthMethod};
    use crate::{NetConfig, Node};

    const SECRET: &str = "held-greeting";

    async fn node(id: &str) -> (Node, Arc<Net>) {
        let c = NetConfig { secret: Some(SECRET.into()), ..NetConfig::default() };
        let node = Node::builder().id(id).net_config(c).build().await.unwrap();
        let net = node.shared().global().unwrap().net.clone();
        (node, net)
    }

    /// A socket pair on loopback: (the dialler's end, the acceptor's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (client, server)
    }

    /// Sends a dialler's greeting and waits until the acceptor's socket
    /// holds all of it.
    async fn greet_first(client: &mut TcpStream, server: &TcpStream, id: &str) -> (String, String) {
        let l1 = format!("aemp;0;{id};hmac_blake3_256;msgpack;timeout=30");
        let l2 = greeting::new_nonce();
        let bytes = format!("{l1}\n{l2}\n");
        client.write_all(bytes.as_bytes()).await.unwrap();
        let mut peek = vec![0u8; bytes.len()];
        while server.peek(&mut peek).await.unwrap() < bytes.len() {
            tokio::task::yield_now().await;
        }
        (l1, l2)
    }

    /// The next line, `None` at the end; a line that never comes fails
    /// the test instead of hanging it.
    async fn read_line(r: &mut BufReader<TcpStream>) -> Option<String> {
        let mut s = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut s)).await;
        (n.expect("a line within 10 s").unwrap() > 0).then(|| s.trim_end().to_owned())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn both_ends_give_up_on_data_unacknowledged_for_the_monitor_timeout() {
        let (_node, net) = node("unacked").await;
        let (client, server) = pair().await;
        let _ = net.greet_now(&client, None, true);
        let _ = net.greet_now(&server, None, false);
        let want = Some(secs(net.cfg.monitor_timeout));
        for s in [&client, &server] {
            assert_eq!(socket2::SockRef::from(s).tcp_user_timeout().unwrap(), want);
        }
    }

    #[tokio::test]
    async fn an_acceptor_greeted_first_sends_its_greeting_with_its_auth_line() {
        let (_node, net) = node("held-acceptor").await;
        let (mut client, server) = pair().await;
        let (l1, l2) = greet_first(&mut client, &server, "held-dialler").await;
        let greeted = net.greet_now(&server, None, false);
        assert!(greeted.decided.is_some(), "the dialler's greeting was in");
        // Greeting and auth line are out before the connection's task runs.
        let mut r = BufReader::new(client);
        let r1 = read_line(&mut r).await.unwrap();
        let r2 = read_line(&mut r).await.unwrap();
        assert!(r1.starts_with("aemp;0;held-acceptor;"), "{r1}");
        let a = AuthLine::parse(&read_line(&mut r).await.unwrap()).unwrap();
        let m = AuthMethod::from_name(&a.method).unwrap();
        auth::verify(m, Some(SECRET), (&l1, &l2), (&r1, &r2), &a.token).unwrap();
        let hs = tokio::spawn({
            let net = net.clone();
            async move { net.establish(server, false, greeted, None, None).await.map(|_| ()) }
        });
        // Ours, and the acceptor takes the link.
        let tok = auth::token(AuthMethod::HmacBlake3, Some(SECRET), (&l1, &l2), (&r1, &r2)).unwrap();
        r.get_mut().write_all(format!("hmac_blake3_256;{tok};msgpack\n").as_bytes()).await.unwrap();
        hs.await.unwrap().unwrap();
        assert!(net.is_up(&NodeId::new("held-dialler").unwrap()));
    }

    #[tokio::test]
    async fn a_dialler_with_the_acceptors_auth_line_in_hand_checks_it_before_sending_its_own() {
        let (_node, net) = node("fast-dialler").await;
        let (client, server) = pair().await;
        let greeted = net.greet_now(&client, None, true);
        // The acceptor reads that greeting and answers with greeting and
        // auth line at once.
        let mut r = BufReader::new(server);
        let (l1, l2) = (read_line(&mut r).await.unwrap(), read_line(&mut r).await.unwrap());
        let a1 = "aemp;0;fast-acceptor;hmac_blake3_256;msgpack;timeout=30".to_owned();
        let a2 = greeting::new_nonce();
        let tok = auth::token(AuthMethod::HmacBlake3, Some(SECRET), (&a1, &a2), (&l1, &l2)).unwrap();
        r.get_mut()
            .write_all(format!("{a1}\n{a2}\nhmac_blake3_256;{tok};msgpack\n").as_bytes())
            .await
            .unwrap();
        let link = net.establish(client, true, greeted, None, None).await.unwrap();
        // The link is up, and the dialler's auth line is the first thing
        // it will write.
        assert!(net.is_up(&link.peer.id));
        assert!(link.peer.st.lock().out.starts_with(b"hmac_blake3_256;"));
        tokio::spawn(net.clone().run_link(link));
        let a = AuthLine::parse(&read_line(&mut r).await.unwrap()).unwrap();
        let m = AuthMethod::from_name(&a.method).unwrap();
        auth::verify(m, Some(SECRET), (&a1, &a2), (&l1, &l2), &a.token).unwrap();
    }

    #[tokio::test]
    async fn an_acceptor_greets_a_silent_dialler_at_once() {
        let (_node, net) = node("quick-acceptor").await;
        let (client, server) = pair().await;
        let greeted = net.greet_now(&server, None, false);
        assert!(greeted.decided.is_none() && greeted.unsent.is_empty());
        let mut r = BufReader::new(client);
        assert!(read_line(&mut r).await.unwrap().starts_with("aemp;0;quick-acceptor;"));
        greeting::check_nonce(&read_line(&mut r).await.unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_refused_dialler_still_learns_who_refused_it() {
        let (_node, net) = node("refuser").await;
        let (mut client, server) = pair().await;
        // A greeting that claims the acceptor's own ID is refused.
        greet_first(&mut client, &server, "refuser").await;
        let greeted = net.greet_now(&server, None, false);
        assert!(greeted.decided.is_some());
        let e = net.establish(server, false, greeted, None, None).await.err().unwrap();
        assert!(matches!(e, Error::SelfConnection(_)), "{e}");
        let mut r = BufReader::new(client);
        assert!(read_line(&mut r).await.unwrap().starts_with("aemp;0;refuser;"));
        greeting::check_nonce(&read_line(&mut r).await.unwrap()).unwrap();
        assert_eq!(read_line(&mut r).await, None, "closed with no auth line");
    }
}

//! A node's network settings.

use std::fmt;
use std::time::Duration;

use crate::wire::codec::Limits;
use crate::wire::greeting;

/// Network settings of a node. The defaults are those of AnyEvent::MP
/// where it had one (timeouts, intervals), and limits that keep a hostile
/// peer from exhausting the node.
#[derive(Clone)]
#[non_exhaustive]
pub struct NetConfig {
    /// Listener addresses (`ip:port`; port 0 picks a free one). None: a
    /// private node, which can talk to public nodes only.
    pub binds: Vec<String>,
    /// Seed addresses (`host:port`). A host name may resolve to several
    /// addresses (one per seed node, as a headless service's does): each is
    /// tried in turn, this node's own skipped, and the name is resolved
    /// again when all have failed.
    pub seeds: Vec<String>,
    /// The shared secret; without one (and without TLS) no connection
    /// can be authenticated.
    pub secret: Option<String>,
    /// PEM with our private key and certificate chain; enables TLS. Its
    /// certificates are also the only ones trusted for peers.
    pub cert_pem: Option<String>,
    /// Accept the `cleartext` auth method from peers (off by default).
    pub allow_cleartext: bool,
    /// Accept and send `tls_anon` (off by default).
    pub allow_tls_anon: bool,
    /// Seconds of silence after which a peer is considered dead (a node
    /// advertises `monitor_timeout - network_latency` in its greeting, and
    /// its peers time the link out after that). Data left unacknowledged
    /// this long also ends a link (on Linux).
    pub monitor_timeout: f64,
    /// Expected network latency in seconds.
    pub network_latency: f64,
    /// Seconds between connection attempts to a node.
    pub connect_interval: f64,
    /// Seconds after the first queued message before `unable to connect`.
    pub connect_timeout: f64,
    /// Seconds for the whole handshake, from connect or accept to auth.
    pub handshake_timeout: f64,
    /// Longest handshake line, in bytes.
    pub max_line: usize,
    /// Largest message, in bytes.
    pub max_message: usize,
    /// Deepest nesting of a message.
    pub max_depth: usize,
    /// Most bytes queued for one node before its connection is treated as
    /// failed (backpressure: `snd` never blocks).
    pub send_queue_limit: usize,
    /// Most connections open at once (in handshake or established).
    pub max_connections: usize,
    /// Most incoming connections from one IP address that may be in their
    /// handshake at once, so that one host's silent sockets cannot take
    /// every connection slot from the others. A new connection from an
    /// address that has this many ends the oldest of them, so that a real
    /// client behind a busy address (a NAT, a shared host) still gets in.
    pub max_handshakes_per_ip: usize,
    /// The framings this node accepts and sends, in order of preference
    /// (`msgpack`, `json`); the default offers both, msgpack first.
    pub framings: Vec<String>,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            binds: Vec::new(),
            seeds: Vec::new(),
            secret: None,
            cert_pem: None,
            allow_cleartext: false,
            allow_tls_anon: false,
            monitor_timeout: 15.0,
            network_latency: 3.0,
            connect_interval: 2.0,
            connect_timeout: 15.0,
            handshake_timeout: 10.0,
            max_line: greeting::MAX_LINE,
            max_message: 16 << 20,
            max_depth: 128,
            send_queue_limit: 64 << 20,
            max_connections: 1024,
            max_handshakes_per_ip: 64,
            framings: greeting::OUR_FRAMINGS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfig")
            .field("binds", &self.binds)
            .field("seeds", &self.seeds)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("cert_pem", &self.cert_pem.as_ref().map(|_| "<pem>"))
            .field("allow_cleartext", &self.allow_cleartext)
            .field("allow_tls_anon", &self.allow_tls_anon)
            .field("monitor_timeout", &self.monitor_timeout)
            .field("send_queue_limit", &self.send_queue_limit)
            .finish_non_exhaustive()
    }
}

impl NetConfig {
    pub(crate) fn is_active(&self) -> bool {
        !self.binds.is_empty() || !self.seeds.is_empty() || self.secret.is_some() || self.cert_pem.is_some()
    }

    /// The timeout we advertise: `max(monitor_timeout - network_latency, 1 + network_latency)`.
    pub(super) fn advertised_timeout(&self) -> u64 {
        (self.monitor_timeout - self.network_latency).max(1.0 + self.network_latency).round().max(1.0) as u64
    }

    pub(super) fn limits(&self) -> Limits {
        Limits { max_message: self.max_message, max_depth: self.max_depth }
    }
}

/// Seconds as a [`Duration`], kept within sane bounds.
pub(super) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.001, 1.0e9))
}

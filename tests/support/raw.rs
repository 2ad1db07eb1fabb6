//! A raw protocol-0 client: it speaks the handshake and the framing byte by
//! byte, so a test can behave exactly as well or as badly as it likes.

use aemp::wire::auth::{self, AuthLine, AuthMethod};
use aemp::wire::codec::{self, FrameReader, JsonReader, Limits, MsgpackReader};
use aemp::wire::greeting;
use aemp::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::PATIENCE;

/// One raw connection to a node.
pub struct Raw {
    /// The socket.
    pub sock: TcpStream,
    /// Bytes read and not used yet.
    pub buf: Vec<u8>,
    /// Our greeting and nonce lines, once sent.
    pub ours: (String, String),
    /// The node's greeting and nonce lines, once read.
    pub theirs: (String, String),
    framing: &'static str,
    reader: Option<Box<dyn FrameReader + Send>>,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raw").field("ours", &self.ours).field("theirs", &self.theirs).finish_non_exhaustive()
    }
}

impl Raw {
    /// Opens a TCP connection to `addr`.
    pub async fn connect(addr: &str) -> Raw {
        Raw::with(TcpStream::connect(addr).await.expect("connect"))
    }

    /// Opens a TCP connection to `addr` from the local address `src` (any
    /// of 127.0.0.0/8 works on loopback: another host, as the node sees it).
    pub async fn connect_from(addr: &str, src: &str) -> Raw {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.bind(format!("{src}:0").parse().expect("an ip")).expect("bind the source address");
        Raw::with(s.connect(addr.parse().expect("ip:port")).await.expect("connect"))
    }

    fn with(sock: TcpStream) -> Raw {
        Raw {
            sock,
            buf: Vec::new(),
            ours: Default::default(),
            theirs: Default::default(),
            framing: "json",
            reader: None,
        }
    }

    /// [`Raw::connect`] with an owned address (for `tokio::spawn`).
    pub async fn connect_owned(addr: String) -> Raw {
        Raw::connect(&addr).await
    }

    /// Writes raw bytes; an error (the node closed) is returned, not a panic.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sock.write_all(bytes).await
    }

    async fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(PATIENCE, self.sock.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Some(())
    }

    /// The next handshake line, or `None` when the node closes.
    pub async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.buf[..i]).trim_end_matches('\r').to_owned();
                self.buf.drain(..=i);
                return Some(line);
            }
            self.fill().await?;
        }
    }

    /// Sends a greeting for node `id` that accepts `hmac_blake3_256` and
    /// `hmac_md6_64_256` and the framing `framing`, with `extra`
    /// (`;key=value...`) appended, then a fresh nonce; reads the node's two
    /// lines. `None` when the node closes first.
    pub async fn greet(&mut self, id: &str, framing: &'static str, extra: &str) -> Option<()> {
        let l1 = format!("aemp;0;{id};hmac_blake3_256,hmac_md6_64_256;{framing};timeout=30{extra}");
        let l2 = greeting::new_nonce();
        self.send(format!("{l1}\n{l2}\n").as_bytes()).await.ok()?;
        self.ours = (l1, l2);
        self.framing = framing;
        let r1 = self.line().await?;
        let r2 = self.line().await?;
        self.theirs = (r1, r2);
        Some(())
    }

    /// Reads the node's auth line and checks it against `secret`.
    pub async fn check_their_auth(&mut self, secret: &str) -> Option<AuthLine> {
        let a = AuthLine::parse(&self.line().await?).expect("the node's auth line parses");
        let m = AuthMethod::from_name(&a.method).expect("a known method");
        let (l1, l2) = (&self.ours.0, &self.ours.1);
        let (r1, r2) = (&self.theirs.0, &self.theirs.1);
        auth::verify(m, Some(secret), (l1, l2), (r1, r2), &a.token).expect("the node's token verifies");
        Some(a)
    }

    /// The `hmac_blake3_256` auth line for `secret` (a wrong secret makes a
    /// wrong token), without line end.
    pub fn auth_line(&self, secret: &str) -> String {
        let (l1, l2) = (&self.ours.0, &self.ours.1);
        let (r1, r2) = (&self.theirs.0, &self.theirs.1);
        let tok = auth::token(AuthMethod::HmacBlake3, Some(secret), (l1, l2), (r1, r2)).expect("token");
        format!("hmac_blake3_256;{tok};{}", self.framing)
    }

    /// A complete, well-behaved handshake as node `id` with `secret`, in
    /// `framing` (`json` or `msgpack`) both ways.
    pub async fn login(addr: &str, id: &str, secret: &str, framing: &'static str) -> Raw {
        Raw::connect(addr).await.authenticate(id, secret, framing).await
    }

    /// The handshake of [`Raw::login`] on a connection opened already.
    pub async fn authenticate(self, id: &str, secret: &str, framing: &'static str) -> Raw {
        let mut raw = self;
        raw.greet(id, framing, "").await.expect("the node greets");
        raw.check_their_auth(secret).await.expect("the node authenticates");
        let line = raw.auth_line(secret);
        raw.send(format!("{line}\n").as_bytes()).await.expect("send auth line");
        raw
    }

    /// Sends one message in the connection's framing.
    pub async fn send_msg(&mut self, msg: &[Value]) -> std::io::Result<()> {
        let mut out = Vec::new();
        match self.framing {
            "msgpack" => codec::encode_msgpack(msg, &mut out),
            _ => codec::encode_json(msg, &mut out),
        }
        .expect("encodable");
        self.send(&out).await
    }

    /// The next message from the node, or `None` when it closes.
    pub async fn msg(&mut self) -> Option<Vec<Value>> {
        if self.reader.is_none() {
            self.reader = Some(match self.framing {
                "msgpack" => Box::new(MsgpackReader::new(Limits::default())),
                _ => Box::new(JsonReader::new(Limits::default())),
            });
        }
        loop {
            let r = self.reader.as_mut().expect("reader");
            if let Some((m, used)) = r.decode(&self.buf).expect("the node sends valid frames") {
                self.buf.drain(..used);
                return Some(m);
            }
            self.fill().await?;
        }
    }

    /// The next message for local port `name` (Global's and others skipped).
    pub async fn msg_to(&mut self, name: &str) -> Option<Vec<Value>> {
        loop {
            let m = self.msg().await?;
            if m.first().and_then(Value::as_str) == Some(name) {
                return Some(m);
            }
        }
    }

    /// Closes our sending side (the node reads the end of the stream).
    pub async fn hang_up(&mut self) {
        let _ = self.sock.shutdown().await;
    }

    /// Whether the node closes the connection within [`PATIENCE`] (what it
    /// still sends is read and dropped).
    pub async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        loop {
            match tokio::time::timeout(PATIENCE, self.sock.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

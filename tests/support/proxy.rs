//! A fault-injecting TCP proxy: it listens on `127.0.0.1:0`, forwards every
//! connection to a target, and on command cuts all current connections,
//! stalls forwarding, or delays it.
//!
//! A node tells its peers where it listens (Global's `addr`), and a peer
//! that learned the real address would dial it directly next time, around
//! the proxy. [`Proxy::start_masking`] makes a proxy that replaces the
//! target's address with its own in what the target sends, so that every
//! reconnection goes through the proxy again.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Ctl {
    target: String,
    /// Replace the first with the second (same length) in what the target sends.
    mask: Option<(Vec<u8>, Vec<u8>)>,
    /// Bumped by every cut; a connection ends when it changes.
    cuts: watch::Sender<u64>,
    /// While true nothing is read or written (the link stalls).
    paused: watch::Sender<bool>,
    /// Delay added before forwarding each chunk, in microseconds.
    delay_us: AtomicU64,
    /// Connections being forwarded now.
    live: AtomicUsize,
    /// Connections accepted so far.
    accepted: AtomicU64,
    /// Bytes forwarded so far (both directions).
    forwarded: AtomicU64,
}

/// The proxy; dropping it stops it and cuts its connections.
pub struct Proxy {
    addr: String,
    ctl: Arc<Ctl>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("addr", &self.addr).field("target", &self.ctl.target).finish()
    }
}

impl Proxy {
    /// Starts a proxy to `target` (`ip:port`).
    pub async fn start(target: &str) -> Proxy {
        Proxy::start_with(target, false).await
    }

    /// Starts a proxy to `target` that also writes its own address over
    /// every occurrence of `target` in the bytes coming from the target (see
    /// the module documentation).
    pub async fn start_masking(target: &str) -> Proxy {
        Proxy::start_with(target, true).await
    }

    async fn start_with(target: &str, masking: bool) -> Proxy {
        let (l, addr) = loop {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
            let addr = l.local_addr().expect("local addr").to_string();
            // The replacement must keep every length (msgpack strings).
            if !masking || addr.len() == target.len() {
                break (l, addr);
            }
        };
        let ctl = Arc::new(Ctl {
            target: target.to_owned(),
            mask: masking.then(|| (target.as_bytes().to_vec(), addr.as_bytes().to_vec())),
            cuts: watch::channel(0).0,
            paused: watch::channel(false).0,
            delay_us: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let c = ctl.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((down, _)) = l.accept().await else { continue };
                c.accepted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(forward(down, c.clone()));
            }
        });
        Proxy { addr, ctl, accept }
    }

    /// The address to dial instead of the target.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// Cuts every current connection now (both sockets are closed); returns
    /// how many there were. New connections are forwarded as before.
    pub fn cut(&self) -> usize {
        let n = self.live();
        self.ctl.cuts.send_modify(|g| *g += 1);
        n
    }

    /// Stops forwarding (nothing is read from either side, so the senders'
    /// socket buffers fill up), or resumes it.
    pub fn pause(&self, paused: bool) {
        self.ctl.paused.send_replace(paused);
    }

    /// Delays every chunk by `d` before forwarding it (order is kept).
    pub fn set_delay(&self, d: Duration) {
        self.ctl.delay_us.store(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Connections being forwarded now.
    pub fn live(&self) -> usize {
        self.ctl.live.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.ctl.accepted.load(Ordering::Relaxed)
    }

    /// Bytes forwarded so far, both directions together.
    pub fn forwarded(&self) -> u64 {
        self.ctl.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.ctl.cuts.send_modify(|g| *g += 1);
    }
}

struct Live(Arc<Ctl>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn forward(down: TcpStream, ctl: Arc<Ctl>) {
    ctl.live.fetch_add(1, Ordering::Relaxed);
    let _live = Live(ctl.clone());
    let mut cut = ctl.cuts.subscribe();
    cut.borrow_and_update();
    let up = tokio::select! {
        r = TcpStream::connect(ctl.target.as_str()) => match r {
            Ok(s) => s,
            Err(_) => return,
        },
        _ = cut.changed() => return,
    };
    let _ = (down.set_nodelay(true), up.set_nodelay(true));
    let (dr, dw) = down.into_split();
    let (ur, uw) = up.into_split();
    tokio::select! {
        _ = pump(dr, uw, &ctl, None) => {}
        _ = pump(ur, dw, &ctl, ctl.mask.as_ref()) => {}
        _ = cut.changed() => {}
    }
}

/// Replaces every `pat` in `data` with `rep` (same length); returns how
/// many bytes at the end must wait for more data because they may be the
/// start of a `pat`.
fn mask(data: &mut [u8], pat: &[u8], rep: &[u8]) -> usize {
    let mut i = 0;
    while i + pat.len() <= data.len() {
        if &data[i..i + pat.len()] == pat {
            data[i..i + pat.len()].copy_from_slice(rep);
            i += pat.len();
        } else {
            i += 1;
        }
    }
    (1..pat.len().min(data.len() + 1)).rev().find(|&k| data.ends_with(&pat[..k])).unwrap_or(0)
}

/// Forwards one direction until EOF, an error, or the task is dropped.
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    ctl: &Ctl,
    mask_with: Option<&(Vec<u8>, Vec<u8>)>,
) {
    let mut paused = ctl.paused.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes held back by the mask, waiting for what follows.
    let mut held = 0usize;
    loop {
        while *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                return;
            }
        }
        // A read in progress is abandoned when a pause begins (reading is
        // cancel-safe), so that a stalled link does not even pass on an EOF.
        let read = async {
            tokio::select! {
                r = rd.read(&mut buf[held..]) => Ok(r),
                _ = paused.wait_for(|p| *p) => Err(()),
            }
        };
        let got = if held > 0 {
            // Held bytes wait at most a millisecond for their continuation.
            match tokio::time::timeout(Duration::from_millis(1), read).await {
                Ok(Ok(r)) => Some(r),
                Ok(Err(())) => continue,
                Err(_) => None,
            }
        } else {
            match read.await {
                Ok(r) => Some(r),
                Err(()) => continue,
            }
        };
        let (n, keep) = match got {
            None => (held, 0),
            Some(Ok(0) | Err(_)) => return,
            Some(Ok(k)) => {
                let n = held + k;
                let keep = mask_with.map_or(0, |(pat, rep)| mask(&mut buf[..n], pat, rep));
                (n, keep)
            }
        };
        let n = n - keep;
        let delay = ctl.delay_us.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_micros(delay)).await;
        }
        while *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                return;
            }
        }
        if wr.write_all(&buf[..n]).await.is_err() {
            return;
        }
        ctl.forwarded.fetch_add(n as u64, Ordering::Relaxed);
        buf.copy_within(n..n + keep, 0);
        held = keep;
    }
}

//! A Prometheus endpoint for a node's figures: a small HTTP/1.1 responder
//! over a tokio listener, so that the library needs no web framework. It
//! answers `GET /metrics` (and `HEAD`), one request per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::node::Node;

/// The longest request head read; a longer one is refused.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once; connections beyond are closed at once.
const MAX_CONCURRENT: usize = 16;

impl Node {
    /// Serves this node's figures ([`NodeStats::to_prometheus`](crate::NodeStats::to_prometheus))
    /// at `http://ADDR/metrics` until the node shuts down, and returns the
    /// address it listens on (with port 0, the port picked).
    ///
    /// Nothing is served unless this is called. Whoever reaches the address
    /// reads the figures (node IDs, peers' addresses): bind it to loopback,
    /// or to an address only the monitoring system reaches.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let node = aemp::Node::builder().id("scraped").build().await?;
    /// let addr = node.serve_metrics("127.0.0.1:0").await?;
    /// let mut c = tokio::net::TcpStream::connect(addr).await?;
    /// c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    /// let mut text = String::new();
    /// c.read_to_string(&mut text).await?;
    /// assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    /// assert!(text.contains("aemp_uptime_seconds{node=\"scraped\"}"));
    /// node.shutdown().await;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when the address cannot be bound.
    pub async fn serve_metrics(&self, addr: &str) -> Result<SocketAddr> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Io(std::io::Error::new(e.kind(), format!("cannot bind {addr}: {e}"))))?;
        let local = listener.local_addr()?;
        let node = self.clone();
        self.spawn_task(async move { accept_loop(node, listener).await });
        Ok(local)
    }
}

async fn accept_loop(node: Node, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            // Out of file descriptors, say: try again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let node2 = node.clone();
        node.spawn_task(async move {
            let _slot = slot;
            if let Err(e) = serve(&node2, sock).await {
                tracing::debug!("metrics request: {e}");
            }
        });
    }
}

/// Reads one request and answers it.
async fn serve(node: &Node, mut sock: TcpStream) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut sock)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => return respond(&mut sock, "431 Request Header Fields Too Large", "", false).await,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    let (status, body, with_body) = match route(&head) {
        Route::Metrics { head_only } => ("200 OK", node.stats().await.to_prometheus(), !head_only),
        Route::NotFound => ("404 Not Found", "not found: the figures are at /metrics\n".to_owned(), true),
        Route::BadMethod => ("405 Method Not Allowed", String::new(), true),
        Route::Malformed => ("400 Bad Request", String::new(), true),
    };
    respond(&mut sock, status, &body, with_body).await
}

/// What a request asks for.
#[derive(Debug, PartialEq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    BadMethod,
    Malformed,
}

/// Decides from a request head (pure).
fn route(head: &str) -> Route {
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Route::Malformed;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Malformed;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::BadMethod,
    };
    match target.split('?').next() {
        Some("/metrics") => Route::Metrics { head_only },
        _ => Route::NotFound,
    }
}

/// Reads up to the blank line that ends a request head; `None` when it is
/// too long.
async fn read_head(sock: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let mut chunk = [0u8; 1024];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "request cut short"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(sock: &mut TcpStream, status: &str, body: &str, with_body: bool) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    if with_body {
        sock.write_all(body.as_bytes()).await?;
    }
    sock.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        assert_eq!(route("GET /metrics HTTP/1.1\r\nHost: a"), Route::Metrics { head_only: false });
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0"), Route::Metrics { head_only: false });
        assert_eq!(route("HEAD /metrics HTTP/1.1"), Route::Metrics { head_only: true });
        assert_eq!(route("GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Route::BadMethod);
        assert_eq!(route("GET /metrics"), Route::Malformed);
        assert_eq!(route("GET /metrics SPDY/3"), Route::Malformed);
        assert_eq!(route(""), Route::Malformed);
    }

    async fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn the_endpoint_serves_the_figures_and_refuses_the_rest() {
        let node = Node::builder().id("metrics-node").build().await.unwrap();
        let p = node.port_with(|_ctx, _m| {});
        node.snd(&p, crate::msg!["x"]);
        let addr = node.serve_metrics("127.0.0.1:0").await.unwrap();
        let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
        assert!(body.contains("aemp_ports{node=\"metrics-node\"} 1\n"), "{body}");
        assert!(body.contains("aemp_messages_dispatched_total{node=\"metrics-node\"} 1\n"), "{body}");
        let head_only = get(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");
        assert!(get(addr, b"GET /other HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        assert!(get(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405"));
        let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 2 * MAX_HEAD));
        assert!(get(addr, &huge).await.starts_with("HTTP/1.1 431"));
        node.shutdown().await;
        assert!(TcpStream::connect(addr).await.is_err(), "the endpoint ends with the node");
    }
}

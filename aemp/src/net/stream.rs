//! Byte-stream adapters for a connection: plain TCP or TLS behind one type
//! ([`Link`]), a write side that writes plain TCP without locks
//! ([`WriteSide`]), and a stream that first yields bytes read ahead
//! ([`Prefixed`], for TLS after the greetings).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// A byte stream: plain TCP or TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
pub(super) type BoxStream = Box<dyn Stream>;

/// The writing end of a connection.
pub(super) enum WriteSide {
    Plain(Arc<tokio::net::tcp::OwnedWriteHalf>),
    Tls(tokio::io::WriteHalf<BoxStream>),
}

impl WriteSide {
    pub(super) async fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        match self {
            WriteSide::Plain(w) => {
                while !buf.is_empty() {
                    w.writable().await?;
                    match w.try_write(buf) {
                        Ok(n) => buf = &buf[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            WriteSide::Tls(w) => {
                w.write_all(buf).await?;
                w.flush().await
            }
        }
    }

    pub(super) async fn shutdown(&mut self) {
        if let WriteSide::Tls(w) = self {
            let _ = w.shutdown().await;
        }
    }
}

/// A connection's byte stream: plain TCP (split without locks, written to
/// directly) or anything else (TLS).
pub(super) enum Link {
    Plain(TcpStream),
    Tls(BoxStream),
}

impl AsyncRead for Link {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Link::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Link {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Link::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_flush(cx),
            Link::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Link::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Link::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A stream that first yields bytes already read (for TLS after the greeting).
pub(super) struct Prefixed {
    pre: Vec<u8>,
    pos: usize,
    inner: BoxStream,
}

impl Prefixed {
    /// `inner`, after `pre`.
    pub(super) fn new(pre: Vec<u8>, inner: BoxStream) -> Prefixed {
        Prefixed { pre, pos: 0, inner }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.pre.len() {
            let n = buf.remaining().min(self.pre.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.pre[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

//! The connection types of the listener mux: what tonic serves HTTP/2 on.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio_util::compat::Compat;
use tonic::transport::server::Connected;

use super::session::SidechannelOpener;
use super::MAGIC_LEN;

/// A connection as accepted: plaintext, or after the TLS handshake.
pub enum Transport<IO> {
    Plain(IO),
    Tls(Box<tokio_rustls::server::TlsStream<IO>>),
}

/// The bytes the mux read to decide, put back in front of the connection.
pub struct Prefixed<T> {
    prefix: [u8; MAGIC_LEN],
    pos: usize,
    inner: T,
}

impl<T> Prefixed<T> {
    pub(super) fn new(prefix: [u8; MAGIC_LEN], inner: T) -> Prefixed<T> {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

/// The gRPC connection of a backchannel session: the first stream the client opened. When
/// hyper is done with it (the HTTP/2 connection ended, gracefully or not) it is dropped, and
/// that ends the session (see `session::drive`).
pub struct GrpcStream {
    stream: Compat<yamux::Stream>,
    _gone: oneshot::Sender<()>,
}

impl GrpcStream {
    pub(super) fn new(stream: Compat<yamux::Stream>, gone: oneshot::Sender<()>) -> GrpcStream {
        GrpcStream {
            stream,
            _gone: gone,
        }
    }
}

/// What the mux hands to tonic: a plain HTTP/2 connection (the first bytes put back), or the
/// gRPC stream of a backchannel session.
pub struct MuxIo<IO: Connected> {
    kind: Kind<IO>,
    info: MuxInfo<IO::ConnectInfo>,
}

enum Kind<IO> {
    Plain(Prefixed<Transport<IO>>),
    Session(GrpcStream),
}

impl<IO: Connected> MuxIo<IO> {
    pub(super) fn plain(io: Prefixed<Transport<IO>>, inner: IO::ConnectInfo) -> MuxIo<IO> {
        MuxIo {
            kind: Kind::Plain(io),
            info: MuxInfo {
                inner,
                sidechannel: None,
            },
        }
    }

    pub(super) fn session(
        stream: GrpcStream,
        inner: IO::ConnectInfo,
        opener: SidechannelOpener,
    ) -> MuxIo<IO> {
        MuxIo {
            kind: Kind::Session(stream),
            info: MuxInfo {
                inner,
                sidechannel: Some(opener),
            },
        }
    }

    /// Whether this is a backchannel session.
    pub fn is_session(&self) -> bool {
        matches!(self.kind, Kind::Session(_))
    }
}

// The connection info is never pinned (only the IO is polled).
impl<IO: Connected + Unpin> Unpin for MuxIo<IO> {}

/// The connection info tonic puts in every request's extensions: the listener's own (unix
/// peer, TCP addresses) and, for a backchannel session, how to open sidechannels on it.
/// [`super::SplitInfoLayer`] takes it apart again, so handlers and layers find the listener's
/// info and the [`SidechannelOpener`] as separate extensions.
#[derive(Clone)]
pub struct MuxInfo<C> {
    pub inner: C,
    pub sidechannel: Option<SidechannelOpener>,
}

impl<IO> Connected for MuxIo<IO>
where
    IO: Connected,
{
    type ConnectInfo = MuxInfo<IO::ConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut *self {
            Transport::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Transport::Tls(io) => Pin::new(io).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut *self {
            Transport::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Transport::Tls(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(io) => io.is_write_vectored(),
            Transport::Tls(io) => io.is_write_vectored(),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            Transport::Plain(io) => Pin::new(io).poll_flush(cx),
            Transport::Tls(io) => Pin::new(io).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            Transport::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Transport::Tls(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut *self {
            Transport::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Transport::Tls(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < MAGIC_LEN {
            let n = (MAGIC_LEN - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsyncRead for GrpcStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GrpcStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl<IO: Connected + AsyncRead + AsyncWrite + Unpin> AsyncRead for MuxIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.kind {
            Kind::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Kind::Session(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<IO: Connected + AsyncRead + AsyncWrite + Unpin> AsyncWrite for MuxIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.kind {
            Kind::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Kind::Session(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.kind {
            Kind::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Kind::Session(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match &self.kind {
            Kind::Plain(io) => io.is_write_vectored(),
            Kind::Session(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.kind {
            Kind::Plain(io) => Pin::new(io).poll_flush(cx),
            Kind::Session(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.kind {
            Kind::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Kind::Session(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

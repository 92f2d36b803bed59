//! The listener mux (Gitaly's `listenmux` with its `backchannel` handshaker), on every
//! listener: after accept — and after the TLS handshake on the TLS listener — the first 11
//! bytes of a connection are read. `backchannel` starts a yamux session
//! ([`session`]): the first stream the client opens carries the HTTP/2 connection tonic
//! serves, and the sidechannel RPCs open one more stream per call. Anything else is put back
//! in front of the connection and served as plain HTTP/2, as before.
//!
//! [`accept`] wraps a listener's stream of connections; each handshake runs in its own task
//! under a deadline, so a slow or silent client delays nobody else. A connection that sends
//! fewer than 11 bytes, or nothing in time, is closed.

mod io;
pub mod session;

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, BufWriter};
use tokio::sync::oneshot;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tonic::transport::server::Connected;
use tower::{Layer, Service};

pub use io::{GrpcStream, MuxInfo, MuxIo, Prefixed, Transport};
pub use session::SidechannelOpener;

use crate::tls::ServerTls;

/// What a Gitaly backchannel client sends first.
pub const MAGIC: &[u8; MAGIC_LEN] = b"backchannel";
pub const MAGIC_LEN: usize = 11;
/// How long TLS and the first 11 bytes may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Write buffer under a session, so a frame's header and payload leave in one write (the
/// session flushes whenever it has no more frames queued).
const SESSION_WRITE_BUFFER: usize = 128 << 10;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project_lite::pin_project! {
    /// A listener's connections after the mux's handshake (see [`accept`]).
    pub struct Accept<I, IO: Connected> {
        #[pin]
        incoming: I,
        incoming_done: bool,
        tls: Option<tokio_rustls::TlsAcceptor>,
        handshakes: FuturesUnordered<Handshake<IO>>,
    }
}

/// A handshake running in its own task; aborted if the listener is dropped first.
struct Handshake<IO: Connected>(tokio::task::JoinHandle<Option<MuxIo<IO>>>);

impl<IO: Connected> Drop for Handshake<IO> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<IO: Connected> std::future::Future for Handshake<IO> {
    type Output = Option<MuxIo<IO>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.ok().flatten())
    }
}

/// Put the listener mux in front of `incoming` (see the module docs). With `tls`, TLS is
/// terminated here.
pub fn accept<I, IO, IE>(incoming: I, tls: Option<ServerTls>) -> Accept<I, IO>
where
    I: Stream<Item = Result<IO, IE>>,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<BoxError>,
{
    Accept {
        incoming,
        incoming_done: false,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        handshakes: FuturesUnordered::new(),
    }
}

impl<I, IO, IE> Stream for Accept<I, IO>
where
    I: Stream<Item = Result<IO, IE>>,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<BoxError>,
{
    type Item = Result<MuxIo<IO>, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        while !*this.incoming_done {
            match this.incoming.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(io))) => {
                    let tls = this.tls.clone();
                    this.handshakes
                        .push(Handshake(tokio::spawn(handshake(io, tls))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => *this.incoming_done = true,
                Poll::Pending => break,
            }
        }
        loop {
            match this.handshakes.poll_next_unpin(cx) {
                Poll::Ready(Some(Some(io))) => return Poll::Ready(Some(Ok(io))),
                Poll::Ready(Some(None)) => continue, // failed handshake: connection closed
                Poll::Ready(None) if *this.incoming_done => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// TLS (if any), then the first 11 bytes decide; a backchannel session also waits for the
/// client's first stream. `None`: the connection failed or timed out and is dropped.
async fn handshake<IO>(io: IO, tls: Option<tokio_rustls::TlsAcceptor>) -> Option<MuxIo<IO>>
where
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
{
    let info = io.connect_info();
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut transport = match tls {
            Some(acceptor) => Transport::Tls(Box::new(acceptor.accept(io).await?)),
            None => Transport::Plain(io),
        };
        let mut magic = [0u8; MAGIC_LEN];
        transport.read_exact(&mut magic).await?;
        Ok::<_, std::io::Error>((transport, magic))
    })
    .await;
    let (transport, magic) = match first {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "connection closed during the handshake");
            return None;
        }
        Err(_) => {
            tracing::debug!("connection closed: nothing received within the handshake deadline");
            return None;
        }
    };
    if &magic != MAGIC {
        return Some(MuxIo::plain(Prefixed::new(magic, transport), info));
    }
    let io = BufWriter::with_capacity(SESSION_WRITE_BUFFER, transport).compat();
    let conn = yamux::Connection::new(io, session::config(), yamux::Mode::Server);
    let (gone_tx, gone_rx) = oneshot::channel();
    let (opener, first_rx) = session::spawn(conn, gone_rx);
    // The session task itself gives up after `FIRST_STREAM_TIMEOUT` (dropping `first_rx`'s
    // sender), and so does this wait when the session fails.
    let stream = first_rx.await.ok()?;
    Some(MuxIo::session(
        GrpcStream::new(stream.compat(), gone_tx),
        info,
        opener,
    ))
}

/// Splits the mux's [`MuxInfo`] in a request's extensions back into the listener's own
/// connection info and, for a backchannel session, the [`SidechannelOpener`]: layers and
/// handlers then find each by its own type, as if the mux weren't there. Put it outermost.
pub struct SplitInfoLayer<C>(PhantomData<fn() -> C>);

impl<C> SplitInfoLayer<C> {
    pub fn new() -> Self {
        SplitInfoLayer(PhantomData)
    }
}

impl<C> Default for SplitInfoLayer<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> Clone for SplitInfoLayer<C> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<S, C> Layer<S> for SplitInfoLayer<C> {
    type Service = SplitInfo<S, C>;
    fn layer(&self, inner: S) -> SplitInfo<S, C> {
        SplitInfo {
            inner,
            _info: PhantomData,
        }
    }
}

/// See [`SplitInfoLayer`].
pub struct SplitInfo<S, C> {
    inner: S,
    _info: PhantomData<fn() -> C>,
}

impl<S: Clone, C> Clone for SplitInfo<S, C> {
    fn clone(&self) -> Self {
        SplitInfo {
            inner: self.inner.clone(),
            _info: PhantomData,
        }
    }
}

impl<S, C, B> Service<http::Request<B>> for SplitInfo<S, C>
where
    S: Service<http::Request<B>>,
    C: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        if let Some(info) = req.extensions_mut().remove::<MuxInfo<C>>() {
            req.extensions_mut().insert(info.inner);
            if let Some(opener) = info.sidechannel {
                req.extensions_mut().insert(opener);
            }
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests;

//! Client connections: a server-wide cap, a first-bytes deadline and an idle timeout.
//!
//! [`Limited`] wraps any incoming stream of connections (unix, TCP, before TLS). It takes a
//! slot before it accepts: at `[connections] max` it stops accepting (new clients wait in
//! the kernel's listen backlog) until a connection closes. An accept that fails for lack of
//! resources (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) is retried after a pause instead of at
//! once: the pending connection stays in the backlog, so an immediate retry fails again and
//! the accept loop would spin.
//!
//! Each accepted connection is a [`Conn`]: it closes itself (reads end) when the client has
//! not sent its first bytes within `handshake_timeout`, or has had no call in flight for
//! `idle_timeout` (gRPC's `MAX_CONNECTION_IDLE`). Calls are counted through [`ConnInfo`],
//! which tonic puts in every request's extensions; the RPC log layer holds a
//! [`StreamGuard`] for each call.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;
use tonic::transport::server::Connected;

use crate::config::ConnectionsConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Bytes of the HTTP/2 client preface: a connection that has sent fewer is still handshaking.
const PREFACE: usize = 24;
/// Pause after an accept failed for lack of resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);
/// At most one warning per this long about the cap or failing accepts.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The connections of one server (all its listeners): the cap and the counters.
pub struct Connections {
    max: usize,
    permits: Arc<Semaphore>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    open: AtomicUsize,
    accepted: AtomicU64,
    handshake_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    accept_errors: AtomicU64,
    last_warn: Mutex<Option<Instant>>,
}

/// What [`Connections`] counted (for metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    pub max: usize,
    pub open: usize,
    pub accepted: u64,
    pub handshake_timeouts: u64,
    pub idle_timeouts: u64,
    pub accept_errors: u64,
}

impl Connections {
    pub fn new(config: &ConnectionsConfig) -> Arc<Connections> {
        let max = config.max_connections();
        let (soft, _) = crate::config::open_file_limit();
        if max as u64 >= soft {
            tracing::warn!(
                max,
                open_file_limit = soft,
                "[connections] max is not below the open-file limit: accepts will fail for lack of descriptors first"
            );
        }
        Arc::new(Connections {
            max,
            permits: Arc::new(Semaphore::new(max)),
            handshake_timeout: config.handshake_timeout,
            idle_timeout: config.idle_timeout,
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            handshake_timeouts: AtomicU64::new(0),
            idle_timeouts: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            last_warn: Mutex::new(None),
        })
    }

    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            max: self.max,
            open: self.open.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            handshake_timeouts: self.handshake_timeouts.load(Ordering::Relaxed),
            idle_timeouts: self.idle_timeouts.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }

    /// Whether a rate-limited warning may be logged now.
    fn may_warn(&self) -> bool {
        let mut last = self.last_warn.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now < t + WARN_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

pin_project_lite::pin_project! {
    /// An incoming stream of connections under the server's cap (see the module docs).
    pub struct Limited<S> {
        #[pin]
        inner: S,
        conns: Arc<Connections>,
        acquiring: Option<Pin<Box<dyn Future<Output = OwnedSemaphorePermit> + Send>>>,
        permit: Option<OwnedSemaphorePermit>,
        backoff: Option<Pin<Box<Sleep>>>,
    }
}

impl<S> Limited<S> {
    pub fn new(inner: S, conns: Arc<Connections>) -> Limited<S> {
        Limited {
            inner,
            conns,
            acquiring: None,
            permit: None,
            backoff: None,
        }
    }
}

fn out_of_resources(e: &BoxError) -> bool {
    let Some(e) = e.downcast_ref::<io::Error>() else {
        return false;
    };
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl<S, IO, IE> Stream for Limited<S>
where
    S: Stream<Item = Result<IO, IE>>,
    IE: Into<BoxError>,
{
    type Item = Result<Conn<IO>, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            if let Some(sleep) = this.backoff.as_mut() {
                std::task::ready!(sleep.as_mut().poll(cx));
                *this.backoff = None;
            }
            if this.permit.is_none() {
                if this.acquiring.is_none() {
                    match this.conns.permits.clone().try_acquire_owned() {
                        Ok(p) => *this.permit = Some(p),
                        Err(_) => {
                            if this.conns.may_warn() {
                                tracing::warn!(
                                    max = this.conns.max,
                                    "connection limit reached; new clients wait until one closes"
                                );
                            }
                            let permits = this.conns.permits.clone();
                            *this.acquiring = Some(Box::pin(async move {
                                permits.acquire_owned().await.expect("never closed")
                            }));
                        }
                    }
                }
                if let Some(fut) = this.acquiring.as_mut() {
                    let p = std::task::ready!(fut.as_mut().poll(cx));
                    *this.acquiring = None;
                    *this.permit = Some(p);
                }
            }
            match std::task::ready!(this.inner.as_mut().poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(io)) => {
                    let permit = this.permit.take().expect("taken above");
                    return Poll::Ready(Some(Ok(Conn::new(io, permit, this.conns.clone()))));
                }
                Some(Err(e)) => {
                    let e: BoxError = e.into();
                    this.conns.accept_errors.fetch_add(1, Ordering::Relaxed);
                    if !out_of_resources(&e) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    if this.conns.may_warn() {
                        tracing::warn!(error = %e, open = this.conns.open.load(Ordering::Relaxed),
                            "accept failed; pausing (raise the open-file limit or lower [connections] max)");
                    }
                    *this.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
            }
        }
    }
}

/// A connection's calls in flight and when the last one ended.
struct ConnState {
    streams: AtomicUsize,
    last_end: Mutex<Instant>,
}

/// Put in every request's extensions by tonic (through [`Connected`]).
#[derive(Clone)]
pub struct ConnInfo(Arc<ConnState>);

impl ConnInfo {
    /// Count a call on this connection until the guard is dropped.
    pub fn stream(&self) -> StreamGuard {
        self.0.streams.fetch_add(1, Ordering::SeqCst);
        StreamGuard(self.0.clone())
    }
}

/// A call in flight on a connection (see [`ConnInfo::stream`]).
pub struct StreamGuard(Arc<ConnState>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An accepted connection holding a slot of the cap; see the module docs.
pub struct Conn<IO> {
    io: IO,
    state: Arc<ConnState>,
    conns: Arc<Connections>,
    accepted: Instant,
    read: usize,
    timer: Pin<Box<Sleep>>,
    closed: bool,
    _permit: OwnedSemaphorePermit,
}

enum Due {
    Handshake,
    Idle,
    /// Calls in flight: check again later.
    Recheck,
}

impl<IO> Conn<IO> {
    fn new(io: IO, permit: OwnedSemaphorePermit, conns: Arc<Connections>) -> Conn<IO> {
        conns.open.fetch_add(1, Ordering::Relaxed);
        conns.accepted.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        Conn {
            io,
            state: Arc::new(ConnState {
                streams: AtomicUsize::new(0),
                last_end: Mutex::new(now),
            }),
            accepted: now,
            read: 0,
            timer: Box::pin(tokio::time::sleep_until(now + conns.handshake_timeout)),
            closed: false,
            conns,
            _permit: permit,
        }
    }

    fn due(&self) -> (Instant, Due) {
        if self.read < PREFACE {
            return (self.accepted + self.conns.handshake_timeout, Due::Handshake);
        }
        let idle = self.conns.idle_timeout;
        if self.state.streams.load(Ordering::SeqCst) > 0 {
            return (Instant::now() + idle, Due::Recheck);
        }
        let last = *self
            .state
            .last_end
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        (last + idle, Due::Idle)
    }
}

impl<IO> Drop for Conn<IO> {
    fn drop(&mut self) {
        self.conns.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Ok(())); // end of stream: the server closes the connection
        }
        let before = buf.filled().len();
        if let Poll::Ready(r) = Pin::new(&mut this.io).poll_read(cx, buf) {
            this.read += buf.filled().len() - before;
            return Poll::Ready(r);
        }
        // Nothing to read now: is the connection past a deadline?
        loop {
            let (at, due) = this.due();
            if this.timer.deadline() != at {
                this.timer.as_mut().reset(at);
            }
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Fired at an unchanged deadline: due (a moved deadline was re-armed above).
            let counter = match due {
                Due::Recheck => continue,
                Due::Handshake => &this.conns.handshake_timeouts,
                Due::Idle => &this.conns.idle_timeouts,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                reason = if matches!(due, Due::Handshake) {
                    "handshake"
                } else {
                    "idle"
                },
                "closing connection"
            );
            this.closed = true;
            return Poll::Ready(Ok(()));
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO> Connected for Conn<IO> {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo(self.state.clone())
    }
}

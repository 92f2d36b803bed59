//! From an address list to one [`Transport`]: a channel per address, balanced by least
//! outstanding requests when there are several, and the v2 auth token added to every call.
//!
//! `"unix:/a.sock,tls://gitaly-2:9999"` names two servers of the same storages. Each call goes
//! to the server with the fewest calls in flight (a call counts until its response body
//! ends); ties rotate. A server whose connection fails is passed over for a second, and
//! retried lazily after that. Retrying the call itself is the client's business
//! ([`crate::Client`] retries read-only calls), not the transport's.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http::header::{HeaderValue, AUTHORIZATION};
use tonic::body::Body;
use tonic::transport::Channel;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::address::{self, Error, Options};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Anything that carries gRPC requests: a tonic channel or an in-process service.
pub type Transport = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// A transport failure. A concrete type rather than a bare `Box<dyn Error>`: with the boxed
/// trait object as the service's error, futures of the generated clients are not `Send` for
/// `tokio::spawn` (rustc cannot prove `Box<dyn Error + 'static>: Into<Box<dyn Error + '_>>`
/// for every lifetime inside the async block). tonic still finds the real cause (a `Status`,
/// a connect error → `UNAVAILABLE`) through [`std::error::Error::source`].
#[derive(Debug)]
pub struct TransportError(pub BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl TransportError {
    pub fn new(e: impl Into<BoxError>) -> TransportError {
        TransportError(e.into())
    }
}

/// How long a server whose connection failed is passed over.
const EJECT: Duration = Duration::from_secs(1);

/// Connect to every address of a comma-separated list. The first address that connects is
/// enough; the others that fail now are connected lazily (a server may be restarting).
pub async fn connect(addresses: &str, opts: &Options) -> Result<Transport, Error> {
    let list = parse_list(addresses)?;
    let transport = if list.len() == 1 {
        box_channel(address::connect(list[0], opts).await?)
    } else {
        let attempts = futures::future::join_all(
            list.iter()
                .map(|a| async move { (a, address::connect(a, opts).await) }),
        )
        .await;
        let mut backends = Vec::new();
        let mut first_err = None;
        let mut failed = 0;
        for (a, r) in attempts {
            let channel = match r {
                Ok(c) => c,
                Err(e) => {
                    failed += 1;
                    first_err.get_or_insert(e);
                    address::connect_lazy(a, opts)?
                }
            };
            backends.push(Backend {
                channel,
                outstanding: Arc::new(AtomicUsize::new(0)),
                ejected_until: AtomicU64::new(0),
            });
        }
        if let (Some(e), true) = (first_err, failed == backends.len()) {
            return Err(e);
        }
        BoxCloneSyncService::new(Balanced {
            backends: backends.into(),
            next: Arc::new(AtomicUsize::new(0)),
            epoch: Instant::now(),
        })
    };
    Ok(tokened(transport, opts))
}

/// [`connect`] without connecting: every server is connected on first use (and
/// reconnected after failures). Bad addresses still fail here.
pub fn connect_lazy(addresses: &str, opts: &Options) -> Result<Transport, Error> {
    let list = parse_list(addresses)?;
    let mut backends = Vec::new();
    for a in &list {
        backends.push(Backend {
            channel: address::connect_lazy(a, opts)?,
            outstanding: Arc::new(AtomicUsize::new(0)),
            ejected_until: AtomicU64::new(0),
        });
    }
    let transport = if backends.len() == 1 {
        box_channel(backends.remove(0).channel)
    } else {
        BoxCloneSyncService::new(Balanced {
            backends: backends.into(),
            next: Arc::new(AtomicUsize::new(0)),
            epoch: Instant::now(),
        })
    };
    Ok(tokened(transport, opts))
}

fn parse_list(addresses: &str) -> Result<Vec<&str>, Error> {
    let list: Vec<&str> = addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if list.is_empty() {
        return Err(Error::InvalidAddress(addresses.to_string()));
    }
    for a in &list {
        address::Address::parse(a)?;
    }
    Ok(list)
}

fn tokened(transport: Transport, opts: &Options) -> Transport {
    match &opts.token {
        Some(secret) if !secret.is_empty() => with_token(transport, secret.as_bytes().into()),
        _ => transport,
    }
}

fn box_channel(channel: Channel) -> Transport {
    BoxCloneSyncService::new(channel.map_err(channel_error))
}

/// A channel's failure to carry a call. A connection that closed before the call got an
/// answer (the server died or restarted) is `UNAVAILABLE`, like one that can't be opened,
/// so read-only calls are retried; tonic would say `CANCELLED` (or `UNKNOWN` when the write
/// to the dead socket failed first: a broken pipe or a reset), which nothing retries.
fn channel_error(e: tonic::transport::Error) -> TransportError {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        let closed = s
            .downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_canceled() || h.is_closed() || h.is_incomplete_message())
            || s.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
                )
            });
        if closed {
            return TransportError::new(tonic::Status::unavailable(format!(
                "connection closed: {e}"
            )));
        }
        src = s.source();
    }
    TransportError::new(e)
}

/// Add `authorization: Bearer v2.…` (fresh timestamp) to every request.
fn with_token(inner: Transport, secret: Arc<[u8]>) -> Transport {
    BoxCloneSyncService::new(inner.map_request(move |mut req: http::Request<Body>| {
        let value = gitrpc_proto::auth::bearer(&secret, SystemTime::now());
        let value = HeaderValue::from_str(&value).expect("token header is ASCII");
        req.headers_mut().insert(AUTHORIZATION, value);
        req
    }))
}

struct Backend {
    channel: Channel,
    outstanding: Arc<AtomicUsize>,
    /// Milliseconds since `Balanced::epoch` until which this backend is passed over.
    ejected_until: AtomicU64,
}

/// Least-outstanding-requests over several channels.
#[derive(Clone)]
struct Balanced {
    backends: Arc<[Backend]>,
    next: Arc<AtomicUsize>,
    epoch: Instant,
}

impl Balanced {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The backend with the fewest calls in flight among those not ejected (all, if every
    /// one is), scanning from a rotating start so ties spread.
    fn pick(&self) -> usize {
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = self.now_ms();
        let order = (0..n).map(|i| (start + i) % n);
        let healthy = order
            .clone()
            .filter(|&i| self.backends[i].ejected_until.load(Ordering::Relaxed) <= now);
        let least = |it: &mut dyn Iterator<Item = usize>| {
            it.min_by_key(|&i| self.backends[i].outstanding.load(Ordering::Relaxed))
        };
        least(&mut healthy.into_iter())
            .or_else(|| least(&mut order.into_iter()))
            .expect("at least one backend")
    }
}

impl Service<http::Request<Body>> for Balanced {
    type Response = http::Response<Body>;
    type Error = TransportError;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, TransportError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        // Readiness is per backend; the chosen one is awaited in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let i = self.pick();
        let this = self.clone();
        let b = &self.backends[i];
        let mut channel = b.channel.clone();
        let guard = Outstanding::new(b.outstanding.clone());
        Box::pin(async move {
            let result = async {
                channel.ready().await?;
                channel.call(req).await
            }
            .await;
            match result {
                Ok(resp) => Ok(resp.map(|body| {
                    Body::new(Counted {
                        inner: body,
                        _guard: guard,
                    })
                })),
                Err(e) => {
                    let until = this.now_ms() + EJECT.as_millis() as u64;
                    this.backends[i]
                        .ejected_until
                        .store(until, Ordering::Relaxed);
                    Err(channel_error(e))
                }
            }
        })
    }
}

/// One call in flight on a backend, until dropped.
struct Outstanding(Arc<AtomicUsize>);

impl Outstanding {
    fn new(counter: Arc<AtomicUsize>) -> Outstanding {
        counter.fetch_add(1, Ordering::Relaxed);
        Outstanding(counter)
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its call counted as outstanding until it ends or is dropped.
struct Counted {
    inner: Body,
    _guard: Outstanding,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

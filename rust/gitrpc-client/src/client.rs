//! [`Client`]: one handle for calling a gitrpc (or Gitaly) server, over sockets or
//! in-process, with a default deadline, and retries of read-only calls that were refused
//! (`RESOURCE_EXHAUSTED`) or could not reach a server (`UNAVAILABLE`). Adapters (C, Ruby) wrap these calls and only convert
//! types; what an answer *means* (e.g. "unknown revision → `None`") is decided here.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::client::Grpc;
use tonic::{Request, Status};
use tower::util::BoxCloneSyncService;
use tower::ServiceExt;

use crate::address::{self, Options};
use crate::gitaly::blob_service_client::BlobServiceClient;
use crate::gitaly::commit_service_client::CommitServiceClient;
use crate::gitaly::diff_service_client::DiffServiceClient;
use crate::gitaly::ref_service_client::RefServiceClient;
use crate::gitaly::repository_service_client::RepositoryServiceClient;
use crate::gitaly::*;
use crate::raw::{method_path, RawCodec};
use call::rpc;

mod call;
mod replication;
mod typed;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use crate::transport::Transport;

// The largest message we send or accept (blobs are streamed in smaller chunks).
use gitrpc_proto::MAX_MESSAGE;

// Typed calls of the reads behind a forge's pages, one file per area (`typed.rs` has the
// first ones).
mod blobs;
mod commits;
pub mod details;
mod diffs;
pub mod operations;
mod refs;
mod repository;

pub use commits::{CommitSignature, FindCommitsOptions};
pub use diffs::{CommitDiffOptions, Diff};
pub use repository::ArchiveOptions;

/// A cheap-to-clone client; clones share the transport, the default deadline and the
/// retry budget.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    /// Default deadline in milliseconds; 0 means none.
    timeout_ms: Arc<AtomicU64>,
    /// Retries of a read-only call after `UNAVAILABLE`/`RESOURCE_EXHAUSTED`.
    retries: Arc<AtomicU32>,
}

/// First retry waits about this long; each next one twice as long, up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(40);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A blob's content, possibly truncated to the requested limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub oid: String,
    /// The full size of the blob, even when `data` was truncated.
    pub size: i64,
    pub data: Vec<u8>,
}

/// A tree entry resolved from a revision and a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// `blob`, `tree` or `commit` (a submodule).
    pub kind: &'static str,
    pub oid: String,
    pub mode: i32,
    pub size: i64,
    /// Blob content (empty for trees).
    pub data: Vec<u8>,
}

/// A `Repository` message for a storage and a relative path.
pub fn repository(storage: &str, relative_path: &str) -> Repository {
    Repository {
        storage_name: storage.to_string(),
        relative_path: relative_path.to_string(),
        ..Default::default()
    }
}

impl Client {
    /// Connect to `unix:/path`, `tcp://host:port`, `tls://host:port` or `host:port`, or to a
    /// comma-separated list of them (servers of the same storages; calls go to the one with
    /// the fewest in flight). Eager: a bad address fails here, and so does a dead one unless
    /// another in the list answers. `opts.timeout` becomes the default deadline,
    /// `opts.retries` the retry budget, `opts.token` is sent with every call.
    ///
    /// With `opts.storages` (see [`crate::routing`]), each call goes to the servers of its
    /// repository's storage instead, and `address` (may be empty) serves only the calls
    /// that name no repository.
    pub async fn connect(address: &str, opts: &Options) -> Result<Client, address::Error> {
        if !opts.storages.is_empty() {
            return Client::builder(opts)
                .default_address(address)
                .connect()
                .await;
        }
        let transport = crate::transport::connect(
            address,
            &Options {
                timeout: None,
                ..opts.clone()
            },
        )
        .await?;
        let client = Client::new(transport, opts.timeout);
        client.set_retries(opts.retries);
        Ok(client)
    }

    /// A client over any service that speaks gRPC over HTTP requests, e.g. a server's
    /// in-process dispatch (`gitrpc_server::Serving::in_process`).
    pub fn from_service<S, E>(service: S, timeout: Option<Duration>) -> Client
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = E>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        E: Into<BoxError> + 'static,
    {
        Client::new(
            BoxCloneSyncService::new(service.map_err(crate::transport::TransportError::new)),
            timeout,
        )
    }

    pub(crate) fn new(transport: Transport, timeout: Option<Duration>) -> Client {
        let c = Client {
            transport,
            timeout_ms: Arc::new(AtomicU64::new(0)),
            retries: Arc::new(AtomicU32::new(Options::default().retries)),
        };
        c.set_timeout(timeout);
        c
    }

    /// Default deadline for every call (`None`: wait forever).
    pub fn timeout(&self) -> Option<Duration> {
        match self.timeout_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Change the default deadline; affects this client and its clones.
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        let ms = timeout.map_or(0, |t| (t.as_millis() as u64).max(1));
        self.timeout_ms.store(ms, Ordering::Relaxed);
    }

    /// How many times a read-only call is retried (see [`Options::retries`]).
    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Change the retry budget; affects this client and its clones.
    pub fn set_retries(&self, retries: u32) {
        self.retries.store(retries, Ordering::Relaxed);
    }

    /// The underlying transport, for the generated clients of any service.
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    pub fn repository_service(&self) -> RepositoryServiceClient<Transport> {
        RepositoryServiceClient::new(self.transport())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub fn ref_service(&self) -> RefServiceClient<Transport> {
        RefServiceClient::new(self.transport())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub fn commit_service(&self) -> CommitServiceClient<Transport> {
        CommitServiceClient::new(self.transport())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub fn diff_service(&self) -> DiffServiceClient<Transport> {
        DiffServiceClient::new(self.transport())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub fn blob_service(&self) -> BlobServiceClient<Transport> {
        BlobServiceClient::new(self.transport())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// When a call starting now must be over, per the default deadline.
    fn deadline(&self) -> Option<Instant> {
        self.timeout().map(|t| Instant::now() + t)
    }

    /// A request carrying what is left until `deadline` as `grpc-timeout`, so the server
    /// enforces it too.
    fn request<T>(msg: T, deadline: Option<Instant>) -> Request<T> {
        let mut req = Request::new(msg);
        if let Some(d) = deadline {
            req.set_timeout(
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            );
        }
        req
    }

    /// Run `call` under the deadline: past it, the call is dropped (cancelling it on the
    /// server) and `DEADLINE_EXCEEDED` returned.
    async fn under_deadline<T>(
        deadline: Option<Instant>,
        call: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        match deadline {
            None => call.await,
            Some(d) => tokio::time::timeout_at(d, call)
                .await
                .unwrap_or_else(|_| Err(deadline_exceeded()))
                .map_err(|e| past_deadline(e, Some(d))),
        }
    }

    /// Make the call `path` with `msg`, under the default deadline; if `path` is read-only
    /// and the answer is `UNAVAILABLE` or `RESOURCE_EXHAUSTED`, try again (up to the retry
    /// budget) after an exponential back-off with jitter, as long as the deadline allows.
    async fn attempt<T, R, F, Fut>(
        &self,
        path: &str,
        deadline: Option<Instant>,
        msg: T,
        mut call: F,
    ) -> Result<R, Status>
    where
        T: Clone,
        F: FnMut(Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<R, Status>>,
    {
        let budget = if gitrpc_proto::methods::is_read_only(path) {
            self.retries()
        } else {
            0
        };
        let result = Self::under_deadline(deadline, async move {
            let mut tries = 0;
            loop {
                match call(Self::request(msg.clone(), deadline)).await {
                    Err(e) if tries < budget && retriable(e.code()) => {
                        let pause = backoff(tries);
                        if deadline.is_some_and(|d| Instant::now() + pause >= d) {
                            return Err(e);
                        }
                        tokio::time::sleep(pause).await;
                        tries += 1;
                    }
                    other => return other,
                }
            }
        })
        .await;
        result.map_err(described)
    }

    async fn unary<T, R, F, Fut>(&self, path: &str, msg: T, mut call: F) -> Result<R, Status>
    where
        T: Clone,
        F: FnMut(Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, Status>>,
    {
        self.attempt(path, self.deadline(), msg, |req| {
            let fut = call(req);
            async move { Ok(fut.await?.into_inner()) }
        })
        .await
    }

    /// Collect a server stream under the deadline (a failure midway is retried from the
    /// start, for read-only calls, like a unary one).
    async fn collect<T, R, F, Fut>(&self, path: &str, msg: T, mut call: F) -> Result<Vec<R>, Status>
    where
        T: Clone,
        F: FnMut(Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<tonic::Streaming<R>>, Status>>,
    {
        self.attempt(path, self.deadline(), msg, |req| {
            let fut = call(req);
            async move {
                let mut stream = fut.await?.into_inner();
                let mut out = Vec::new();
                while let Some(m) = stream.message().await? {
                    out.push(m);
                }
                Ok(out)
            }
        })
        .await
    }

    // ---- raw calls -------------------------------------------------------------------

    /// Call a unary method by name with an encoded request; returns the encoded response.
    pub async fn call_unary(&self, method: &str, request: Vec<u8>) -> Result<Vec<u8>, Status> {
        let path = method_path(method)?;
        let name = path.as_str().to_string();
        let grpc = Grpc::new(self.transport()).max_decoding_message_size(MAX_MESSAGE);
        let call = rpc((grpc, path), |(mut grpc, path), req| async move {
            ready(&mut grpc).await?.unary(req, path, RawCodec).await
        });
        self.unary(&name, request, call).await
    }

    /// Call a server-streaming method by name; yields each encoded response message. The
    /// deadline covers the whole stream.
    pub async fn call_server_streaming(
        &self,
        method: &str,
        request: Vec<u8>,
    ) -> Result<impl Stream<Item = Result<Vec<u8>, Status>> + Send + 'static, Status> {
        let path = method_path(method)?;
        let name = path.as_str().to_string();
        let grpc = Grpc::new(self.transport()).max_decoding_message_size(MAX_MESSAGE);
        // A refusal arrives before the first message, so opening the stream is what's retried.
        let call = rpc((grpc, path), |(mut grpc, path), req| async move {
            let grpc = ready(&mut grpc).await?;
            grpc.server_streaming(req, path, RawCodec).await
        });
        self.stream(&name, request, call).await
    }
}

/// `grpc` once its transport can take a call (a transport that can't is `UNAVAILABLE`).
async fn ready(grpc: &mut Grpc<Transport>) -> Result<&mut Grpc<Transport>, Status> {
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("transport: {e}")))?;
    Ok(grpc)
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}

/// tonic's channel enforces `grpc-timeout` itself and reports it as `CANCELLED` ("Timeout
/// expired"); past our deadline, that is a `DEADLINE_EXCEEDED`.
fn past_deadline(e: Status, deadline: Option<Instant>) -> Status {
    match deadline {
        Some(d) if e.code() == tonic::Code::Cancelled && Instant::now() >= d => deadline_exceeded(),
        _ => e,
    }
}

/// End `stream` with `DEADLINE_EXCEEDED` if it is still going at `deadline`.
fn with_deadline<T: Send + 'static>(
    stream: impl Stream<Item = Result<T, Status>> + Send + Unpin + 'static,
    deadline: Option<Instant>,
) -> impl Stream<Item = Result<T, Status>> + Send + 'static {
    futures::stream::unfold(Some(stream), move |state| async move {
        let mut s = state?;
        let next = match deadline {
            None => s.next().await,
            Some(d) => match tokio::time::timeout_at(d, s.next()).await {
                Ok(n) => n,
                Err(_) => return Some((Err(deadline_exceeded()), None)),
            },
        };
        match next {
            Some(Err(e)) => Some((Err(described(past_deadline(e, deadline))), None)),
            Some(Ok(v)) => Some((Ok(v), Some(s))),
            None => None,
        }
    })
}

/// `s`, with a message if the server sent none (tonic's router, for one, answers unknown
/// methods without one): the code's description, so every caller has something to print.
pub fn described(s: Status) -> Status {
    if !s.message().is_empty() {
        return s;
    }
    let message = format!(
        "{} (the server sent no message)",
        s.code().description().to_lowercase()
    );
    Status::with_details_and_metadata(
        s.code(),
        message,
        bytes::Bytes::copy_from_slice(s.details()),
        s.metadata().clone(),
    )
}

/// Worth trying again: the server refused for now, or could not be reached.
fn retriable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted
    )
}

/// The pause before retry `n` (0-based): exponential, capped, with "equal jitter" (half
/// fixed, half random) so that clients refused together don't come back together.
fn backoff(n: u32) -> Duration {
    let cap = BACKOFF_BASE
        .saturating_mul(1u32 << n.min(16))
        .min(BACKOFF_MAX);
    let half = cap / 2;
    half + half.mul_f64(jitter())
}

/// A number in [0, 1) from a per-process xorshift generator (no need for a crypto RNG).
fn jitter() -> f64 {
    use std::sync::atomic::AtomicU64;
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id())
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for n in 0..8 {
            let cap = BACKOFF_BASE.saturating_mul(1 << n).min(BACKOFF_MAX);
            let samples: Vec<Duration> = (0..50).map(|_| backoff(n)).collect();
            assert!(samples.iter().all(|d| *d >= cap / 2 && *d <= cap), "{n}");
            assert!(samples.iter().any(|d| *d != samples[0]), "jitter at {n}");
        }
        assert!(backoff(100) <= BACKOFF_MAX);
    }

    #[test]
    fn every_status_has_a_message() {
        let s = described(Status::unimplemented(""));
        assert_eq!(s.code(), tonic::Code::Unimplemented);
        assert_eq!(
            s.message(),
            "operation is not implemented or not supported (the server sent no message)"
        );
        assert_eq!(described(Status::not_found("x")).message(), "x");
    }

    #[test]
    fn retries_only_refusals_and_unreachable() {
        assert!(retriable(tonic::Code::Unavailable));
        assert!(retriable(tonic::Code::ResourceExhausted));
        for c in [
            tonic::Code::NotFound,
            tonic::Code::DeadlineExceeded,
            tonic::Code::Cancelled,
            tonic::Code::Internal,
            tonic::Code::PermissionDenied,
        ] {
            assert!(!retriable(c));
        }
    }
}

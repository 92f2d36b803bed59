//! [`Client`]: one handle for calling a gitrpc (or Gitaly) server, over a socket or
//! in-process, with a default deadline. Adapters (C, Ruby) wrap these calls and only convert
//! types; what an answer *means* (e.g. "unknown revision → `None`") is decided here.

use std::sync::atomic::{AtomicU64, Ordering};
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
use crate::gitaly::ref_service_client::RefServiceClient;
use crate::gitaly::repository_service_client::RepositoryServiceClient;
use crate::gitaly::*;
use crate::raw::{method_path, RawCodec};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Anything that carries gRPC requests: a tonic channel or an in-process service.
pub type Transport = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>;

/// The largest message we accept (blobs are streamed in smaller chunks).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A cheap-to-clone client; clones share the transport and the default deadline.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    /// Default deadline in milliseconds; 0 means none.
    timeout_ms: Arc<AtomicU64>,
}

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
    /// Connect to `unix:/path`, `tcp://host:port` or `host:port` (eagerly: a bad or dead
    /// address fails here). `opts.timeout` becomes the default deadline.
    pub async fn connect(address: &str, opts: &Options) -> Result<Client, address::Error> {
        let channel = address::connect(
            address,
            &Options {
                timeout: None,
                ..*opts
            },
        )
        .await?;
        let transport = BoxCloneSyncService::new(channel.map_err(BoxError::from));
        Ok(Client::new(transport, opts.timeout))
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
            BoxCloneSyncService::new(service.map_err(Into::into)),
            timeout,
        )
    }

    fn new(transport: Transport, timeout: Option<Duration>) -> Client {
        let c = Client {
            transport,
            timeout_ms: Arc::new(AtomicU64::new(0)),
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

    pub fn blob_service(&self) -> BlobServiceClient<Transport> {
        BlobServiceClient::new(self.transport())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// A request carrying the default deadline (as `grpc-timeout`, so the server enforces it
    /// too), and the instant it expires.
    fn request<T>(&self, msg: T) -> (Request<T>, Option<Instant>) {
        let mut req = Request::new(msg);
        let timeout = self.timeout();
        if let Some(t) = timeout {
            req.set_timeout(t);
        }
        (req, timeout.map(|t| Instant::now() + t))
    }

    /// Run `call` under the deadline: past it, the call is dropped (cancelling it on the
    /// server) and `DEADLINE_EXCEEDED` returned.
    async fn deadline<T>(
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

    async fn unary<T, R, F, Fut>(&self, msg: T, call: F) -> Result<R, Status>
    where
        F: FnOnce(Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let (req, deadline) = self.request(msg);
        Self::deadline(deadline, async move { Ok(call(req).await?.into_inner()) }).await
    }

    /// Collect a server stream under the deadline.
    async fn collect<T, R, F, Fut>(&self, msg: T, call: F) -> Result<Vec<R>, Status>
    where
        F: FnOnce(Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<tonic::Streaming<R>>, Status>>,
    {
        let (req, deadline) = self.request(msg);
        Self::deadline(deadline, async move {
            let mut stream = call(req).await?.into_inner();
            let mut out = Vec::new();
            while let Some(m) = stream.message().await? {
                out.push(m);
            }
            Ok(out)
        })
        .await
    }

    // ---- raw calls -------------------------------------------------------------------

    /// Call a unary method by name with an encoded request; returns the encoded response.
    pub async fn call_unary(&self, method: &str, request: Vec<u8>) -> Result<Vec<u8>, Status> {
        let path = method_path(method)?;
        let mut grpc = Grpc::new(self.transport()).max_decoding_message_size(MAX_MESSAGE);
        self.unary(request, |req| async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("transport: {e}")))?;
            grpc.unary(req, path, RawCodec).await
        })
        .await
    }

    /// Call a server-streaming method by name; yields each encoded response message. The
    /// deadline covers the whole stream.
    pub async fn call_server_streaming(
        &self,
        method: &str,
        request: Vec<u8>,
    ) -> Result<impl Stream<Item = Result<Vec<u8>, Status>> + Send + 'static, Status> {
        let path = method_path(method)?;
        let mut grpc = Grpc::new(self.transport()).max_decoding_message_size(MAX_MESSAGE);
        let (req, deadline) = self.request(request);
        let stream = Self::deadline(deadline, async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("transport: {e}")))?;
            Ok(grpc
                .server_streaming(req, path, RawCodec)
                .await?
                .into_inner())
        })
        .await?;
        Ok(with_deadline(stream, deadline))
    }

    // ---- typed calls -----------------------------------------------------------------

    pub async fn repository_exists(&self, repo: &Repository) -> Result<bool, Status> {
        let mut c = self.repository_service();
        let msg = RepositoryExistsRequest {
            repository: Some(repo.clone()),
        };
        Ok(self
            .unary(msg, |r| async move { c.repository_exists(r).await })
            .await?
            .exists)
    }

    /// Create an empty repository (`default_branch` like `main`; empty: git's default).
    pub async fn create_repository(
        &self,
        repo: &Repository,
        default_branch: &str,
    ) -> Result<(), Status> {
        let mut c = self.repository_service();
        let msg = CreateRepositoryRequest {
            repository: Some(repo.clone()),
            default_branch: default_branch.as_bytes().to_vec(),
            ..Default::default()
        };
        self.unary(msg, |r| async move { c.create_repository(r).await })
            .await
            .map(|_| ())
    }

    pub async fn remove_repository(&self, repo: &Repository) -> Result<(), Status> {
        let mut c = self.repository_service();
        let msg = RemoveRepositoryRequest {
            repository: Some(repo.clone()),
        };
        self.unary(msg, |r| async move { c.remove_repository(r).await })
            .await
            .map(|_| ())
    }

    /// Does `name` (which must start with `refs/`) exist?
    pub async fn ref_exists(&self, repo: &Repository, name: &str) -> Result<bool, Status> {
        let mut c = self.ref_service();
        let msg = RefExistsRequest {
            repository: Some(repo.clone()),
            r#ref: name.as_bytes().to_vec(),
        };
        Ok(self
            .unary(msg, |r| async move { c.ref_exists(r).await })
            .await?
            .value)
    }

    /// The default branch as a full ref name (`refs/heads/main`); empty if there is none.
    pub async fn find_default_branch_name(&self, repo: &Repository) -> Result<Vec<u8>, Status> {
        let mut c = self.ref_service();
        let msg = FindDefaultBranchNameRequest {
            repository: Some(repo.clone()),
            ..Default::default()
        };
        Ok(self
            .unary(msg, |r| async move { c.find_default_branch_name(r).await })
            .await?
            .name)
    }

    /// Local branches with their target commits, in ref-name order.
    pub async fn branches(&self, repo: &Repository) -> Result<Vec<Branch>, Status> {
        let mut c = self.ref_service();
        let msg = FindLocalBranchesRequest {
            repository: Some(repo.clone()),
            ..Default::default()
        };
        let pages = self
            .collect(msg, |r| async move { c.find_local_branches(r).await })
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.local_branches).collect())
    }

    /// The commit `revision` resolves to; `None` if it resolves to nothing.
    pub async fn find_commit(
        &self,
        repo: &Repository,
        revision: &[u8],
    ) -> Result<Option<GitCommit>, Status> {
        let mut c = self.commit_service();
        let msg = FindCommitRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
            ..Default::default()
        };
        Ok(self
            .unary(msg, |r| async move { c.find_commit(r).await })
            .await?
            .commit)
    }

    pub async fn commit_is_ancestor(
        &self,
        repo: &Repository,
        ancestor: &str,
        child: &str,
    ) -> Result<bool, Status> {
        let mut c = self.commit_service();
        let msg = CommitIsAncestorRequest {
            repository: Some(repo.clone()),
            ancestor_id: ancestor.to_string(),
            child_id: child.to_string(),
        };
        Ok(self
            .unary(msg, |r| async move { c.commit_is_ancestor(r).await })
            .await?
            .value)
    }

    /// Commits reachable from `revisions` (git rev-list syntax, e.g. `^main`), streamed in
    /// pages as the server produces them. The deadline covers the whole stream.
    pub async fn list_commits(
        &self,
        repo: &Repository,
        revisions: Vec<String>,
    ) -> Result<impl Stream<Item = Result<GitCommit, Status>> + Send + 'static, Status> {
        let mut c = self.commit_service();
        let msg = ListCommitsRequest {
            repository: Some(repo.clone()),
            revisions,
            ..Default::default()
        };
        let (req, deadline) = self.request(msg);
        let pages = Self::deadline(deadline, async move {
            Ok(c.list_commits(req).await?.into_inner())
        })
        .await?;
        Ok(with_deadline(pages, deadline).flat_map(|page| {
            let items: Vec<Result<GitCommit, Status>> = match page {
                Ok(p) => p.commits.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(items)
        }))
    }

    /// A blob by object id, truncated to `limit` bytes (negative: whole blob); `None` if
    /// there is no such blob.
    pub async fn get_blob(
        &self,
        repo: &Repository,
        oid: &str,
        limit: i64,
    ) -> Result<Option<Blob>, Status> {
        let mut c = self.blob_service();
        let msg = GetBlobRequest {
            repository: Some(repo.clone()),
            oid: oid.to_string(),
            limit,
        };
        let parts = self
            .collect(msg, |r| async move { c.get_blob(r).await })
            .await?;
        let mut blob: Option<Blob> = None;
        for p in parts {
            match &mut blob {
                None if p.oid.is_empty() => return Ok(None),
                None => {
                    blob = Some(Blob {
                        oid: p.oid,
                        size: p.size,
                        data: p.data,
                    })
                }
                Some(b) => b.data.extend_from_slice(&p.data),
            }
        }
        Ok(blob)
    }

    /// The entry at `path` in `revision`'s tree; `None` if the revision or path is missing.
    pub async fn tree_entry(
        &self,
        repo: &Repository,
        revision: &[u8],
        path: &[u8],
        limit: i64,
    ) -> Result<Option<TreeEntry>, Status> {
        let mut c = self.commit_service();
        let msg = TreeEntryRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
            path: path.to_vec(),
            limit,
            ..Default::default()
        };
        let parts = match self
            .collect(msg, |r| async move { c.tree_entry(r).await })
            .await
        {
            Ok(p) => p,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut entry: Option<TreeEntry> = None;
        for p in parts {
            match &mut entry {
                None if p.oid.is_empty() => return Ok(None),
                None => {
                    let kind = match tree_entry_response::ObjectType::try_from(p.r#type) {
                        Ok(tree_entry_response::ObjectType::Tree) => "tree",
                        Ok(tree_entry_response::ObjectType::Commit) => "commit",
                        _ => "blob",
                    };
                    entry = Some(TreeEntry {
                        kind,
                        oid: p.oid,
                        mode: p.mode,
                        size: p.size,
                        data: p.data,
                    })
                }
                Some(e) => e.data.extend_from_slice(&p.data),
            }
        }
        Ok(entry)
    }
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
            Some(Err(e)) => Some((Err(past_deadline(e, deadline)), None)),
            Some(Ok(v)) => Some((Ok(v), Some(s))),
            None => None,
        }
    })
}

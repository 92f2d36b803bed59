//! Calls to another server, named by a client in `gitaly-servers` (a second repository on
//! another storage): dialed with the address and secret given there (`unix:`, `tcp://`,
//! `tls://` with the system's certificate authorities, or a comma-separated list tried in
//! order), channels kept per address and dropped when idle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures::Stream;
use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use gitrpc_proto::servers::ServerInfo;
use gitrpc_proto::MAX_MESSAGE;
use hyper_util::rt::TokioIo;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint, Uri};
use tonic::{Request, Status};

use crate::error::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A channel unused this long is dropped.
const IDLE: Duration = Duration::from_secs(300);
/// At most this many channels are kept.
const MAX_CHANNELS: usize = 64;

/// The server's channels to other servers.
#[derive(Default)]
pub struct Remotes {
    channels: Mutex<HashMap<String, (Channel, Instant)>>,
}

impl Remotes {
    /// A client of the server `info` names.
    pub async fn connect(&self, info: &ServerInfo) -> Result<RemoteServer> {
        let secret = Some(info.token.as_bytes())
            .filter(|t| !t.is_empty())
            .map(Arc::from);
        let cached = {
            let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            channels.retain(|_, (_, used)| used.elapsed() < IDLE);
            channels.get_mut(&info.address).map(|(c, used)| {
                *used = Instant::now();
                c.clone()
            })
        };
        let channel = match cached {
            Some(c) => c,
            None => {
                let c = dial_list(&info.address).await?;
                let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
                if channels.len() >= MAX_CHANNELS {
                    channels.clear();
                }
                channels.insert(info.address.clone(), (c.clone(), Instant::now()));
                c
            }
        };
        Ok(RemoteServer {
            channel,
            auth: Auth(secret),
            address: info.address.clone(),
        })
    }
}

/// Adds the v2 token made from the other server's secret to every call.
#[derive(Clone)]
struct Auth(Option<Arc<[u8]>>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(secret) = &self.0 {
            let value = gitrpc_proto::auth::bearer(secret, SystemTime::now());
            let value = value
                .parse()
                .map_err(|_| Status::internal("token is not ASCII"))?;
            req.metadata_mut().insert("authorization", value);
        }
        Ok(req)
    }
}

/// Another server.
#[derive(Clone)]
pub struct RemoteServer {
    channel: Channel,
    auth: Auth,
    address: String,
}

type Intercepted = InterceptedService<Channel, Auth>;

impl RemoteServer {
    pub fn address(&self) -> &str {
        &self.address
    }

    fn service(&self) -> Intercepted {
        InterceptedService::new(self.channel.clone(), self.auth.clone())
    }

    fn repositories(&self) -> RepositoryServiceClient<Intercepted> {
        RepositoryServiceClient::new(self.service())
    }

    /// Its answer, or its refusal with the server named.
    fn failed(&self, s: Status) -> Error {
        Error::Status(Box::new(Status::new(
            s.code(),
            format!("server {}: {}", self.address, s.message()),
        )))
    }

    pub async fn repository_exists(&self, repo: &Repository) -> Result<bool> {
        let req = RepositoryExistsRequest {
            repository: Some(repo.clone()),
        };
        let resp = self.repositories().repository_exists(req).await;
        Ok(resp.map_err(|s| self.failed(s))?.into_inner().exists)
    }

    pub async fn object_format(&self, repo: &Repository) -> Result<ObjectFormat> {
        let req = ObjectFormatRequest {
            repository: Some(repo.clone()),
        };
        let resp = self.repositories().object_format(req).await;
        let format = resp.map_err(|s| self.failed(s))?.into_inner().format;
        Ok(ObjectFormat::try_from(format).unwrap_or(ObjectFormat::Unspecified))
    }

    /// What HEAD points to (`refs/heads/main`), even if that branch doesn't exist yet.
    pub async fn head(&self, repo: &Repository) -> Result<Option<String>> {
        let req = FindDefaultBranchNameRequest {
            repository: Some(repo.clone()),
            head_only: true,
        };
        let resp = RefServiceClient::new(self.service())
            .find_default_branch_name(req)
            .await;
        let name = resp.map_err(|s| self.failed(s))?.into_inner().name;
        Ok(String::from_utf8(name).ok().filter(|n| !n.is_empty()))
    }

    /// Whether it has a branch (`HasLocalBranches`).
    pub async fn has_branches(&self, repo: &Repository) -> Result<bool> {
        let req = HasLocalBranchesRequest {
            repository: Some(repo.clone()),
        };
        let resp = self.repositories().has_local_branches(req).await;
        Ok(resp.map_err(|s| self.failed(s))?.into_inner().value)
    }

    /// The commit `refs/heads/<branch>` points to (`FindBranch`); `None` if there is no such
    /// branch.
    pub async fn branch_commit(&self, repo: &Repository, branch: &[u8]) -> Result<Option<String>> {
        let req = FindBranchRequest {
            repository: Some(repo.clone()),
            name: branch.to_vec(),
        };
        match RefServiceClient::new(self.service()).find_branch(req).await {
            Ok(r) => Ok(r
                .into_inner()
                .branch
                .and_then(|b| b.target_commit)
                .map(|c| c.id)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.failed(s)),
        }
    }

    /// The commit `revision` resolves to (`FindCommit`); `None` if it resolves to none.
    pub async fn find_commit(&self, repo: &Repository, revision: &[u8]) -> Result<Option<String>> {
        let req = FindCommitRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
            trailers: false,
        };
        let resp = CommitServiceClient::new(self.service())
            .find_commit(req)
            .await;
        Ok(resp
            .map_err(|s| self.failed(s))?
            .into_inner()
            .commit
            .map(|c| c.id))
    }

    /// `SSHUploadPack` with `requests` (the repository in the first).
    pub async fn ssh_upload_pack(
        &self,
        requests: impl Stream<Item = SshUploadPackRequest> + Send + 'static,
    ) -> Result<tonic::Streaming<SshUploadPackResponse>> {
        let resp = SshServiceClient::new(self.service())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
            .ssh_upload_pack(requests)
            .await;
        Ok(resp.map_err(|s| self.failed(s))?.into_inner())
    }
}

/// The first server of a comma-separated list that answers.
async fn dial_list(list: &str) -> Result<Channel> {
    let mut last = None;
    for address in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match dial(address).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::invalid(format!("gitaly-servers: invalid address {list:?}"))))
}

enum Address {
    Unix(PathBuf),
    Tcp(String),
    Tls(String),
}

/// The address forms of `gitrpc_client::Address` (a test checks they agree).
fn parse(s: &str) -> Option<Address> {
    if let Some(path) = s
        .strip_prefix("unix://")
        .or_else(|| s.strip_prefix("unix:"))
    {
        return (!path.is_empty()).then(|| Address::Unix(path.into()));
    }
    let (tls, hostport) = match s.strip_prefix("tls://") {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix("tcp://").unwrap_or(s)),
    };
    if hostport.contains("://") {
        return None;
    }
    let (host, port) = hostport.rsplit_once(':')?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    Some(if tls {
        Address::Tls(hostport.into())
    } else {
        Address::Tcp(hostport.into())
    })
}

/// Does `s` parse as a server address (tests)?
pub fn is_address(s: &str) -> bool {
    parse(s).is_some()
}

async fn dial(address: &str) -> Result<Channel> {
    let invalid = || Error::invalid(format!("gitaly-servers: invalid address {address:?}"));
    let unavailable = |e: tonic::transport::Error| {
        let mut msg = format!("connect {address}: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        Error::Status(Box::new(Status::unavailable(msg)))
    };
    let endpoint = |uri: String| {
        Endpoint::from_shared(uri)
            .map(|e| e.connect_timeout(CONNECT_TIMEOUT))
            .map_err(|_| invalid())
    };
    match parse(address).ok_or_else(invalid)? {
        Address::Unix(path) => {
            let connector = tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(s))
                }
            });
            endpoint("http://localhost".into())?
                .connect_with_connector(connector)
                .await
                .map_err(unavailable)
        }
        Address::Tcp(hostport) => endpoint(format!("http://{hostport}"))?
            .connect()
            .await
            .map_err(unavailable),
        Address::Tls(hostport) => endpoint(format!("https://{hostport}"))?
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|e| Error::invalid(format!("gitaly-servers: tls: {e}")))?
            .connect()
            .await
            .map_err(unavailable),
    }
}

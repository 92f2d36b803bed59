//! Storage routing: each call goes to the servers of its repository's storage.
//!
//! A client made with a storage map ([`Options::storages`], or [`Builder`] for in-process
//! servers) routes in its transport, so typed calls, raw calls, generated stubs and
//! streaming calls are all routed the same way: the [`Routed`] service reads the request
//! body up to the end of its first message (Gitaly's requests carry the repository there),
//! finds the target repository's `storage_name` by the field path [`table`] gives for the
//! method, and hands the request, unchanged, to that storage's transport (balanced and
//! retried within the storage's address list as without routing). An unknown storage is
//! `INVALID_ARGUMENT` (`storage not found: "name"`) before any I/O. Methods without a
//! repository (ServerInfo, health) go to the default route: the address given to
//! [`Client::connect`], else the storage named `default`.
//!
//! For RPCs naming a second repository ([`table::SECONDARY`]: ReplicateRepository's
//! `source`, an operation's `start_repository`, ...), the second storage's servers are sent
//! in `gitaly-servers` metadata (`gitrpc_proto::servers`), as GitLab Rails does, so the
//! target's server can reach it.

mod storages;
pub(crate) mod table;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use gitrpc_proto::servers::{self, ServerInfo};
use http::HeaderValue;
use tonic::body::Body;
use tonic::Status;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

pub use storages::{not_found, Remote, StorageMap};

use crate::address::{Error, Options};
use crate::transport::{self, Transport, TransportError};
use crate::Client;
use table::Rule;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where one storage's calls go.
#[derive(Clone)]
pub enum Route {
    /// Servers over sockets.
    Remote(Remote),
    /// A server in this process (e.g. `gitrpc_server::Serving::in_process`), and the
    /// address it also listens on, if any: another server can reach this storage (for
    /// `gitaly-servers`) only through a listener.
    InProcess {
        transport: Transport,
        address: Option<String>,
    },
}

impl Route {
    /// A route whose every call fails with `status` (e.g. an in-process server of the
    /// parent process, after `fork`).
    pub fn failing(status: Status) -> Route {
        let service = tower::service_fn(move |_: http::Request<Body>| {
            let status = status.clone();
            async move { Ok::<_, TransportError>(status.into_http()) }
        });
        Route::InProcess {
            transport: BoxCloneSyncService::new(service),
            address: None,
        }
    }
}

/// Builds a routed [`Client`]: storages to servers over sockets or in this process.
pub struct Builder {
    options: Options,
    default: Option<String>,
    routes: BTreeMap<String, Route>,
    error: Option<Error>,
}

impl Client {
    /// A [`Builder`] with `options` (its `storages` become remote routes).
    pub fn builder(options: &Options) -> Builder {
        Builder {
            routes: options
                .storages
                .iter()
                .map(|(name, r)| (name.to_string(), Route::Remote(r.clone())))
                .collect(),
            options: options.clone(),
            default: None,
            error: None,
        }
    }
}

impl Builder {
    /// Servers for calls without a repository (ServerInfo, health); without one they go to
    /// the `default` storage's servers.
    pub fn default_address(mut self, address: impl Into<String>) -> Self {
        self.default = Some(address.into()).filter(|a| !a.is_empty());
        self
    }

    /// `storage`'s servers: an address list, with the options' token.
    pub fn storage(self, storage: &str, address: &str) -> Self {
        self.remote(storage, Remote::new(address))
    }

    /// `storage`'s servers, with their own token if `remote.token` is set.
    pub fn remote(mut self, storage: &str, remote: Remote) -> Self {
        let mut check = StorageMap::new();
        match check.insert(storage, remote.clone()) {
            Ok(()) => {
                self.routes
                    .insert(storage.to_string(), Route::Remote(remote));
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// `storage` served in this process by `service` (e.g. `Serving::in_process()`);
    /// `address`: where that server also listens, if it does (see [`Route::InProcess`]).
    pub fn in_process<S, E>(self, storage: &str, service: S, address: Option<String>) -> Self
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = E>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let transport = BoxCloneSyncService::new(service.map_err(TransportError::new));
        self.route(storage, Route::InProcess { transport, address })
    }

    /// Any route for `storage`.
    pub fn route(mut self, storage: &str, route: Route) -> Self {
        if storage.is_empty() {
            self.error
                .get_or_insert(Error::InvalidStorage(storage.to_string()));
        } else {
            self.routes.insert(storage.to_string(), route);
        }
        self
    }

    /// Connect every remote route. A server that doesn't answer now is connected lazily
    /// (its storage's calls fail with `UNAVAILABLE` until it does), so one server down
    /// fails only its storage; if no route at all connects, its error is returned. Bad
    /// addresses fail here.
    pub async fn connect(self) -> Result<Client, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let opts = Options {
            timeout: None,
            ..self.options.clone()
        };
        let mut storages = HashMap::new();
        let mut first_err = None;
        let mut connected = 0;
        let connect = |remote: &Remote| {
            let opts = Options {
                token: remote.token.clone().or_else(|| opts.token.clone()),
                ..opts.clone()
            };
            let address = remote.address.clone();
            async move {
                let server = ServerInfo {
                    address: address.clone(),
                    token: opts.token.clone().unwrap_or_default(),
                };
                let transport = match transport::connect(&address, &opts).await {
                    Ok(t) => (t, None),
                    Err(e @ Error::Connect { .. }) => {
                        (transport::connect_lazy(&address, &opts)?, Some(e))
                    }
                    Err(e) => return Err(e),
                };
                Ok::<_, Error>((transport, server))
            }
        };
        for (name, route) in &self.routes {
            let entry = match route {
                Route::Remote(remote) => {
                    let ((transport, err), server) = connect(remote).await?;
                    match err {
                        Some(e) => {
                            first_err.get_or_insert(e);
                        }
                        None => connected += 1,
                    }
                    Entry {
                        transport,
                        server: Some(server),
                        in_process: false,
                    }
                }
                Route::InProcess { transport, address } => {
                    connected += 1;
                    Entry {
                        transport: transport.clone(),
                        server: address.as_ref().map(|a| ServerInfo {
                            address: a.clone(),
                            token: opts.token.clone().unwrap_or_default(),
                        }),
                        in_process: true,
                    }
                }
            };
            storages.insert(name.clone(), Arc::new(entry));
        }
        let default = match &self.default {
            Some(address) => {
                let ((transport, err), server) = connect(&Remote::new(address.clone())).await?;
                match err {
                    Some(e) => {
                        first_err.get_or_insert(e);
                    }
                    None => connected += 1,
                }
                Some(Arc::new(Entry {
                    transport,
                    server: Some(server),
                    in_process: false,
                }))
            }
            None => storages.get("default").cloned(),
        };
        if let (0, Some(e)) = (connected, first_err) {
            return Err(e);
        }
        let routed = Routed {
            routes: Arc::new(Routes { storages, default }),
        };
        let client = Client::new(BoxCloneSyncService::new(routed), self.options.timeout);
        client.set_retries(self.options.retries);
        Ok(client)
    }
}

struct Entry {
    transport: Transport,
    /// How another server reaches this storage (`gitaly-servers`); `None` for an
    /// in-process server without a listener.
    server: Option<ServerInfo>,
    /// Served in this process.
    in_process: bool,
}

struct Routes {
    storages: HashMap<String, Arc<Entry>>,
    default: Option<Arc<Entry>>,
}

/// The routing transport (see the module docs).
#[derive(Clone)]
pub(crate) struct Routed {
    routes: Arc<Routes>,
}

impl Routes {
    fn default_route(&self, path: &str) -> Result<Arc<Entry>, Status> {
        self.default.clone().ok_or_else(|| {
            Status::invalid_argument(format!(
                "no default server for {path}: it names no repository, and there is no \"default\" storage"
            ))
        })
    }

    /// The route of `req` and the request to send (its body read up to the first message
    /// and put back; `gitaly-servers` added for a second repository).
    async fn route(
        &self,
        req: http::Request<Body>,
    ) -> Result<(Arc<Entry>, http::Request<Body>), Status> {
        let path = req.uri().path().to_string();
        let (target, secondary) = match table::table().rule(&path) {
            Rule::NoRepository => return Ok((self.default_route(&path)?, req)),
            Rule::Repository { target, secondary } => (target, secondary),
        };
        // Methods we don't declare (raw calls, maybe to a Gitaly) are read by a guess.
        let declared = table::table().declares(&path);
        let (parts, body) = req.into_parts();
        let first = wire::first_message(body).await?;
        let mut req = http::Request::from_parts(parts, first.body);
        let msg = first.message.unwrap_or_default();
        let storage_of = |path: &[u32]| {
            wire::submessage(&msg, path).map(|r| wire::string(&r, 2).unwrap_or_default())
        };
        let entry = match storage_of(&target) {
            Some(name) => match self.storages.get(&name) {
                Some(e) => e.clone(),
                None if declared => return Err(not_found(&name)),
                None => self.default.clone().ok_or_else(|| not_found(&name))?,
            },
            None if declared => return Err(Status::invalid_argument("empty Repository")),
            None => self.default_route(&path)?,
        };
        let second = secondary
            .and_then(|p| storage_of(&p))
            .filter(|s| !s.is_empty());
        if let Some(name) = second {
            let other = self.storages.get(&name).ok_or_else(|| not_found(&name))?;
            let key = servers::METADATA_KEY;
            match &other.server {
                _ if req.headers().contains_key(key) => {} // the caller's own
                Some(info) => {
                    let value = servers::encode(&[(name, info.clone())].into_iter().collect());
                    let value = HeaderValue::from_str(&value).expect("base64 is ASCII");
                    req.headers_mut().insert(key, value);
                }
                // The target is in this process too: if its server also serves the other
                // storage it finds it itself (else it says the storage is not served there).
                None if entry.in_process => {}
                None => {
                    return Err(Status::failed_precondition(format!(
                    "storage {name:?} is served in-process and can't be reached by another server"
                )))
                }
            }
        }
        Ok((entry, req))
    }
}

impl Service<http::Request<Body>> for Routed {
    type Response = http::Response<Body>;
    type Error = TransportError;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, TransportError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        // Readiness is per route; the chosen one is awaited in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let routes = self.routes.clone();
        Box::pin(async move {
            match routes.route(req).await {
                Ok((entry, req)) => {
                    let mut t = entry.transport.clone();
                    t.ready().await?;
                    t.call(req).await
                }
                // Answered here, as a server would: trailers-only, no I/O.
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

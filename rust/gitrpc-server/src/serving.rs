//! A server you can hold: [`Serving::start`] builds the dependencies from a [`crate::Config`], binds
//! its unix socket and/or TCP address and serves on the current tokio runtime until
//! [`Serving::stop`] (or drop). `gitrpcd`, the C API and the Ruby gem all start servers
//! this way; [`Serving::in_process`] gives embedders a tower service that dispatches straight
//! to the handlers, with no socket in between.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tower::{Layer, Service};

use crate::config::Valid;
use crate::deps::Deps;
use crate::hooks::Hooks;
use crate::layers::{Layers, Stack};
use crate::startup::{ServeError, StartError};

type ServeResult = Result<(), tonic::transport::Error>;

/// A running server: its listeners' tasks, its dependencies and a stop switch.
pub struct Serving {
    deps: Arc<Deps>,
    addresses: Vec<String>,
    /// The unix socket we bound, and its identity then (device, inode).
    socket: Option<(PathBuf, (u64, u64))>,
    stop_tx: watch::Sender<bool>,
    tasks: JoinSet<ServeResult>,
    live: Arc<AtomicBool>,
    monitor: Option<crate::monitor::MonitorServer>,
    /// The AIMD loop of adaptive limits, if any.
    adaptive: Option<tokio::task::JoinHandle<()>>,
}

impl Serving {
    /// Check the config (a [`crate::Config`] is validated here, a [`Valid`] one taken as
    /// it is), build the dependencies and bind every configured listener (`socket_path`,
    /// `listen_addr`; none is fine for in-process use). Must run inside a tokio runtime.
    pub async fn start<C>(config: C) -> Result<Serving, StartError>
    where
        C: TryInto<Valid>,
        StartError: From<C::Error>,
    {
        Serving::start_with_hooks(config, Hooks::default()).await
    }

    /// [`Serving::start`] with hooks given in code (e.g. a pre-receive closure).
    pub async fn start_with_hooks<C>(config: C, hooks: Hooks) -> Result<Serving, StartError>
    where
        C: TryInto<Valid>,
        StartError: From<C::Error>,
    {
        Serving::start_valid(config.try_into()?, hooks).await
    }

    /// [`Serving::start_with_hooks`] for a config already validated.
    pub async fn start_valid(config: Valid, hooks: Hooks) -> Result<Serving, StartError> {
        let socket = config.socket_path.clone();
        let listen = config.listen_addr.clone();
        let tls_listen = config.tls_listen_addr.clone();
        let tls = match (&tls_listen, &config.tls) {
            (Some(_), Some(c)) => Some(crate::server::tls_config(c)?),
            _ => None,
        };
        let socket_mode = config.socket_mode.bits();
        let prometheus = config.prometheus_listen_addr.clone();
        let adaptive_config = config.adaptive_limiting.clone();
        let deps = Deps::with_hooks(config, hooks).await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = JoinSet::new();
        let mut addresses = Vec::new();
        // Bind everything before serving anything, so a failure leaves nothing running; the
        // unix socket last, as its file would outlive a failure after it.
        let monitor = match &prometheus {
            Some(addr) => Some(crate::monitor::MonitorServer::start(addr, &deps)?),
            None => None,
        };
        let tcp = match &listen {
            Some(addr) => Some(bind_tcp("listen_addr", addr).await?),
            None => None,
        };
        let tls_tcp = match &tls_listen {
            Some(addr) => Some(bind_tcp("tls_listen_addr", addr).await?),
            None => None,
        };
        let unix = match &socket {
            Some(path) => Some(bind_unix(path, socket_mode)?),
            None => None,
        };
        let mut bound_socket = None;
        if let (Some(l), Some(path)) = (unix, &socket) {
            bound_socket = file_id(path).map(|id| (path.clone(), id));
            addresses.push(format!("unix:{}", path.display()));
            tasks.spawn(crate::run(
                deps.clone(),
                UnixListenerStream::new(l),
                stopped(stop_rx.clone()),
            ));
        }
        if let Some(l) = tcp {
            let local = local_addr(&l, "listen_addr")?;
            addresses.push(format!("tcp://{local}"));
            tasks.spawn(crate::run(
                deps.clone(),
                nodelay(l),
                stopped(stop_rx.clone()),
            ));
        }
        if let (Some(l), Some(tls)) = (tls_tcp, tls) {
            let local = local_addr(&l, "tls_listen_addr")?;
            addresses.push(format!("tls://{local}"));
            tasks.spawn(crate::run_tls(
                deps.clone(),
                nodelay(l),
                stopped(stop_rx.clone()),
                tls,
            ));
        }
        let adaptive = (!deps.limits.adaptive.is_empty()).then(|| {
            tokio::spawn(crate::adaptive::run(
                adaptive_config,
                deps.limits.adaptive.clone(),
            ))
        });
        Ok(Serving {
            deps,
            addresses,
            socket: bound_socket,
            stop_tx,
            tasks,
            live: Arc::new(AtomicBool::new(true)),
            monitor,
            adaptive,
        })
    }

    /// Where clients can connect: `unix:/path`, `tcp://ip:port`, `tls://ip:port` (the
    /// bound ports).
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// `http://ip:port` of the metrics and diagnostics listener (`prometheus_listen_addr`).
    pub fn monitor_url(&self) -> Option<String> {
        self.monitor.as_ref().map(|m| m.url())
    }

    pub fn deps(&self) -> &Arc<Deps> {
        &self.deps
    }

    /// A service that dispatches requests to this server's handlers in-process. After the
    /// server stops, its calls answer `UNAVAILABLE`.
    pub fn in_process(&self) -> InProcess {
        InProcess {
            inner: Layers::in_process(&self.deps).layer(crate::routes(self.deps.clone())),
            live: self.live.clone(),
        }
    }

    /// Resolves when a listener fails (it never does on its own otherwise).
    pub async fn failed(&mut self) -> ServeError {
        loop {
            match self.tasks.join_next().await {
                Some(Ok(Ok(()))) => continue,
                Some(Ok(Err(e))) => return e.into(),
                Some(Err(e)) => return e.into(),
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// Stop accepting, let in-flight calls finish for up to `grace`, then cancel the rest
    /// (which kills their git processes) and remove the socket file.
    pub async fn stop(mut self, grace: Duration) {
        self.live.store(false, Ordering::SeqCst);
        let _ = self.stop_tx.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("drain timed out; cancelling remaining calls");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(t) = self.adaptive.take() {
            t.abort();
        }
        self.live.store(false, Ordering::SeqCst);
        let _ = self.stop_tx.send(true);
        self.tasks.abort_all();
        // Only our own socket: a server started on the same path after we stopped listening
        // (a restart while we drain) has replaced it, and keeps it.
        if let Some((path, id)) = &self.socket {
            if file_id(path) == Some(*id) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// (device, inode) of `path` itself (not following a symlink).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

async fn bind_tcp(key: &'static str, addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            key,
            addr: addr.to_string(),
            source,
        })
}

fn local_addr(l: &TcpListener, key: &'static str) -> Result<std::net::SocketAddr, StartError> {
    l.local_addr().map_err(|source| StartError::Bind {
        key,
        addr: "?".into(),
        source,
    })
}

/// A TCP listener's connections with `TCP_NODELAY`: backchannel sessions send small frames
/// (window updates, a sidechannel's `ok`) that Nagle's algorithm would hold back.
fn nodelay(
    l: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(l).map(|conn| {
        conn.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    })
}

/// Bind a unix socket with permissions `mode`, replacing a stale socket file (one nobody
/// listens on; one a server listens on is `AddrInUse`). The socket is bound inside a fresh
/// private directory, given its mode there and then renamed into place, so it is never
/// reachable with looser permissions.
fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, StartError> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let fail = |source: Error| StartError::Bind {
        key: "socket_path",
        addr: path.display().to_string(),
        source,
    };
    let context = |what: &str, p: &Path, e: Error| {
        Error::new(e.kind(), format!("{what} {}: {e}", p.display()))
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(fail(Error::new(
                ErrorKind::AddrInUse,
                "another server is listening",
            )));
        }
        std::fs::remove_file(path).map_err(|e| fail(context("remove stale", path, e)))?;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(context("create", &dir, e)))?;
    let private = dir.join(format!(".sock-{}", crate::tempdir::random_hex(6)));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| fail(context("create", &private, e)))?;
    let staged = private.join("s");
    let bound = (|| {
        let l = UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&staged, path)?;
        Ok(l)
    })()
    .map_err(fail);
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    bound
}

/// In-process dispatch to a [`Serving`]'s handlers (see [`Serving::in_process`]).
#[derive(Clone)]
pub struct InProcess {
    inner: Stack<tonic::service::Routes>,
    live: Arc<AtomicBool>,
}

impl<B> Service<http::Request<B>> for InProcess
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<http::Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !self.live.load(Ordering::SeqCst) {
            let status = tonic::Status::unavailable("server stopped");
            return Box::pin(async move { Ok(status.into_http()) });
        }
        Box::pin(self.inner.call(req))
    }
}

//! [`Embedded`]: a gitrpc server inside a process that blocks on calls (the C API, the Ruby
//! gem), started on the process's runtime and owned by the process that started it. What
//! both adapters hold, so that start, in-process clients, fork and stop behave the same in C
//! and in Ruby; each adapter only maps [`StartError`] (once) and waits its own way.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use gitrpc_server::config::Valid;
use gitrpc_server::{Hooks, Serving};

/// Why a server did not start (typed, with the one gRPC code mapping adapters use).
pub use gitrpc_server::StartError;
use tonic::Status;

use crate::runtime::Owned;
use crate::Client;

/// A running (or stopped) embedded server. Dropping it while running aborts its listeners
/// and calls and removes its socket, inside the runtime; in a forked child it is left alone.
pub struct Embedded {
    serving: Mutex<Option<Owned<Serving>>>,
    addresses: Vec<String>,
    grace: Duration,
}

const FORKED: &str = "server was started before fork(); it runs only in the parent process";

impl Embedded {
    /// Check `config` and start serving. Await it on this process's runtime
    /// ([`crate::runtime::block_on`], or an adapter's own wait on that runtime).
    pub async fn start<C>(config: C, hooks: Hooks) -> Result<Embedded, StartError>
    where
        C: TryInto<Valid>,
        StartError: From<C::Error>,
    {
        let config: Valid = config.try_into()?;
        let grace = config.graceful_restart_timeout;
        let serving = Serving::start_valid(config, hooks).await?;
        Ok(Embedded {
            addresses: serving.addresses().to_vec(),
            serving: Mutex::new(Some(Owned::new(serving))),
            grace,
        })
    }

    /// Where clients connect (`unix:/path`, `tcp://ip:port`, `tls://ip:port`), in the
    /// config's order; empty for a server with no listener.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Running, in this process (false once stopped, and in a forked child).
    pub fn is_running(&self) -> bool {
        let s = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        s.as_ref().is_some_and(Owned::is_ours)
    }

    /// A client that dispatches to this server's handlers in-process (no socket), with
    /// default deadline `timeout`. `UNAVAILABLE` if the server was stopped or belongs to the
    /// parent of this (forked) process; a client made earlier answers `UNAVAILABLE` once the
    /// server stops.
    pub fn client(&self, timeout: Option<Duration>) -> Result<Client, Status> {
        let s = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        match s.as_ref().map(Owned::get) {
            Some(Ok(serving)) => Ok(Client::from_service(serving.in_process(), timeout)),
            Some(Err(_)) => Err(Status::unavailable(FORKED)),
            None => Err(Status::unavailable("server stopped")),
        }
    }

    /// A route to this server for a routed client ([`crate::routing::Builder::route`]):
    /// in-process dispatch, with its first listener's address (for `gitaly-servers`) if it
    /// has one. Fails as [`Embedded::client`] does.
    pub fn route(&self) -> Result<crate::routing::Route, Status> {
        let s = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        match s.as_ref().map(Owned::get) {
            Some(Ok(serving)) => Ok(crate::routing::Route::InProcess {
                transport: tower::util::BoxCloneSyncService::new(tower::ServiceExt::<
                    http::Request<tonic::body::Body>,
                >::map_err(
                    serving.in_process(),
                    crate::transport::TransportError::new,
                )),
                address: self.addresses.first().cloned(),
            }),
            Some(Err(_)) => Err(Status::unavailable(FORKED)),
            None => Err(Status::unavailable("server stopped")),
        }
    }

    /// Stop: the returned future stops accepting, lets running calls finish (up to the
    /// config's `graceful_restart_timeout`), cancels the rest (killing their git) and
    /// removes the socket; await it on the runtime. `None` if it is not running here
    /// (already stopped, or in a forked child, which leaves the parent's server alone).
    pub fn stop(&self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let taken = self
            .serving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let serving = taken.into_inner().ok()?;
        let grace = self.grace;
        Some(async move { serving.stop(grace).await })
    }
}

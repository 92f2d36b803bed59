//! Per-server request accounting, below the layers and the monitor: the calls in flight
//! (method, repository, age) for the diagnostics page, each call's git subcommands for its
//! log line, and the RPC metrics when it ends.
//!
//! The RPC log layer begins a [`Call`] for every request, puts it in the request's
//! extensions (the admission layer records the repository there) and runs the handler in
//! its scope ([`Call::scope`]). [`crate::Deps::repo`] reads the scope once, where the
//! handler locates its repository, and gives the `Repo` a per-call [`gitrpc_git::Git`]
//! ([`Call::git`]) whose observer records every git it starts — in the handler or in any
//! task the handler spawns later, with nothing to re-enter there.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gitrpc_git::{Git, LiveProcess, Observer, Usage};
use gitrpc_proto::identity::Identity;

use crate::metrics::RpcMetrics;

/// One call in flight.
pub struct Call {
    pub method: String,
    pub started: Instant,
    /// `storage/relative_path` (normalised), once its first request message is read.
    repository: OnceLock<String>,
    /// The git subcommands it started, in order.
    commands: Mutex<Vec<&'static str>>,
    /// Who made it ([`Identity::caller`] of its metadata), once the log layer has read it.
    caller: OnceLock<Identity>,
}

tokio::task_local! {
    static CURRENT: Arc<Call>;
}

impl Call {
    /// The call whose handler is running on this task (see the module docs).
    pub fn current() -> Option<Arc<Call>> {
        CURRENT.try_with(|c| c.clone()).ok()
    }

    /// Run `fut` (a handler) as this call.
    pub fn scope<F: Future>(self: &Arc<Self>, fut: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self.clone(), fut)
    }

    /// Record the call's repository (the first time only).
    pub fn set_repository(&self, key: String) {
        let _ = self.repository.set(key);
    }

    pub fn repository(&self) -> Option<&str> {
        self.repository.get().map(String::as_str)
    }

    /// Record who made the call (the first time only).
    pub fn set_caller(&self, caller: Identity) {
        let _ = self.caller.set(caller);
    }

    /// Who made the call (`remote_ip` without a port, user), as far as its metadata says.
    pub fn caller(&self) -> Identity {
        self.caller.get().cloned().unwrap_or_default()
    }

    /// The git subcommands the call started so far.
    pub fn commands(&self) -> Vec<&'static str> {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `git` with an observer that records this call's commands, then tells `git`'s own.
    pub fn git(self: &Arc<Self>, git: &Git) -> Git {
        git.with_observer(Arc::new(CallObserver {
            call: self.clone(),
            server: git.observer().clone(),
        }))
    }
}

struct CallObserver {
    call: Arc<Call>,
    server: Arc<dyn Observer>,
}

impl Observer for CallObserver {
    fn spawned(&self, p: &LiveProcess, latency: Duration) {
        self.call
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(p.subcommand);
        self.server.spawned(p, latency);
    }

    fn exited(&self, p: &LiveProcess, usage: Option<Usage>) {
        self.server.exited(p, usage);
    }
}

/// A call in flight, as shown on the diagnostics page.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub method: String,
    pub repository: Option<String>,
    pub age: Duration,
}

/// The calls of one server.
#[derive(Default)]
pub struct Rpcs {
    next: AtomicU64,
    in_flight: Mutex<BTreeMap<u64, Arc<Call>>>,
    metrics: RpcMetrics,
}

/// Removes its call from the in-flight table when dropped.
pub struct CallGuard {
    rpcs: Arc<Rpcs>,
    id: u64,
    pub call: Arc<Call>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        lock(&self.rpcs.in_flight).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Rpcs {
    /// Finished calls are counted into `metrics`.
    pub fn new(metrics: RpcMetrics) -> Rpcs {
        Rpcs {
            metrics,
            ..Rpcs::default()
        }
    }

    pub fn begin(self: &Arc<Self>, method: &str) -> CallGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let call = Arc::new(Call {
            method: method.to_string(),
            started: Instant::now(),
            repository: OnceLock::new(),
            commands: Mutex::new(Vec::new()),
            caller: OnceLock::new(),
        });
        lock(&self.in_flight).insert(id, call.clone());
        self.metrics.started();
        CallGuard {
            rpcs: self.clone(),
            id,
            call,
        }
    }

    /// Finished calls of `method` that ended with `code` (its upper-case name, `"OK"`).
    pub fn count(&self, method: &str, code: &'static str) -> u64 {
        self.metrics.count(method, code)
    }

    /// The call ended with `code` after `took` (its guard goes with it).
    pub fn finish(&self, method: &str, code: tonic::Code, took: Duration) {
        self.metrics.finished(method, code, took);
    }

    pub fn in_flight(&self) -> Vec<InFlight> {
        let now = Instant::now();
        lock(&self.in_flight)
            .values()
            .map(|c| InFlight {
                method: c.method.clone(),
                repository: c.repository().map(str::to_string),
                age: now.duration_since(c.started),
            })
            .collect()
    }
}

//! Per-server RPC accounting: counts by method and code, latency histograms, and the table
//! of calls in flight (method, repository, age) for the diagnostics page.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gitrpc_git::stats::Histogram;

/// The repository of a call, filled in once its first request message is read.
pub type RepoSlot = Arc<OnceLock<String>>;

struct Call {
    method: String,
    repository: RepoSlot,
    started: Instant,
}

/// A call in flight, as shown on the diagnostics page.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub method: String,
    pub repository: Option<String>,
    pub age: Duration,
}

#[derive(Default)]
pub struct Rpcs {
    next: AtomicU64,
    in_flight: Mutex<BTreeMap<u64, Call>>,
    /// (method, code name) → count
    counts: Mutex<HashMap<(String, &'static str), u64>>,
    latency: Mutex<HashMap<String, Arc<Histogram>>>,
}

/// Removes its call from the in-flight table when dropped.
pub struct CallGuard {
    rpcs: Arc<Rpcs>,
    id: u64,
    pub repository: RepoSlot,
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
    pub fn begin(self: &Arc<Self>, method: &str) -> CallGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let repository = RepoSlot::default();
        lock(&self.in_flight).insert(
            id,
            Call {
                method: method.to_string(),
                repository: repository.clone(),
                started: Instant::now(),
            },
        );
        CallGuard {
            rpcs: self.clone(),
            id,
            repository,
        }
    }

    pub fn finish(&self, method: &str, code: tonic::Code, took: Duration) {
        *lock(&self.counts)
            .entry((method.to_string(), code_name(code)))
            .or_default() += 1;
        let h = lock(&self.latency)
            .entry(method.to_string())
            .or_default()
            .clone();
        h.observe(took);
    }

    pub fn in_flight(&self) -> Vec<InFlight> {
        let now = Instant::now();
        lock(&self.in_flight)
            .values()
            .map(|c| InFlight {
                method: c.method.clone(),
                repository: c.repository.get().cloned(),
                age: now.duration_since(c.started),
            })
            .collect()
    }

    /// ((method, code), count), sorted.
    pub fn counts(&self) -> Vec<((String, &'static str), u64)> {
        let mut v: Vec<_> = lock(&self.counts)
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        v.sort();
        v
    }

    pub fn latencies(&self) -> Vec<(String, Arc<Histogram>)> {
        let mut v: Vec<_> = lock(&self.latency)
            .iter()
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Upper-case names as gRPC and Gitaly's metrics spell them.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

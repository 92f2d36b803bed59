//! Keeping repositories fast: Gitaly's `OptimizeRepository` and `PruneUnreachableObjects`,
//! and when the server runs them on its own.
//!
//! - [`Optimizer`] runs one optimization of one repository (`run.rs`): clean stale data, then
//!   repack, prune, pack refs, write the commit-graph, as the strategy
//!   ([`gitrpc_git::housekeeping::strategy`]) decides from the repository's state. One at a
//!   time per repository: in this process (a table of running jobs, shown on the diagnostics
//!   page) and across processes sharing a storage (an `flock` on the repository directory,
//!   held while it runs). A second one finds it busy: the RPC answers `ALREADY_EXISTS`
//!   (Gitaly's housekeeping middleware), the background skips it.
//! - [`Scheduler`] (`scheduler.rs`): after `[housekeeping] after_writes` successful mutator
//!   RPCs on a repository it queues a heuristical optimization; queued ones run at most
//!   `max_concurrency` at a time, in the background.
//! - `daily.rs`: `[daily_maintenance]`, Gitaly's daily window walking every repository.
//!
//! Reads stay correct while this runs: git writes new packs and the multi-pack-index before
//! deleting old packs, and pooled `cat-file`s keep old packs open and rescan on a miss; the
//! native ref reader looks at the loose file before `packed-refs`, which `pack-refs` writes
//! before deleting loose files (`gitrpc_git::refs`). Deleted packs stay on disk while an idle
//! `cat-file` holds them, so idle ones of the repository are evicted after a repack.

mod daily;
mod run;
mod scheduler;

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitrpc_git::housekeeping::Grace;
use gitrpc_git::{CatFilePool, Git};

pub use daily::{next_window, Window};
pub use scheduler::{Queued, Scheduler};

use crate::metrics::HousekeepingMetrics;

/// The repository an optimization is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub storage: String,
    /// Normalised relative path.
    pub relative: String,
}

impl Target {
    /// `storage/relative path`, as logs and the diagnostics page show repositories.
    pub fn label(&self) -> String {
        format!("{}/{}", self.storage, self.relative)
    }

    /// An object pool (Gitaly's pools live under `@pools/`): it never loses an object.
    pub fn is_pool(&self) -> bool {
        self.relative.starts_with("@pools/")
    }
}

/// Why an optimization runs (logs, diagnostics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// OptimizeRepository or PruneUnreachableObjects.
    Rpc,
    /// `after_writes` writes since the last one.
    Writes,
    /// The daily maintenance window.
    Daily,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Rpc => "rpc",
            Origin::Writes => "writes",
            Origin::Daily => "daily",
        }
    }
}

/// How much an optimization does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only what the repository's state calls for.
    Heuristical,
    /// Everything.
    Eager,
}

/// Why an optimization did not run, or failed.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// Another optimization of the repository runs (here or in another process).
    #[error("housekeeping already executing for repository")]
    Busy,
    #[error(transparent)]
    Git(#[from] gitrpc_git::Error),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// A running optimization, as the diagnostics page shows it.
#[derive(Clone, Debug)]
pub struct Running {
    pub repository: String,
    pub origin: Origin,
    /// The step it is in (`clean_stale_data`, `repack`, ...).
    pub step: &'static str,
    pub age: Duration,
}

struct Job {
    repository: String,
    origin: Origin,
    started: Instant,
    step: Mutex<&'static str>,
}

/// Runs optimizations; cheap to clone (one per server, shared by the RPCs and the
/// background).
#[derive(Clone)]
pub struct Optimizer {
    inner: Arc<Inner>,
}

struct Inner {
    catfile: CatFilePool,
    metrics: HousekeepingMetrics,
    grace: Grace,
    jobs: Mutex<HashMap<PathBuf, Arc<Job>>>,
}

/// Holds a repository for one optimization: its entry in the job table, and the `flock` on
/// its directory (released when the file is closed).
pub(crate) struct Claim {
    inner: Arc<Inner>,
    path: PathBuf,
    job: Arc<Job>,
    _dir: std::fs::File,
}

impl Drop for Claim {
    fn drop(&mut self) {
        lock(&self.inner.jobs).remove(&self.path);
        self.inner.metrics.running().dec();
    }
}

impl Claim {
    fn step(&self, step: &'static str) {
        *lock(&self.job.step) = step;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Optimizer {
    pub fn new(catfile: CatFilePool, metrics: HousekeepingMetrics, grace: Grace) -> Optimizer {
        Optimizer {
            inner: Arc::new(Inner {
                catfile,
                metrics,
                grace,
                jobs: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Take the repository for one optimization, or [`OptimizeError::Busy`].
    fn claim(&self, target: &Target, origin: Origin) -> Result<Claim, OptimizeError> {
        let path = &target.path;
        let mut jobs = lock(&self.inner.jobs);
        if jobs.contains_key(path) {
            return Err(OptimizeError::Busy);
        }
        let dir = std::fs::File::open(path).map_err(|source| OptimizeError::Io {
            what: "open repository",
            source,
        })?;
        // SAFETY: flock(2) on a descriptor we own; no memory involved.
        let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => OptimizeError::Busy,
                _ => OptimizeError::Io {
                    what: "lock repository",
                    source: e,
                },
            });
        }
        let job = Arc::new(Job {
            repository: target.label(),
            origin,
            started: Instant::now(),
            step: Mutex::new("starting"),
        });
        jobs.insert(path.to_path_buf(), job.clone());
        self.inner.metrics.running().inc();
        Ok(Claim {
            inner: self.inner.clone(),
            path: path.to_path_buf(),
            job,
            _dir: dir,
        })
    }

    /// Optimize `target` with `git` (an RPC's, so its log line lists the commands). Object
    /// pools keep every object.
    pub async fn optimize(
        &self,
        git: &Git,
        target: &Target,
        mode: Mode,
        origin: Origin,
    ) -> Result<(), OptimizeError> {
        let claim = self.claim(target, origin)?;
        run::optimize(&self.inner, &claim, git, target, mode).await
    }

    /// Gitaly's PruneUnreachableObjects: unreachable objects untouched for 30 minutes go,
    /// loose ones (`git prune`) and those in cruft packs (a full repack with cruft expiring
    /// them); then a new commit-graph chain.
    pub async fn prune_unreachable(&self, git: &Git, target: &Target) -> Result<(), OptimizeError> {
        let claim = self.claim(target, Origin::Rpc)?;
        run::prune_unreachable(&self.inner, &claim, git, target).await
    }

    /// The optimizations running now, oldest first.
    pub fn running(&self) -> Vec<Running> {
        let now = Instant::now();
        let mut v: Vec<Running> = lock(&self.inner.jobs)
            .values()
            .map(|j| Running {
                repository: j.repository.clone(),
                origin: j.origin,
                step: *lock(&j.step),
                age: now.duration_since(j.started),
            })
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.age));
        v
    }

    pub fn metrics(&self) -> &HousekeepingMetrics {
        &self.inner.metrics
    }
}

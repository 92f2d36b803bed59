//! Background optimizations: queued after `[housekeeping] after_writes` successful mutator
//! RPCs on a repository (Gitaly's housekeeping middleware counts the same way: its
//! `RPCInterval` is 20), and by the daily window (`daily.rs`). At most `max_concurrency` run
//! at once (the daily walk takes the same slots). Bounded everywhere: write counters for at
//! most [`MAX_COUNTED`] repositories (the longest idle one is forgotten), a queue of at most
//! [`MAX_QUEUED`] repositories, each queued once (one more is dropped and counted).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gitrpc_git::Git;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use super::daily::{self, Window};
use super::{Mode, OptimizeError, Optimizer, Origin, Target};
use crate::config::{DailyMaintenance, HousekeepingConfig};
use crate::locator::{self, Locator};
use crate::metrics::HousekeepingMetrics;

/// Repositories whose writes are counted at once.
pub const MAX_COUNTED: usize = 10_000;
/// Repositories waiting for a background optimization.
pub const MAX_QUEUED: usize = 1024;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct State {
    /// Writes since the last optimization was queued, and when the last one came.
    counts: HashMap<String, (u64, Instant)>,
    queue: VecDeque<Target>,
    /// Queued or running (each repository once).
    pending: HashSet<PathBuf>,
}

/// What the background tasks share.
pub(super) struct Shared {
    pub(super) optimizer: Optimizer,
    /// The server's git (background work belongs to no call).
    pub(super) git: Git,
    pub(super) locator: Locator,
    pub(super) slots: Arc<Semaphore>,
    pub(super) next_window: Mutex<Option<Window>>,
    after_writes: u64,
    state: Mutex<State>,
    wake: Notify,
}

impl Shared {
    pub(super) fn metrics(&self) -> &HousekeepingMetrics {
        self.optimizer.metrics()
    }

    /// A background optimization of `t` ended.
    pub(super) fn finished(&self, t: &Target, res: Result<(), OptimizeError>) {
        lock(&self.state).pending.remove(&t.path);
        match res {
            Ok(()) => {}
            Err(OptimizeError::Busy) => self.metrics().skipped("busy"),
            Err(e) => {
                tracing::warn!(repository = %t.label(), error = %e, "background optimization failed")
            }
        }
    }

    fn pop(&self) -> Option<Target> {
        lock(&self.state).queue.pop_front()
    }
}

/// A repository waiting in the queue, as the diagnostics page shows it.
#[derive(Clone, Debug)]
pub struct Queued {
    pub repository: String,
}

/// The background scheduler of one server; its tasks stop (and their git is killed) when it
/// is dropped.
pub struct Scheduler {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Scheduler {
    /// Start the dispatcher (and the daily window, if configured). Needs a tokio runtime.
    pub fn start(
        optimizer: Optimizer,
        git: Git,
        locator: Locator,
        config: &HousekeepingConfig,
        daily: Option<&DailyMaintenance>,
    ) -> Scheduler {
        let shared = Arc::new(Shared {
            optimizer,
            git,
            locator,
            slots: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            next_window: Mutex::new(None),
            after_writes: config.after_writes,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        });
        let mut tasks = vec![tokio::spawn(dispatch(shared.clone())).abort_handle()];
        if let Some(d) = daily.filter(|d| d.enabled()) {
            tasks.push(tokio::spawn(daily::run(shared.clone(), d.clone())).abort_handle());
        }
        Scheduler { shared, tasks }
    }

    /// A mutator RPC on `repository` (`storage/normalised relative path`, as the call
    /// recorded it) succeeded. Every `after_writes`-th queues an optimization.
    pub fn wrote(&self, repository: &str) {
        let s = &self.shared;
        if s.after_writes == 0 {
            return;
        }
        let Some(target) = resolve(&s.locator, repository) else {
            return;
        };
        let mut st = lock(&s.state);
        if !st.counts.contains_key(repository) && st.counts.len() >= MAX_COUNTED {
            let oldest = st
                .counts
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                st.counts.remove(&k);
            }
        }
        let entry = st
            .counts
            .entry(repository.to_string())
            .or_insert((0, Instant::now()));
        entry.0 += 1;
        entry.1 = Instant::now();
        if entry.0 < s.after_writes {
            return;
        }
        entry.0 = 0;
        if st.pending.contains(&target.path) {
            return;
        }
        if st.queue.len() >= MAX_QUEUED {
            drop(st);
            s.metrics().skipped("queue_full");
            return;
        }
        st.pending.insert(target.path.clone());
        st.queue.push_back(target);
        drop(st);
        s.metrics().scheduled("writes");
        s.metrics().queued().inc();
        s.wake.notify_one();
    }

    pub fn optimizer(&self) -> &Optimizer {
        &self.shared.optimizer
    }

    /// Repositories waiting for a slot, oldest first.
    pub fn queued(&self) -> Vec<Queued> {
        lock(&self.shared.state)
            .queue
            .iter()
            .map(|t| Queued {
                repository: t.label(),
            })
            .collect()
    }

    /// The daily window in use (open now, or the next), if one is configured.
    pub fn daily_window(&self) -> Option<Window> {
        *lock(&self.shared.next_window)
    }
}

/// `storage/relative` → the repository's target, the storage found by name (the longest
/// configured name the key starts with, so names may hold `/`).
fn resolve(locator: &Locator, repository: &str) -> Option<Target> {
    let (storage, root) = locator
        .storages()
        .filter(|(name, _)| {
            repository
                .strip_prefix(name)
                .is_some_and(|r| r.starts_with('/'))
        })
        .max_by_key(|(name, _)| name.len())?;
    let relative = &repository[storage.len() + 1..];
    let relative = locator::normalize(relative).ok()?;
    Some(Target {
        path: root.join(&relative),
        storage: storage.to_string(),
        relative,
    })
}

/// Until aborted: run queued optimizations, `max_concurrency` at a time. Aborting drops the
/// running ones (their git is killed).
async fn dispatch(shared: Arc<Shared>) {
    let mut jobs = JoinSet::new();
    loop {
        let target = loop {
            if let Some(t) = shared.pop() {
                break t;
            }
            tokio::select! {
                _ = shared.wake.notified() => {}
                Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
            }
        };
        let permit = loop {
            tokio::select! {
                p = shared.slots.clone().acquire_owned() => break p,
                Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
            }
        };
        shared.metrics().queued().dec();
        let Ok(permit) = permit else { return };
        let s = shared.clone();
        jobs.spawn(async move {
            let _slot = permit;
            if !locator::is_git_dir(&target.path) {
                s.metrics().skipped("gone");
                s.finished(&target, Ok(()));
                return;
            }
            let res = s
                .optimizer
                .optimize(&s.git, &target, Mode::Heuristical, Origin::Writes)
                .await;
            s.finished(&target, res);
        });
        while jobs.try_join_next().is_some() {}
    }
}

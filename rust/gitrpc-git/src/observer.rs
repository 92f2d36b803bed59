//! What the executor tells about the git processes it runs, and to whom.
//!
//! Every [`crate::Git`] keeps the table of the processes it (and every `Git` made from it)
//! started and has not reaped ([`Processes`]): the `ps` view of one server, used by its
//! diagnostics and by housekeeping ("no git of ours works in this repository"). And every
//! `Git` carries an [`Observer`], given by its owner, told when a process starts and when
//! it ends (with its rusage): the server turns that into metrics and, through a per-call
//! observer, into the list of git subcommands in each RPC's log line. Nothing here is
//! process-wide: two servers in one process see only their own git.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a finished git process used, from `wait4`-style rusage (its waited-for children,
/// such as `pack-objects` under `upload-pack`, included).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
    /// Peak resident set size in bytes.
    pub max_rss: u64,
}

/// A running git process, as the executor knows it.
#[derive(Clone, Debug)]
pub struct LiveProcess {
    pub pid: i32,
    pub subcommand: &'static str,
    pub args: Vec<OsString>,
    pub started: Instant,
}

/// Told about every git process a [`crate::Git`] starts. Called on the thread that spawns
/// or reaps the process: keep it short (counters, a push onto a list).
pub trait Observer: Send + Sync + 'static {
    /// `process` was started; `posix_spawn` took `latency`.
    fn spawned(&self, process: &LiveProcess, latency: Duration) {
        let _ = (process, latency);
    }

    /// `process` has ended (reaped, or killed because its caller gave up), with its rusage
    /// when it could be read (through a pidfd, before the reap).
    fn exited(&self, process: &LiveProcess, usage: Option<Usage>) {
        let _ = (process, usage);
    }
}

/// An observer that ignores everything (a `Git` made without one).
#[derive(Debug, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

/// The processes a `Git` and the `Git`s made from it started and have not reaped.
#[derive(Clone, Debug, Default)]
pub struct Processes(Arc<Mutex<BTreeMap<i32, LiveProcess>>>);

impl Processes {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, LiveProcess>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The processes running now, oldest first.
    pub fn list(&self) -> Vec<LiveProcess> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by_key(|p| p.started);
        v
    }

    /// How many run now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// A started process's place in its table and its observer, until [`Tracked::finish`].
pub(crate) struct Tracked {
    pub(crate) info: LiveProcess,
    processes: Processes,
    observer: Arc<dyn Observer>,
}

impl Tracked {
    pub(crate) fn start(
        processes: &Processes,
        observer: &Arc<dyn Observer>,
        info: LiveProcess,
        latency: Duration,
    ) -> Tracked {
        processes.lock().insert(info.pid, info.clone());
        observer.spawned(&info, latency);
        Tracked {
            info,
            processes: processes.clone(),
            observer: observer.clone(),
        }
    }

    /// The process was reaped.
    pub(crate) fn finish(self, usage: Option<Usage>) {
        self.processes.lock().remove(&self.info.pid);
        if let Some(u) = usage {
            tracing::debug!(
                pid = self.info.pid,
                git = self.info.subcommand,
                user_s = u.user.as_secs_f64(),
                system_s = u.system.as_secs_f64(),
                maxrss = u.max_rss,
                "git finished"
            );
        }
        self.observer.exited(&self.info, usage);
    }
}

//! Counters about the git processes we run, read by the server's metrics and logs.
//!
//! The process table (pid, subcommand, start time) is kept here because the executor is
//! the only place processes start and end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

static STARTED: AtomicU64 = AtomicU64::new(0);
static RUNNING: AtomicU64 = AtomicU64::new(0);

fn by_subcommand() -> &'static Mutex<HashMap<&'static str, (u64, Duration)>> {
    static M: OnceLock<Mutex<HashMap<&'static str, (u64, Duration)>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

tokio::task_local! {
    /// Set by the server around each RPC: the git subcommands it ran, for its log line.
    pub static COMMANDS: Arc<Mutex<Vec<&'static str>>>;
}

pub(crate) fn record_spawn(sub: &'static str, latency: Duration) {
    STARTED.fetch_add(1, Ordering::Relaxed);
    let mut m = by_subcommand().lock().unwrap();
    let e = m.entry(sub).or_default();
    e.0 += 1;
    e.1 += latency;
    let _ = COMMANDS.try_with(|c| c.lock().unwrap().push(sub));
}

pub(crate) fn process_started() {
    RUNNING.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn process_finished(_sub: &'static str, _pid: i32) {
    RUNNING.fetch_sub(1, Ordering::Relaxed);
}

/// Snapshot of executor counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub started: u64,
    pub running: u64,
    /// (subcommand, spawns, total spawn latency)
    pub by_subcommand: Vec<(&'static str, u64, Duration)>,
}

pub fn snapshot() -> Snapshot {
    let mut by: Vec<_> = by_subcommand()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, (n, d))| (*k, *n, *d))
        .collect();
    by.sort_by_key(|e| e.0);
    Snapshot {
        started: STARTED.load(Ordering::Relaxed),
        running: RUNNING.load(Ordering::Relaxed),
        by_subcommand: by,
    }
}

/// Time since `t`, in seconds, for logs.
pub fn secs_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

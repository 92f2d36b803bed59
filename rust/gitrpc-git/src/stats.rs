//! Counters about the git processes we run, read by the server's metrics, diagnostics and
//! logs. Process-wide: every server in the process shares one executor.
//!
//! The process table (pid, subcommand, arguments, start time) is kept here because the
//! executor is the only place processes start and end.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Latency buckets (seconds) for every histogram we export.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Buckets (bytes) for peak memory: 1 MiB … 16 GiB, by powers of 4.
pub const RSS_BUCKETS: &[f64] = &[
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
    17179869184.0,
];

/// A Prometheus-style histogram (lock-free to observe).
pub struct Histogram {
    buckets: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observed values, as `f64` bits.
    sum: AtomicU64,
}

impl Default for Histogram {
    /// Over [`LATENCY_BUCKETS`] (seconds).
    fn default() -> Self {
        Histogram::with_buckets(LATENCY_BUCKETS)
    }
}

impl Histogram {
    pub fn with_buckets(buckets: &'static [f64]) -> Histogram {
        Histogram {
            buckets,
            counts: (0..=buckets.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Upper bounds of the buckets (`+Inf` is implied after them).
    pub fn buckets(&self) -> &'static [f64] {
        self.buckets
    }

    pub fn observe(&self, d: Duration) {
        self.observe_value(d.as_secs_f64());
    }

    pub fn observe_value(&self, v: f64) {
        let i = self
            .buckets
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.buckets.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// Cumulative counts per bucket (the last is `+Inf`, the total), and the sum.
    pub fn cumulative(&self) -> (Vec<u64>, f64) {
        let mut acc = 0;
        let out = self
            .counts
            .iter()
            .map(|c| {
                acc += c.load(Ordering::Relaxed);
                acc
            })
            .collect();
        (out, f64::from_bits(self.sum.load(Ordering::Relaxed)))
    }
}

/// What a finished git process used, from `wait4`-style rusage (its waited-for children,
/// such as `pack-objects` under `upload-pack`, included).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
    /// Peak resident set size in bytes.
    pub max_rss: u64,
}

/// Per subcommand: CPU seconds (user, system) and a peak-RSS histogram.
#[derive(Default)]
pub struct CommandUsage {
    pub finished: AtomicU64,
    user_us: AtomicU64,
    system_us: AtomicU64,
    pub max_rss: Arc<Histogram>,
}

impl CommandUsage {
    pub fn user_seconds(&self) -> f64 {
        self.user_us.load(Ordering::Relaxed) as f64 / 1e6
    }

    pub fn system_seconds(&self) -> f64 {
        self.system_us.load(Ordering::Relaxed) as f64 / 1e6
    }
}

fn usage_table() -> &'static Mutex<HashMap<&'static str, Arc<CommandUsage>>> {
    static M: OnceLock<Mutex<HashMap<&'static str, Arc<CommandUsage>>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

pub(crate) fn record_usage(sub: &'static str, pid: i32, u: Usage) {
    let entry = usage_table()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(sub)
        .or_insert_with(|| {
            Arc::new(CommandUsage {
                max_rss: Arc::new(Histogram::with_buckets(RSS_BUCKETS)),
                ..Default::default()
            })
        })
        .clone();
    entry.finished.fetch_add(1, Ordering::Relaxed);
    entry
        .user_us
        .fetch_add(u.user.as_micros() as u64, Ordering::Relaxed);
    entry
        .system_us
        .fetch_add(u.system.as_micros() as u64, Ordering::Relaxed);
    entry.max_rss.observe_value(u.max_rss as f64);
    tracing::debug!(
        pid,
        git = sub,
        user_s = u.user.as_secs_f64(),
        system_s = u.system.as_secs_f64(),
        maxrss = u.max_rss,
        "git finished"
    );
}

/// Resource usage of finished git processes, by subcommand.
pub fn command_usage() -> Vec<(&'static str, Arc<CommandUsage>)> {
    let mut v: Vec<_> = usage_table()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, u)| (*k, u.clone()))
        .collect();
    v.sort_by_key(|e| e.0);
    v
}

/// A running git process, as the executor knows it.
#[derive(Clone, Debug)]
pub struct LiveProcess {
    pub pid: i32,
    pub subcommand: &'static str,
    pub args: Vec<OsString>,
    pub started: Instant,
}

fn table() -> &'static Mutex<BTreeMap<i32, LiveProcess>> {
    static T: OnceLock<Mutex<BTreeMap<i32, LiveProcess>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

fn spawn_latency() -> &'static Mutex<HashMap<&'static str, Arc<Histogram>>> {
    static M: OnceLock<Mutex<HashMap<&'static str, Arc<Histogram>>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

/// The git processes running now, oldest first.
pub fn live_processes() -> Vec<LiveProcess> {
    let mut v: Vec<_> = table()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    v.sort_by_key(|p| p.started);
    v
}

/// Spawn latency histogram per subcommand.
pub fn spawn_latencies() -> Vec<(&'static str, Arc<Histogram>)> {
    let mut v: Vec<_> = spawn_latency()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, h)| (*k, h.clone()))
        .collect();
    v.sort_by_key(|e| e.0);
    v
}

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
    drop(m);
    let h = spawn_latency()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(sub)
        .or_default()
        .clone();
    h.observe(latency);
    let _ = COMMANDS.try_with(|c| c.lock().unwrap().push(sub));
}

pub(crate) fn process_started(pid: i32, subcommand: &'static str, args: &[OsString]) {
    RUNNING.fetch_add(1, Ordering::Relaxed);
    table().lock().unwrap_or_else(|p| p.into_inner()).insert(
        pid,
        LiveProcess {
            pid,
            subcommand,
            args: args.to_vec(),
            started: Instant::now(),
        },
    );
}

pub(crate) fn process_finished(_sub: &'static str, pid: i32) {
    RUNNING.fetch_sub(1, Ordering::Relaxed);
    table()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&pid);
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

//! The server's metrics: one `prometheus-client` [`Registry`] per server (in its
//! [`crate::Deps`]), so two servers in one process never see each other's counters or git
//! processes. This is the one place that knows metric names.
//!
//! - Events are counted where they happen, into [`Families`]: finished RPCs (by
//!   `accounting.rs`), and every git process through [`GitMetrics`], the [`Observer`] the
//!   server's [`gitrpc_git::Git`] reports to (spawns, spawn latency, CPU and peak memory
//!   from rusage).
//! - State is read at each scrape by [`state::Sources`], a collector over the server's own
//!   parts: limiters, connections, the cat-file pool, the spool, the git process table.
//!
//! [`encode`] writes the Prometheus text format (0.0.4), as `/metrics` serves it.

mod housekeeping;
mod packcache;
mod state;

use std::sync::Arc;
use std::time::Duration;

use gitrpc_git::{LiveProcess, Observer, Usage};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use housekeeping::HousekeepingMetrics;
pub use packcache::{Lookup, PackCacheMetrics};
pub use state::Sources;

/// Latency buckets (seconds) for every duration histogram we export.
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

/// The content type [`encode`]'s text has.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodCode {
    pub method: String,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Method {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Subcommand {
    pub subcommand: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubcommandMode {
    pub subcommand: &'static str,
    pub mode: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

fn rss_histogram() -> Histogram {
    Histogram::new(RSS_BUCKETS.iter().copied())
}

/// Counts of finished RPCs and the calls in flight.
#[derive(Clone)]
pub struct RpcMetrics {
    requests: Family<MethodCode, Counter>,
    duration: Histograms<Method>,
    in_flight: Gauge,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        RpcMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
        }
    }
}

impl RpcMetrics {
    /// A call entered the server (it is in flight, queued ones included).
    pub fn started(&self) {
        self.in_flight.inc();
    }

    /// A call's response ended (or was dropped) with `code` after `took`.
    pub fn finished(&self, method: &str, code: tonic::Code, took: Duration) {
        self.in_flight.dec();
        let method = method.to_string();
        self.requests
            .get_or_create(&MethodCode {
                method: method.clone(),
                code: code_name(code),
            })
            .inc();
        self.duration
            .get_or_create(&Method { method })
            .observe(took.as_secs_f64());
    }
}

impl RpcMetrics {
    /// Finished calls of `method` that ended with `code` (its upper-case name, `"OK"`).
    pub fn count(&self, method: &str, code: &'static str) -> u64 {
        self.requests
            .get(&MethodCode {
                method: method.to_string(),
                code,
            })
            .map_or(0, |c| c.get())
    }
}

/// What the server's git processes did; the [`Observer`] of the server's `Git`.
#[derive(Clone)]
pub struct GitMetrics {
    started: Family<Subcommand, Counter>,
    spawn_seconds: Histograms<Subcommand>,
    cpu_seconds: Family<SubcommandMode, Counter<f64, std::sync::atomic::AtomicU64>>,
    max_rss: Histograms<Subcommand>,
}

impl Default for GitMetrics {
    fn default() -> Self {
        GitMetrics {
            started: Family::default(),
            spawn_seconds: Family::new_with_constructor(latency_histogram),
            cpu_seconds: Family::default(),
            max_rss: Family::new_with_constructor(rss_histogram),
        }
    }
}

impl Observer for GitMetrics {
    fn spawned(&self, p: &LiveProcess, latency: Duration) {
        let sub = Subcommand {
            subcommand: p.subcommand,
        };
        self.started.get_or_create(&sub).inc();
        self.spawn_seconds
            .get_or_create(&sub)
            .observe(latency.as_secs_f64());
    }

    fn exited(&self, p: &LiveProcess, usage: Option<Usage>) {
        let Some(u) = usage else { return };
        let subcommand = p.subcommand;
        for (mode, t) in [("user", u.user), ("system", u.system)] {
            self.cpu_seconds
                .get_or_create(&SubcommandMode { subcommand, mode })
                .inc_by(t.as_secs_f64());
        }
        self.max_rss
            .get_or_create(&Subcommand { subcommand })
            .observe(u.max_rss as f64);
    }
}

/// The metrics a server counts as things happen.
#[derive(Clone, Default)]
pub struct Families {
    pub rpc: RpcMetrics,
    pub git: GitMetrics,
    pub packcache: PackCacheMetrics,
    pub housekeeping: HousekeepingMetrics,
}

impl Families {
    /// The observer to give the server's `Git`.
    pub fn git_observer(&self) -> Arc<dyn Observer> {
        Arc::new(self.git.clone())
    }

    /// A registry with these families and a collector over `sources`.
    pub fn registry(&self, sources: Sources) -> Registry {
        let mut r = Registry::default();
        let (rpc, git) = (&self.rpc, &self.git);
        r.register(
            "gitrpc_rpc_requests",
            "Finished RPCs by method and gRPC code",
            rpc.requests.clone(),
        );
        r.register(
            "gitrpc_rpc_duration_seconds",
            "RPC latency, to the end of the response",
            rpc.duration.clone(),
        );
        r.register(
            "gitrpc_rpcs_in_flight",
            "RPCs being served now (including queued ones)",
            rpc.in_flight.clone(),
        );
        r.register(
            "gitrpc_git_commands_started",
            "git processes started, by subcommand",
            git.started.clone(),
        );
        r.register(
            "gitrpc_git_spawn_seconds",
            "Time to start a git process (posix_spawn), by subcommand",
            git.spawn_seconds.clone(),
        );
        r.register(
            "gitrpc_git_command_cpu_seconds",
            "CPU time of finished git processes (and the children they waited for), from rusage, by subcommand and mode",
            git.cpu_seconds.clone(),
        );
        r.register(
            "gitrpc_git_command_max_rss_bytes",
            "Peak resident memory of finished git processes, from rusage, by subcommand",
            git.max_rss.clone(),
        );
        self.packcache.register(&mut r);
        self.housekeeping.register(&mut r);
        r.register_collector(Box::new(sources));
        r
    }
}

/// The Prometheus text exposition of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String can't fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
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

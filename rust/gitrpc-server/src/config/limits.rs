//! `[[concurrency]]`, `[adaptive_limiting]`, `[pack_objects_limiting]` and `[[rate_limiting]]`.

use std::path::PathBuf;

use serde::Deserialize;

use super::duration;

/// One `[[concurrency]]` entry (Gitaly's keys; `max_per_repo` is accepted for
/// `max_concurrency`, as older Gitaly configs spell it).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Full method name, e.g. `/gitaly.SmartHTTPService/PostUploadPackWithSidechannel`.
    pub rpc: String,
    /// Calls of this RPC running at once per repository (the starting limit if adaptive).
    #[serde(alias = "max_per_repo")]
    pub max_concurrency: usize,
    /// Calls waiting per repository; more are refused at once. 0: no bound (as in Gitaly).
    #[serde(default)]
    pub max_queue_size: usize,
    /// Longest wait in the queue, a Go-style duration ("500ms", "1s", "1m30s"). Unset: no limit.
    #[serde(default, with = "duration::option")]
    pub max_queue_wait: Option<std::time::Duration>,
    /// Adjust the limit between `min_limit` and `max_limit` from measured pressure (AIMD).
    #[serde(default)]
    pub adaptive: bool,
    #[serde(default)]
    pub min_limit: Option<usize>,
    #[serde(default)]
    pub max_limit: Option<usize>,
}

/// `[adaptive_limiting]`: the AIMD loop of adaptive `[[concurrency]]` limits (see
/// `adaptive.rs`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveLimiting {
    /// How often limits are adjusted.
    #[serde(default = "default_adaptive_interval", with = "duration")]
    pub interval: std::time::Duration,
    /// CPU pressure (PSI `some avg10`, percent) at or over which limits back off.
    #[serde(default = "default_cpu_threshold")]
    pub cpu_threshold: f64,
    /// Memory pressure (PSI `some avg10`, percent) at or over which limits back off.
    #[serde(default = "default_memory_threshold")]
    pub memory_threshold: f64,
    /// Factor applied to a limit under pressure.
    #[serde(default = "default_backoff")]
    pub backoff: f64,
    /// Directory with PSI files (`cpu`/`memory` or `cpu.pressure`/`memory.pressure`);
    /// default: this process's cgroup v2 directory, else `/proc/pressure`.
    #[serde(default)]
    pub pressure_dir: Option<PathBuf>,
}

impl Default for AdaptiveLimiting {
    fn default() -> Self {
        AdaptiveLimiting {
            interval: default_adaptive_interval(),
            cpu_threshold: default_cpu_threshold(),
            memory_threshold: default_memory_threshold(),
            backoff: default_backoff(),
            pressure_dir: None,
        }
    }
}

fn default_adaptive_interval() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}
fn default_cpu_threshold() -> f64 {
    50.0
}
fn default_memory_threshold() -> f64 {
    20.0
}
fn default_backoff() -> f64 {
    0.5
}

/// `[pack_objects_limiting]` (Gitaly's keys).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackObjectsLimiting {
    pub max_concurrency: usize,
    /// Waiting pack requests; more are refused at once. 0: no bound.
    #[serde(default, alias = "max_queue_size")]
    pub max_queue_length: usize,
    #[serde(default, with = "duration::option")]
    pub max_queue_wait: Option<std::time::Duration>,
    /// Whose requests share a budget (ours; Gitaly always keys on the client's IP).
    #[serde(default)]
    pub key: LimitKey,
}

/// `[pack_objects_limiting] key`: what one budget of `max_concurrency` (and queue) covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKey {
    /// The whole server.
    #[default]
    Global,
    /// Each client address: the call's `remote_ip` metadata (what gitlab-shell and
    /// workhorse send; calls without it share one budget).
    RemoteIp,
    /// Each user: the call's `user_id` metadata, else `username` (calls with neither share
    /// one budget).
    User,
}

/// One `[[rate_limiting]]` entry: Gitaly's keys (before Gitaly removed rate limiting in
/// favour of concurrency limits) plus `max_delay`: calls of `rpc` get a token every
/// `interval` from a bucket of `burst` per user (or client address); a call beyond the rate
/// waits up to `max_delay` for its token, and only then is refused (see `ratelimit.rs`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitingConfig {
    /// Full method name, e.g. `/gitaly.SSHService/SSHUploadPackWithSidechannel`.
    pub rpc: String,
    /// A token every `interval` ("100ms": 10 calls a second).
    #[serde(with = "duration")]
    pub interval: std::time::Duration,
    /// Tokens a bucket holds (it starts full): calls that may come at once.
    pub burst: u32,
    /// Longest a call waits for its token; 0 (the default) refuses at once, as Gitaly did.
    #[serde(default, with = "duration")]
    pub max_delay: std::time::Duration,
}

//! `[housekeeping]`: what crashes leave behind (see `crate::housekeeping`) and when
//! repositories are optimized in the background (`crate::optimize`); `[daily_maintenance]`:
//! Gitaly's daily window.

use std::time::Duration;

use gitrpc_git::housekeeping::{self as git_hk, Grace};
use serde::Deserialize;

use super::duration;

/// `[housekeeping]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingConfig {
    /// How often the background pass runs (`"0"`: only the one at start-up).
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// Ref lock files younger than this may belong to a running git and are kept (Gitaly's
    /// `ReferenceLockfileGracePeriod`).
    #[serde(default = "default_lock_grace", with = "duration")]
    pub lock_grace: Duration,
    /// Quarantine directories (and private temp entries without an owner) younger than this
    /// are kept (Gitaly's grace for `tmp_objdir` directories).
    #[serde(default = "default_tmp_grace", with = "duration")]
    pub tmp_grace: Duration,
    /// Successful writes (mutator RPCs: pushes, ref updates, operations) to a repository
    /// after which it is optimized in the background (Gitaly's `RPCInterval`); 0: never.
    #[serde(default = "default_after_writes")]
    pub after_writes: u64,
    /// Background optimizations running at once, server-wide (the RPCs don't count).
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

/// `[daily_maintenance]`, Gitaly's keys: every day at `start_hour:start_minute` UTC, for
/// `duration`, optimize the repositories of `storages` one after another in random order.
/// Unlike Gitaly there is no window unless the table is given: every embedded server (each
/// Puma worker, say) would otherwise walk the storages.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyMaintenance {
    #[serde(default = "default_start_hour")]
    pub start_hour: u32,
    #[serde(default)]
    pub start_minute: u32,
    /// How long the walk may go on (at most 24 h; 0 disables it).
    #[serde(default = "default_window", with = "duration")]
    pub duration: Duration,
    /// Storages to walk; absent: all of them, empty: none.
    #[serde(default)]
    pub storages: Option<Vec<String>>,
    #[serde(default)]
    pub disabled: bool,
}

fn default_after_writes() -> u64 {
    20
}
fn default_max_concurrency() -> usize {
    1
}
fn default_start_hour() -> u32 {
    12
}
fn default_window() -> Duration {
    Duration::from_secs(600)
}

fn default_interval() -> Duration {
    Duration::from_secs(3600)
}
fn default_lock_grace() -> Duration {
    git_hk::LOCK_GRACE
}
fn default_tmp_grace() -> Duration {
    git_hk::TMP_OBJDIR_GRACE
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        HousekeepingConfig {
            interval: default_interval(),
            lock_grace: default_lock_grace(),
            tmp_grace: default_tmp_grace(),
            after_writes: default_after_writes(),
            max_concurrency: default_max_concurrency(),
        }
    }
}

impl HousekeepingConfig {
    pub fn grace(&self) -> Grace {
        Grace {
            locks: self.lock_grace,
            tmp_objdirs: self.tmp_grace,
        }
    }
}

impl DailyMaintenance {
    /// Runs at all: not disabled, a non-zero duration, some storage.
    pub fn enabled(&self) -> bool {
        !self.disabled
            && !self.duration.is_zero()
            && self.storages.as_ref().is_none_or(|s| !s.is_empty())
    }
}

//! `[housekeeping]`: what crashes leave behind (see `crate::housekeeping`).

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

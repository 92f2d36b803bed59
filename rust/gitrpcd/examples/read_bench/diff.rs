//! CommitDiff throughput vs `git diff` to /dev/null (step 11, WP-A).

use crate::Args;

pub fn run(_args: &Args) {}

//! RawBlame vs `git blame --porcelain` (step 11, WP-B).

use crate::Args;

pub fn run(_args: &Args) {}

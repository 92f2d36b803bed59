//! ListLastCommitsForTree of a 200-entry directory vs `git log -1 -- <path>` per entry
//! (step 11, WP-B).

use crate::Args;

pub fn run(_args: &Args) {}

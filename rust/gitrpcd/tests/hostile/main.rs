//! The hostile suite (step 7): every case a hostile local client or a real fault found,
//! replayed against a real `gitrpcd` process on a temp socket. After each group the daemon's
//! health is checked: alive, RSS near its baseline, no leaked file descriptors, no git
//! process left, nothing of ours left in the storage's private directory.
#![allow(clippy::disallowed_methods)] // starts the daemon and git as processes

mod harness;

/// Exhaustion: oversized and slow input, connection floods, idle sessions, the spool.
mod exhaustion;
/// Faults: killed git processes, stale locks, a killed daemon, removed storage, leftovers.
mod faults;
/// Memory of the step 11 reads: CommitDiff of a 200 MB diff with limits set stays under a fixed
/// RSS budget (`memory_diff`, WP-A); GetArchive of a 500 MB tree streams (`memory_archive`,
/// WP-C).
mod memory_archive;
mod memory_diff;
/// Security: config options, the private directory, repositories' own hooks, path spellings.
mod security;

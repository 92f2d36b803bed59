//! Housekeeping against a real `gitrpcd`: repositories are repacked, pruned and their refs
//! packed while clients read, clone and push through it, and every answer stays right.
#![allow(clippy::disallowed_methods)] // drives the daemon and git as processes

#[path = "../hostile/harness.rs"]
mod harness;

/// OptimizeRepository (eager and heuristical), PruneUnreachableObjects and the background
/// scheduler (after pushes) under concurrent reads, clones and pushes.
mod reads;

//! The git object and reference layer against real repositories: tree parsing and lookup
//! (SHA-1 and SHA-256), reference transactions and how their failures are classified, and
//! what the step 11 reads rely on (`reads`, `lastcommits`: the one-walk last commits against
//! `git log -1` per entry).
//! (A binary of its own: `executor` counts the cat-file processes its tests start.)
#![allow(clippy::disallowed_methods)] // tests build fixtures with the git CLI

mod common;
mod lastcommits;
mod reads;
mod transaction;
mod trees;
mod writes;

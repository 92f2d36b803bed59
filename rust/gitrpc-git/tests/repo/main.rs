//! The git object and reference layer against real repositories: tree parsing and lookup
//! (SHA-1 and SHA-256), reference transactions and how their failures are classified.
//! (A binary of its own: `executor` counts the cat-file processes its tests start.)
#![allow(clippy::disallowed_methods)] // tests build fixtures with the git CLI

mod common;
mod transaction;
mod trees;
mod writes;

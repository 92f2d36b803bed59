//! The one door for running git.
//!
//! Every process gitrpc starts goes through [`Git`]: git is run by the absolute path resolved
//! once at start-up, with a cleared environment plus an allowlist, in its own process group,
//! always through `posix_spawn` (no `pre_exec`, no uid/gid, absolute program path), so the
//! cost of a spawn does not grow with the parent's memory. Arguments go through a validated
//! [`Command`] builder; long-lived `git cat-file --batch-command` processes are pooled in
//! [`CatFilePool`]; refs of `files`-backend repositories are read natively by [`refs`].
//! Every git names the server process that started it, so git left running after that
//! process died can be found and killed ([`lifetime`]); [`housekeeping`] finds what a git
//! killed mid-way leaves in a repository (ref locks, quarantine directories).

mod catfile;
pub mod client_config;
mod command;
mod error;
mod executor;
pub mod housekeeping;
pub mod lifetime;
pub mod objects;
pub mod observer;
pub mod pktline;
mod process;
pub mod refs;
pub mod spool;
pub mod validate;

pub use catfile::{CatFile, CatFilePool, CatFilePoolConfig, Lease, ObjectInfo, ObjectType};
pub use client_config::ClientConfig;
pub use command::{Command, Subcommand};
pub use error::{Error, Result};
pub use executor::{Git, ENV_ALLOWLIST};
pub use observer::{LiveProcess, Observer, Processes, Usage};
pub use process::{Output, Process, TERM_GRACE};

/// Bytes of stderr kept from each git process.
pub fn process_stderr_cap() -> usize {
    process::STDERR_CAP
}

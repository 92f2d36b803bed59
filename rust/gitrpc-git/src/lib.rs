//! The one door for running git, and what gitrpc knows about git.
//!
//! Every process gitrpc starts goes through [`Git::spawn`]: git is run by the absolute path
//! resolved once at start-up, with a cleared environment plus an allowlist, in its own
//! process group, always through `posix_spawn` (no `pre_exec`, no uid/gid, absolute program
//! path), so the cost of a spawn does not grow with the parent's memory.
//!
//! - [`Description`]: one entry per [`Subcommand`] (Gitaly's `command_description.go`):
//!   `--end-of-options`, the revision rule, default config, client config, ref writes.
//! - [`Command`]: a command line as plain data, checked against its description; its
//!   argument vector is a pure function ([`Command::args`]).
//! - [`CatFilePool`]: long-lived `git cat-file --batch-command` processes; [`objects`]:
//!   commits, tags and trees parsed, typed reads and the tree walker.
//! - [`RefTransaction`]: reference updates over `update-ref --stdin`; [`RefError`] and
//!   [`ReadError`]: git's failures, classified once from its stderr.
//! - [`refs`]: refs of `files`-backend repositories read natively.
//! - [`tree_edit`]: trees edited in memory and written with `mktree`; [`merge`]:
//!   `merge-tree --write-tree` run and parsed; [`hook`]: hook executables run like git.
//! - [`packobjects`]: what upload-pack asks of `pack-objects` through its hook, checked.
//! - [`external`]: the same door for the few other programs gitrpc's tools run (an
//!   operator's access-check executable).
//! - [`lifetime`]: every git names the server process that started it, so git left running
//!   after that process died can be found and killed; [`housekeeping`] finds what a git
//!   killed mid-way leaves in a repository (ref locks, quarantine directories).

mod catfile;
pub mod client_config;
mod command;
pub mod commitlog;
mod description;
mod error;
mod executor;
pub mod external;
mod failure;
mod fill;
pub mod hook;
pub mod housekeeping;
pub mod lastcommits;
pub mod lifetime;
pub mod merge;
pub mod objects;
pub mod observer;
pub mod packobjects;
pub mod pktline;
mod process;
pub mod refs;
pub mod spool;
mod transaction;
pub mod tree_edit;
pub mod validate;

pub use catfile::{CatFile, CatFilePool, CatFilePoolConfig, Lease, ObjectInfo, ObjectType};
pub use client_config::ClientConfig;
pub use command::{Command, MAX_ARG, MAX_ARGS_TOTAL};
pub use description::{
    is_pseudo_revision, ConfigValue, Description, Revisions, Subcommand, GLOBAL_CONFIG,
    PSEUDO_REVISIONS, PSEUDO_REVISION_PREFIXES,
};
pub use error::{Error, Result};
pub use executor::{Git, ENV_ALLOWLIST};
pub use failure::{log_revision_missing, BlameError, ReadError, RefError};
pub use fill::fill;
pub use observer::{LiveProcess, Observer, Processes, Usage};
pub use process::{Output, Process, TERM_GRACE};
pub use transaction::RefTransaction;

/// Bytes of stderr kept from each git process.
pub fn process_stderr_cap() -> usize {
    process::STDERR_CAP
}

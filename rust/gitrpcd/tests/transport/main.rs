//! The real git CLI through `gitrpc-ssh` against the real daemon (or a server embedded in the
//! test process): clones, fetches, pushes, archives, the spool and cancellation (`cli`), and
//! the hook chain of pushes (`push_hooks`).
#![allow(clippy::disallowed_methods)] // drives git, the daemon and gitrpc-ssh as processes

mod cli;
mod push_hooks;
mod support;

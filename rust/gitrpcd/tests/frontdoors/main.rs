//! The front doors against real programs on loopback: OpenSSH's sshd (Debian's
//! `openssh-server`, started by the tests in a private mount namespace with its own host key
//! and `authorized_keys`) running `gitrpc-shell` for each key, real `git` clients over
//! `ssh://`, a real `gitrpcd`, and the application's access check as an executable and as a
//! small HTTP server in the test.
//!
//! **Needs root** (CI runs as root): sshd is started as root inside `unshare -m` with a
//! private tmpfs on `/run` (its privilege-separation directory `/run/sshd` does not exist on
//! this machine, and `AuthorizedKeysCommand` must live on a path only root can write). Not
//! root: every test fails, loudly, rather than skipping.
#![allow(clippy::disallowed_methods)] // drives sshd, ssh, git and gitrpcd as processes

#[path = "../hostile/harness.rs"]
mod harness;
mod support;

/// The access check over HTTP (`access_url`): allowed, refused, a failing and an unreachable
/// application (fail closed).
mod access;
/// `authorized-keys` mode: sshd's AuthorizedKeysCommand asks gitrpc-shell for the key line.
mod keys;
/// `[pack_objects_cache]` behind the door: N identical clones at once run one pack-objects.
mod packcache;
/// `[[rate_limiting]]` end to end: 50 sessions at once through sshd, smoothed or refused.
mod ratelimit;
/// `[servers]`: a storage mapped to a second gitrpcd (its own token) is served there, the
/// others by `address`; that server down fails only its storage's sessions.
mod routing;
/// Sessions through sshd + gitrpc-shell: clone, fetch, push, archive, protocol v2, path
/// spellings; a refused key, a read-only key, a pre-receive rejection (and the identity the
/// hook saw); commands that are refused before anything runs.
mod ssh;

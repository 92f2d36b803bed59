//! Gitaly's own transports against a real `gitrpcd`: backchannel connections and the
//! sidechannel upload-pack RPCs, driven by real git through `gitrpc-ssh`, by an independent Go
//! client (hashicorp/yamux + grpc-go, built from `interop/go/` with Debian's packages), and by
//! hand for the faults. The daemon serves a unix socket and a TLS port, with `/metrics`.
#![allow(clippy::disallowed_methods)] // drives the daemon, git and the Go client as processes

#[path = "../hostile/harness.rs"]
mod harness;
mod support;

/// git clone/fetch through `gitrpc-ssh` (sidechannel by default, the streaming RPC with
/// `--no-sidechannel` or against a server without the mux).
mod clones;
/// Unanswered handshakes, resets and half-closes mid-pack, garbage after `backchannel`,
/// broken framing, a killed client: codes, slots released, no git left, daemon healthy.
mod faults;
/// The Go client: gitlab-shell's SSH path, workhorse's HTTP path, a raw fetch checked by
/// `git index-pack`, auth tokens.
mod interop;

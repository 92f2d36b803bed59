//! The pack-objects cache (`[pack_objects_cache]`) against a real `gitrpcd`: real git clones
//! through `gitrpc-ssh` (the streaming SSHUploadPack and the sidechannel) and through the Go
//! client acting as workhorse (PostUploadPackWithSidechannel), pack-objects counted from the
//! daemon's own metrics, faults made with real processes and signals.
#![allow(clippy::disallowed_methods)] // drives the daemon, git and the Go client as processes

#[path = "../hostile/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../sidechannel/support.rs"]
mod support;

/// Servers with the cache, repositories, concurrent clones, metrics and diagnostics.
mod cache;
/// The fast path: protocol-v2 fetches of a cached pack served without upload-pack relaying
/// it; what it must not serve.
mod direct;
/// Killed generations, a full disk, `max_bytes` with a pack being read, `max_age`, slow and
/// leaving readers.
mod faults;
/// Different requests get different entries; a push makes the next fetch a miss.
mod keys;
/// `[pack_objects_limiting]` with the cache: misses only, keyed by client.
mod limits;
/// N identical concurrent fetches through every path run one pack-objects.
mod storms;

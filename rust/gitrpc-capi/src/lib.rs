//! The C ABI of gitrpc (`libgitrpc.so`, `libgitrpc.a`, `include/gitrpc.h`).
//!
//! A thin adapter: every function converts C arguments, calls `gitrpc-client` /
//! `gitrpc-server` on the process's fork-aware runtime, and converts the answer back.
//!
//! - [`error`]: `gitrpc_error`, the FFI guard (NULL checks, panics → `INTERNAL`).
//! - [`client`]: `gitrpc_client` (connect, deadline, free).
//! - [`storages`]: storage routing options (remote servers, embedded ones).
//! - [`server`]: `gitrpc_server` (embedded server from TOML, in-process client).
//! - [`calls`]: typed calls for the common RPCs, strings and buffers.
//! - [`commit`]: `gitrpc_commit` and `gitrpc_signature`, opaque, with accessors.
//! - [`diff`]: `gitrpc_commit_diff` (CommitDiff, one `gitrpc_diff` per file to a callback).
//! - [`operations`]: commit files, create/delete a branch, merge (OperationService).
//! - [`raw`]: unary and server-streaming calls with protobuf bytes, by method name.

#![allow(non_camel_case_types)]
// Every extern fn checks its pointers itself; the safety contract is in each doc comment.
#![allow(clippy::missing_safety_doc)]

/// The version of the C ABI: the shared library's SONAME is `libgitrpc.so.<this>`
/// (`libgitrpc.<this>.dylib` on macOS). Goes up by one with every change that breaks a
/// compiled caller (a function removed, renamed, or given another signature or meaning; a
/// public type's layout or an enum value changed); adding functions does not change it.
/// build.rs reads this line.
pub const GITRPC_ABI_VERSION: u32 = 1;

pub mod calls;
pub mod client;
pub mod commit;
pub mod diff;
pub mod error;
pub mod operations;
pub mod raw;
pub mod server;
pub mod storages;

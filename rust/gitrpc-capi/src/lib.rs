//! The C ABI of gitrpc (`libgitrpc.so`, `libgitrpc.a`, `include/gitrpc.h`).
//!
//! A thin adapter: every function converts C arguments, calls `gitrpc-client` /
//! `gitrpc-server` on the process's fork-aware runtime, and converts the answer back.
//!
//! - [`error`]: `gitrpc_error`, the FFI guard (NULL checks, panics → `INTERNAL`).
//! - [`client`]: `gitrpc_client` (connect, deadline, free).
//! - [`server`]: `gitrpc_server` (embedded server from TOML, in-process client).
//! - [`calls`]: typed calls for the common RPCs, `gitrpc_commit`, strings and buffers.
//! - [`raw`]: unary and server-streaming calls with protobuf bytes, by method name.

#![allow(non_camel_case_types)]
// Every extern fn checks its pointers itself; the safety contract is in each doc comment.
#![allow(clippy::missing_safety_doc)]

pub mod calls;
pub mod client;
pub mod error;
pub mod raw;
pub mod server;

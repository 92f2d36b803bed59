//! gitrpc's gRPC server: Gitaly-compatible services over the `gitrpc-git` executor.
//!
//! - [`config`]: the TOML config shared by `gitrpcd`, the C API and the Ruby gem.
//! - [`locator`]: repository → path, with the storage-escape checks.
//! - [`services`]: one file per gRPC service; [`server::routes`] wires them with health and
//!   reflection; [`server::run`] serves them on any incoming stream until `shutdown`.
//! - [`serving`]: a started server (listeners bound from the config) and in-process dispatch.
//! - [`limiter`], [`admission`]: concurrency limits with bounded queues, applied per RPC and
//!   repository before handlers run, and to pack generation.
//! - [`auth`]: Gitaly's v2 token, checked on every call that comes over a listener.
//! - [`unknown`]: `UNIMPLEMENTED` with a message for methods and services we don't have.
//! - [`monitor`]: Prometheus metrics and diagnostics on their own thread and listener.
//! - [`conn`], [`frames`]: resource bounds on clients: the connection cap, handshake and idle
//!   deadlines, and the request message size limit.
//! - [`mux`], [`tls`]: every listener's first bytes decide between plain HTTP/2 and a
//!   Gitaly `backchannel` session (yamux), after TLS if any; [`sidechannel`] and
//!   [`negotiation`]: the sidechannels those sessions carry for the upload-pack RPCs.

pub mod adaptive;
pub mod admission;
pub mod auth;
pub mod batch;
pub mod config;
pub mod conn;
pub mod convert;
pub mod deps;
pub mod error;
pub mod frames;
pub mod hooks;
pub mod housekeeping;
pub mod limiter;
pub mod locator;
pub mod monitor;
pub mod mux;
pub mod negotiation;
pub mod quarantine;
mod rpclog;
pub mod server;
pub mod services;
pub mod serving;
pub mod sidechannel;
pub mod signature;
pub mod stream;
pub mod tempdir;
pub mod tls;
pub mod unknown;

pub use config::Config;
pub use deps::Deps;
pub use error::Error;
pub use hooks::{HookEvent, HookFn, HookKind, Hooks, Protocol, RefChange, Rejected, User};
pub use server::{routes, run, run_tls};
pub use serving::{InProcess, Serving};

//! gitrpc's gRPC server: Gitaly-compatible services over the `gitrpc-git` executor. The
//! modules form layers (ARCHITECTURE.md; a test keeps imports pointing down):
//!
//! - [`config`]: the TOML config shared by `gitrpcd`, the C API and the Ruby gem, checked
//!   once into [`config::Valid`]; [`startup`]: why a server did not start, and its code.
//! - [`deps`]: the server's shared parts; [`locator`]: repository → path, with the
//!   storage-escape checks.
//! - [`layers`]: the stack every call passes — [`rpclog`] (with [`accounting`]),
//!   [`deadline`], [`unknown`], [`auth`], [`admission`] (with [`limits`], [`limiter`],
//!   [`frames`]) — then [`server::routes`] and [`services`], one file per gRPC service.
//! - [`server::run`] serves on any incoming stream until `shutdown` ([`conn`]: the connection
//!   cap and deadlines); [`serving`]: a started server (listeners bound from the config) and
//!   in-process dispatch.
//! - [`metrics`]: one `prometheus-client` registry per server; [`monitor`]: `/metrics` and
//!   `/diagnostics` on their own thread; [`adaptive`]: AIMD limits on PSI; [`housekeeping`]:
//!   what crashes leave behind; [`optimize`]: OptimizeRepository and the background
//!   scheduler that runs it after writes and in a daily window.
//! - [`packcache`]: the pack-objects cache (`[pack_objects_cache]`), reached by git's
//!   pack-objects hook through a FIFO bridge per upload-pack session.
//! - [`pusher`]: who is pushing (what front doors send), for the push's hooks;
//!   [`ratelimit`]: `[[rate_limiting]]`, calls per RPC and user smoothed, then refused (a
//!   layer between auth and admission).
//! - [`mux`], [`tls`]: every listener's first bytes decide between plain HTTP/2 and a
//!   Gitaly `backchannel` session (yamux), after TLS if any; [`sidechannel`] and
//!   [`negotiation`]: the sidechannels those sessions carry for the upload-pack RPCs.

pub mod accounting;
pub mod adaptive;
pub mod admission;
pub mod auth;
pub mod batch;
pub mod config;
pub mod conn;
pub mod convert;
pub mod deadline;
pub mod deps;
pub mod error;
pub mod frames;
pub mod hooks;
pub mod housekeeping;
pub mod layers;
pub mod limiter;
pub mod limits;
pub mod locator;
pub mod metrics;
pub mod monitor;
pub mod mux;
pub mod negotiation;
pub mod optimize;
pub mod packcache;
pub mod pusher;
pub mod quarantine;
pub mod ratelimit;
pub mod rpclog;
pub mod server;
pub mod services;
pub mod serving;
pub mod sidechannel;
pub mod signature;
pub mod startup;
pub mod stream;
pub mod tempdir;
pub mod tls;
pub mod unknown;

pub use config::{Config, ConfigError};
pub use deps::Deps;
pub use error::Error;
pub use hooks::{HookEvent, HookFn, HookKind, Hooks, Protocol, RefChange, Rejected, User};
pub use server::{routes, run, run_tls};
pub use serving::{InProcess, Serving};
pub use startup::{ServeError, StartError};

//! [`StartError`]: why a server did not start, and the one mapping of it to a gRPC code
//! that the C API and the Ruby gem report.

use std::io;
use std::path::PathBuf;

use tonic::{Code, Status};

use crate::config::ConfigError;

/// Why [`crate::Serving::start`] failed. Nothing is left running or bound when it does.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config can't be served (`INVALID_ARGUMENT`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound. `key` is the config key (`socket_path`,
    /// `listen_addr`, ...); an address another process listens on has kind `AddrInUse`
    /// (`ALREADY_EXISTS`).
    #[error("bind {key} {addr}: {source}")]
    Bind {
        key: &'static str,
        addr: String,
        #[source]
        source: io::Error,
    },
    /// `[tls]`: the certificate or key can't be read or used.
    #[error("tls: {path}: {message}")]
    Tls { path: String, message: String },
    /// `[auth] token_file` can't be read.
    #[error("auth.token_file {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A storage root can't be created or resolved.
    #[error("storage {name:?} at {}: {source}", path.display())]
    Storage {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// git can't be found or run.
    #[error(transparent)]
    Git(#[from] gitrpc_git::Error),
    /// Something else the server needs at start-up (its hooks directory, the monitor's
    /// thread) can't be made.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

impl From<std::convert::Infallible> for StartError {
    fn from(never: std::convert::Infallible) -> StartError {
        match never {}
    }
}

impl StartError {
    /// The gRPC code embedders report: a bad config is `INVALID_ARGUMENT`, an address
    /// another process listens on `ALREADY_EXISTS` (the address is taken: starting again
    /// won't help until that process lets go of it, so it isn't the retryable
    /// `UNAVAILABLE`), a bind the user may not make `PERMISSION_DENIED`; anything else the
    /// machine can't do now (a storage, git, a certificate file) is `UNAVAILABLE`.
    pub fn code(&self) -> Code {
        match self {
            StartError::Config(_) => Code::InvalidArgument,
            StartError::Bind { source, .. } => match source.kind() {
                io::ErrorKind::AddrInUse => Code::AlreadyExists,
                io::ErrorKind::PermissionDenied => Code::PermissionDenied,
                _ => Code::Unavailable,
            },
            _ => Code::Unavailable,
        }
    }
}

impl From<StartError> for Status {
    /// `config: ...` for a bad config, `start server: ...` otherwise.
    fn from(e: StartError) -> Status {
        let message = match &e {
            StartError::Config(c) => c.to_string(),
            other => format!("start server: {other}"),
        };
        Status::new(e.code(), message)
    }
}

/// Why a running server's listener stopped ([`crate::Serving::failed`]).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("server task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

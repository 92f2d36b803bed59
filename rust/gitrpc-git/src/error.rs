use std::io;

/// Errors from running git. The server maps them to gRPC codes in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// User input that must never reach git (option injection, NUL, bad ref names).
    #[error("{0}")]
    InvalidArgument(String),
    /// git could not be started at all.
    #[error("spawn git {subcommand}: {source}")]
    Spawn {
        subcommand: &'static str,
        #[source]
        source: io::Error,
    },
    /// git ran and failed; `stderr` holds its (capped) error output.
    #[error("git {subcommand} failed ({status}): {stderr}")]
    Failed {
        subcommand: &'static str,
        status: String,
        stderr: String,
    },
    /// Reading from or writing to git failed.
    #[error("git {subcommand}: {source}")]
    Io {
        subcommand: &'static str,
        #[source]
        source: io::Error,
    },
    /// git printed something we could not parse.
    #[error("git {subcommand}: unexpected output: {detail}")]
    Protocol {
        subcommand: &'static str,
        detail: String,
    },
    /// The git binary is missing or unusable.
    #[error("git not usable: {0}")]
    Setup(String),
}

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// The exit code git reported, if this is a failure of a finished git.
    pub fn stderr(&self) -> Option<&str> {
        match self {
            Error::Failed { stderr, .. } => Some(stderr),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

use std::io;

use crate::failure::{ReadError, RefError};
use crate::Subcommand;

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
    /// git ran and failed for a reason not classified below; `stderr` holds its (capped)
    /// error output.
    #[error("git {subcommand} failed ({status}): {stderr}")]
    Failed {
        subcommand: &'static str,
        status: String,
        stderr: String,
    },
    /// git could not write references, for the reason its stderr gave (classified once, in
    /// [`RefError::classify`]).
    #[error("git {subcommand}: {error}: {stderr}")]
    Ref {
        subcommand: &'static str,
        error: RefError,
        stderr: String,
    },
    /// A reading git failed for a reason callers tell apart ([`ReadError::classify`]).
    #[error("git {subcommand}: {error}: {stderr}")]
    Read {
        subcommand: &'static str,
        error: ReadError,
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

    /// The failure of a git that ran and exited non-zero, classified by what its stderr
    /// says ([`RefError`] for subcommands that write references, [`ReadError`] otherwise).
    pub fn failed(sub: Subcommand, status: String, stderr: String) -> Error {
        let subcommand = sub.as_str();
        if sub.description().updates_refs {
            if let Some(error) = RefError::classify(&stderr) {
                return Error::Ref {
                    subcommand,
                    error,
                    stderr,
                };
            }
        } else if let Some(error) = ReadError::classify(&stderr) {
            return Error::Read {
                subcommand,
                error,
                stderr,
            };
        }
        Error::Failed {
            subcommand,
            status,
            stderr,
        }
    }

    /// git ran and exited non-zero (whether or not its failure was classified).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Error::Failed { .. } | Error::Ref { .. } | Error::Read { .. }
        )
    }

    /// The (capped) stderr of a git that ran and failed.
    pub fn stderr(&self) -> Option<&str> {
        match self {
            Error::Failed { stderr, .. }
            | Error::Ref { stderr, .. }
            | Error::Read { stderr, .. } => Some(stderr),
            _ => None,
        }
    }

    /// Why git could not write references, if that is what failed.
    pub fn ref_error(&self) -> Option<&RefError> {
        match self {
            Error::Ref { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Did git fail on a lock file (another writer, or one killed mid-update)?
    pub fn is_locked(&self) -> bool {
        matches!(self.ref_error(), Some(RefError::Locked { .. }))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

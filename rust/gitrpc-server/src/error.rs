//! The server's error type and its one mapping to gRPC status codes.

use gitrpc_git::RefError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Git(#[from] gitrpc_git::Error),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// A configured storage whose root is gone (`NOT_FOUND`, as Gitaly answers); kept apart
    /// from a missing repository, which some RPCs answer without an error.
    #[error("storage does not exist: {0:?}")]
    StorageNotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Internal(String),
    /// A status made elsewhere (with its code and details), passed on as is.
    #[error("{}", .0.message())]
    Status(Box<Status>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    pub fn code(&self) -> Code {
        match self {
            Error::Git(gitrpc_git::Error::InvalidArgument(_)) => Code::InvalidArgument,
            Error::Git(gitrpc_git::Error::Ref { error, .. }) => ref_code(error),
            Error::Git(_) => Code::Internal,
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) | Error::StorageNotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Aborted(_) => Code::Aborted,
            Error::Internal(_) => Code::Internal,
            Error::Status(s) => s.code(),
        }
    }
}

/// The code of a failed reference update, by what git said (RefService's contract for
/// UpdateReferences and DeleteRefs; RPCs with another contract map the type themselves).
fn ref_code(e: &RefError) -> Code {
    match e {
        RefError::Mismatch { .. } | RefError::AlreadyExists { .. } => Code::Aborted,
        RefError::MissingObject { .. } | RefError::NonCommitObject { .. } => Code::InvalidArgument,
        RefError::Locked { .. }
        | RefError::FileDirectoryConflict { .. }
        | RefError::InTransactionConflict { .. } => Code::FailedPrecondition,
        RefError::InvalidFormat { .. } | RefError::MultipleUpdates { .. } => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::Status(s) => *s,
            e => Status::new(e.code(), e.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

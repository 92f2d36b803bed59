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

/// `google.rpc.Status`, the payload of `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// An error with one structured detail, as Gitaly sends it: `message` with the `gitaly.<name>`
/// message `detail` (the RPC's own `User...Error` wrapper) in `grpc-status-details-bin`.
pub fn detailed(
    code: Code,
    message: impl Into<String>,
    name: &str,
    detail: &impl prost::Message,
) -> Error {
    let message = message.into();
    let status = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: format!("type.googleapis.com/gitaly.{name}"),
            value: detail.encode_to_vec(),
        }],
    };
    Error::Status(Box::new(Status::with_details(
        code,
        message,
        bytes::Bytes::from(prost::Message::encode_to_vec(&status)),
    )))
}

/// An error with a code of our choosing and no detail.
pub fn coded(code: Code, message: impl Into<String>) -> Error {
    Error::Status(Box::new(Status::new(code, message.into())))
}

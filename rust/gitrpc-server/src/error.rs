//! The server's error type and its one mapping to gRPC status codes.

use bytes::Bytes;
use gitrpc_git::RefError;
use prost::Message;
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
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A status with one structured detail, as Gitaly's `structerr.WithDetail`
    /// (`RawBlameError`, `FindCommitsError`...): [`Error::detailed`].
    #[error("{message}")]
    Detailed {
        code: Code,
        message: String,
        detail: prost_types::Any,
    },
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

    /// `code` and `message` with `detail` attached, named `gitaly.<type_name>` (e.g.
    /// `"RawBlameError"`): what Gitaly's clients decode from `grpc-status-details-bin`.
    pub fn detailed(
        code: Code,
        message: impl Into<String>,
        type_name: &str,
        detail: &impl Message,
    ) -> Self {
        Error::Detailed {
            code,
            message: message.into(),
            detail: any(type_name, detail),
        }
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
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Detailed { code, .. } => *code,
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
            Error::Detailed {
                code,
                message,
                detail,
            } => status_with_details(code, message, vec![detail]),
            e => Status::new(e.code(), e.to_string()),
        }
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

/// `message` packed as an `Any` named `gitaly.<type_name>`.
pub fn any(type_name: &str, message: &impl Message) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/gitaly.{type_name}"),
        value: message.encode_to_vec(),
    }
}

/// A status carrying `details` in a `google.rpc.Status`, as grpc-go sends them.
pub fn status_with_details(code: Code, message: String, details: Vec<prost_types::Any>) -> Status {
    let status = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details,
    };
    Status::with_details(code, message, Bytes::from(status.encode_to_vec()))
}

/// The detail `gitaly.<type_name>` of `status`, decoded (for clients and tests).
pub fn detail<M: Message + Default>(status: &Status, type_name: &str) -> Option<M> {
    let st = RpcStatus::decode(status.details()).ok()?;
    let suffix = format!("/gitaly.{type_name}");
    st.details
        .iter()
        .find(|a| a.type_url.ends_with(&suffix))
        .and_then(|a| M::decode(a.value.as_slice()).ok())
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(e.to_string())
    }
}

/// An error with one structured detail, as Gitaly sends it: `message` with the `gitaly.<name>`
/// message `detail` (the RPC's own `User...Error` wrapper) in `grpc-status-details-bin`.
pub fn detailed(
    code: Code,
    message: impl Into<String>,
    name: &str,
    detail: &impl prost::Message,
) -> Error {
    Error::detailed(code, message, name, detail)
}

/// An error with a code of our choosing and no detail.
pub fn coded(code: Code, message: impl Into<String>) -> Error {
    Error::Status(Box::new(Status::new(code, message.into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitrpc_proto::gitaly::{PathNotFoundError, RawBlameError};

    #[test]
    fn detailed_errors_carry_gitaly_details() {
        let blame = RawBlameError {
            error: Some(gitrpc_proto::gitaly::raw_blame_error::Error::PathNotFound(
                PathNotFoundError {
                    path: b"caf\xe9".to_vec(),
                },
            )),
        };
        let e = Error::detailed(
            Code::NotFound,
            "path not found in revision",
            "RawBlameError",
            &blame,
        );
        assert_eq!(e.code(), Code::NotFound);
        let status = Status::from(e);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "path not found in revision");
        let st = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(
            (st.code, st.message.as_str()),
            (5, "path not found in revision")
        );
        assert_eq!(
            st.details[0].type_url,
            "type.googleapis.com/gitaly.RawBlameError"
        );
        assert_eq!(
            detail::<RawBlameError>(&status, "RawBlameError"),
            Some(blame)
        );
        assert_eq!(detail::<RawBlameError>(&status, "FindCommitsError"), None);
    }
}

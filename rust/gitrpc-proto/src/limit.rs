//! Gitaly's refusal for load: `RESOURCE_EXHAUSTED` with a `gitaly.LimitError` detail in
//! `grpc-status-details-bin` (a `google.rpc.Status`). gitlab-shell and workhorse look for the
//! detail to tell "busy" from other failures.

use prost::Message;
use tonic::{Code, Status};

use crate::gitaly::LimitError;

/// `google.rpc.Status`, the payload of `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

const TYPE_URL: &str = "type.googleapis.com/gitaly.LimitError";

/// `RESOURCE_EXHAUSTED` with `message`, carrying `LimitError { error_message: reason,
/// retry_after }`.
pub fn status(message: String, reason: &str, retry_after: std::time::Duration) -> Status {
    let detail = LimitError {
        error_message: reason.to_string(),
        retry_after: Some(prost_types::Duration {
            seconds: retry_after.as_secs() as i64,
            nanos: retry_after.subsec_nanos() as i32,
        }),
    };
    let st = RpcStatus {
        code: Code::ResourceExhausted as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: TYPE_URL.to_string(),
            value: detail.encode_to_vec(),
        }],
    };
    Status::with_details(Code::ResourceExhausted, message, st.encode_to_vec().into())
}

/// The `LimitError` detail of a status, if it has one.
pub fn limit_error(status: &Status) -> Option<LimitError> {
    let st = RpcStatus::decode(status.details()).ok()?;
    st.details
        .iter()
        .find(|a| a.type_url.ends_with("/gitaly.LimitError"))
        .and_then(|a| LimitError::decode(a.value.as_slice()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = status(
            "rate limit reached".into(),
            "rate limit reached",
            std::time::Duration::from_millis(1500),
        );
        assert_eq!(s.code(), Code::ResourceExhausted);
        let e = limit_error(&s).unwrap();
        assert_eq!(e.error_message, "rate limit reached");
        let d = e.retry_after.unwrap();
        assert_eq!((d.seconds, d.nanos), (1, 500_000_000));
        assert!(limit_error(&Status::resource_exhausted("x")).is_none());
    }
}

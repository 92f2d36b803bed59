//! Admission control: the tower layer that applies the `[[concurrency]]` limiters
//! (`limits.rs`) before a call reaches its handler.
//!
//! The layer reads the call's first request message (every Gitaly request carries its
//! repository in field 1) and decodes the repository — once per call, here: the key is the
//! limiter's queue and is recorded on the call ([`Call::set_repository`]) for the
//! diagnostics page and the log line. It waits for a slot, then hands the call on with the
//! message put back. The slot is held until the response body ends or is
//! dropped, so a streaming RPC counts for as long as it streams. A refused call gets
//! `RESOURCE_EXHAUSTED` with a `gitaly.LimitError` detail without running anything.
//!
//! Every request body passes through [`Checked`]: a message over `max_message_bytes` is
//! refused from its length prefix. For the first message the layer answers itself, before the
//! handler runs and without reading the payload.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use prost::Message;
use tonic::body::Body as TonicBody;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::accounting::Call;
use crate::frames::Checked;
use crate::limiter::Permit;
use crate::limits::{limit_status, Limits};

#[derive(Clone)]
pub struct AdmissionLayer {
    limits: Arc<Limits>,
    max_message: usize,
}

impl AdmissionLayer {
    /// `max_message`: the largest request message accepted (`max_message_bytes`).
    pub fn new(limits: Arc<Limits>, max_message: usize) -> AdmissionLayer {
        AdmissionLayer {
            limits,
            max_message,
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;
    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            limits: self.limits.clone(),
            max_message: self.max_message,
        }
    }
}

#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    limits: Arc<Limits>,
    max_message: usize,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Admission<S>
where
    S: Service<http::Request<TonicBody>, Response = http::Response<TonicBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<TonicBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let limiter = self.limits.by_rpc.get(path).cloned();
        let gitaly = path.starts_with("/gitaly.");
        let max = self.max_message;
        let req = req.map(|b| Checked::new(b, max));
        // Gitaly calls are read up to their first message for the repository (the limit's key
        // and the diagnostics page); health and reflection pass straight through.
        if limiter.is_none() && !gitaly {
            return Box::pin(self.inner.call(req.map(TonicBody::new)));
        }
        // The ready service answers this call; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let (first, body) = match first_message(body).await {
                Ok(v) => v,
                Err(status) => return Ok(status.into_http()),
            };
            let key = repository_key(parts.uri.path(), first.get(5..).unwrap_or_default());
            if let Some(call) = parts.extensions.get::<Arc<Call>>() {
                if !key.is_empty() {
                    call.set_repository(key.clone());
                }
            }
            let permit = match &limiter {
                None => None,
                Some(l) => match l.acquire(&key).await {
                    Ok(p) => Some(p),
                    Err(why) => return Ok(limit_status(why, l).into_http()),
                },
            };
            let body = TonicBody::new(Prefixed {
                prefix: Some(first),
                inner: body,
            });
            let resp = inner.call(http::Request::from_parts(parts, body)).await?;
            Ok(match permit {
                None => resp,
                Some(permit) => resp.map(|b| {
                    TonicBody::new(Holding {
                        inner: b,
                        permit: Some(permit),
                    })
                }),
            })
        })
    }
}

/// Read the first gRPC message frame (5-byte header + payload) off the body, which refuses
/// an oversized one from its prefix (that refusal is returned as is).
async fn first_message<B>(mut body: B) -> Result<(Bytes, B), Status>
where
    B: Body<Data = Bytes, Error = Status> + Unpin,
{
    let mut buf = BytesMut::new();
    loop {
        if buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() >= 5 + len {
                return Ok((buf.freeze(), body));
            }
            buf.reserve(5 + len - buf.len());
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(mut data) = frame.into_data() {
                    while data.has_remaining() {
                        let chunk = data.chunk();
                        buf.extend_from_slice(chunk);
                        let n = chunk.len();
                        data.advance(n);
                    }
                }
            }
            Some(Err(e)) if e.code() == Code::ResourceExhausted => return Err(e),
            Some(Err(e)) => {
                return Err(Status::cancelled(format!(
                    "reading request: {}",
                    e.message()
                )))
            }
            // The client sent no (complete) message: let the handler answer as usual.
            None => return Ok((buf.freeze(), body)),
        }
    }
}

/// Only the repository of a request (field 1 in every Gitaly request but one).
#[derive(Clone, PartialEq, prost::Message)]
struct RepositoryOnly {
    #[prost(message, optional, tag = "1")]
    repository: Option<gitrpc_proto::gitaly::Repository>,
}

/// UserCommitFiles' first message: the header (field 1 of a oneof) holds the repository in
/// its field 1 (read as a `Repository`, the header would give its `user` as the storage).
#[derive(Clone, PartialEq, prost::Message)]
struct HeaderOnly {
    #[prost(message, optional, tag = "1")]
    header: Option<RepositoryOnly>,
}

/// The repository of a request's first message.
fn repository_of(path: &str, message: &[u8]) -> Option<gitrpc_proto::gitaly::Repository> {
    match path {
        "/gitaly.OperationService/UserCommitFiles" => HeaderOnly::decode(message)
            .ok()
            .and_then(|m| m.header)
            .and_then(|h| h.repository),
        _ => RepositoryOnly::decode(message)
            .ok()
            .and_then(|m| m.repository),
    }
}

/// `storage/relative_path` of the request's repository ("" if it has none or is compressed),
/// with the path in its canonical spelling, so `a.git`, `./a.git` and `x/../a.git` share one
/// budget. Paths the locator refuses share one key (their handler answers
/// `INVALID_ARGUMENT` at once). The empty key is still a key: such calls share one queue.
fn repository_key(path: &str, message: &[u8]) -> String {
    repository_of(path, message)
        .map(|r| {
            let path = crate::locator::normalize(&r.relative_path)
                .unwrap_or_else(|_| "(invalid)".to_string());
            format!("{}/{}", r.storage_name, path)
        })
        .unwrap_or_default()
}

/// A request body with bytes already read put back in front.
struct Prefixed<B> {
    prefix: Option<Bytes>,
    inner: B,
}

impl<B> Body for Prefixed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(p) = self.prefix.take() {
            if !p.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(p))));
            }
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.as_ref().is_none_or(|p| p.is_empty()) && self.inner.is_end_stream()
    }
}

/// A response body that holds the call's slot until it ends or is dropped.
struct Holding {
    inner: TonicBody,
    permit: Option<Permit>,
}

impl Body for Holding {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = &res {
            self.permit = None;
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitrpc_proto::gitaly::*;

    #[test]
    fn repository_of_commit_files_is_in_the_header() {
        let repository = Some(Repository {
            storage_name: "default".into(),
            relative_path: "./g/../a.git".into(),
            ..Default::default()
        });
        let first = UserCommitFilesRequest {
            user_commit_files_request_payload: Some(
                user_commit_files_request::UserCommitFilesRequestPayload::Header(
                    UserCommitFilesRequestHeader {
                        repository: repository.clone(),
                        user: Some(User {
                            gl_id: "user-1".into(),
                            name: b"Jane".to_vec(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ),
            ),
        };
        let bytes = first.encode_to_vec();
        assert_eq!(
            repository_key("/gitaly.OperationService/UserCommitFiles", &bytes),
            "default/a.git"
        );
        let merge = UserMergeBranchRequest {
            repository,
            user: Some(User::default()),
            ..Default::default()
        };
        assert_eq!(
            repository_key(
                "/gitaly.OperationService/UserMergeBranch",
                &merge.encode_to_vec()
            ),
            "default/a.git"
        );
    }
}

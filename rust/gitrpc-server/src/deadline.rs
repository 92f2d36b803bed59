//! The client's deadline (`grpc-timeout`) on the response *body*. tonic applies it only
//! until the response headers (and not at all in-process), so a streaming RPC (an
//! upload-pack waiting on a silent client) would otherwise outlive it. When the deadline
//! passes mid-stream the body ends with `DEADLINE_EXCEEDED` trailers and the handler's
//! stream is dropped, which kills its git.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame};
use tonic::body::Body as TonicBody;
use tower::{Layer, Service};

#[derive(Clone, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = http::Response<TonicBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_timeout)
            .map(|d| tokio::time::Instant::now() + d);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let Some(deadline) = deadline else {
                return Ok(resp);
            };
            Ok(resp.map(|body| {
                TonicBody::new(Bounded {
                    inner: body,
                    sleep: Some(Box::pin(tokio::time::sleep_until(deadline))),
                    expired: false,
                })
            }))
        })
    }
}

/// A response body cut off at the deadline.
struct Bounded {
    inner: TonicBody,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

/// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n).
pub(crate) fn parse_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn deadline_trailers() -> http::HeaderMap {
    let mut t = http::HeaderMap::new();
    t.insert("grpc-status", http::HeaderValue::from_static("4"));
    t.insert(
        "grpc-message",
        http::HeaderValue::from_static("deadline%20exceeded"),
    );
    t
}

impl Body for Bounded {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(None);
        }
        let res = Pin::new(&mut this.inner).poll_frame(cx);
        if res.is_pending() {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_ready() {
                    // Replace the handler's body so its stream (and git) is dropped now.
                    this.expired = true;
                    this.inner = TonicBody::empty();
                    return Poll::Ready(Some(Ok(Frame::trailers(deadline_trailers()))));
                }
            }
        }
        if let Poll::Ready(None) = &res {
            this.sleep = None;
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_timeout("700m"), Some(Duration::from_millis(700)));
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(
            parse_timeout("99999999n"),
            Some(Duration::from_nanos(99999999))
        );
        assert_eq!(parse_timeout("123456789S"), None);
        assert_eq!(parse_timeout("10x"), None);
        assert_eq!(parse_timeout("S"), None);
        assert_eq!(parse_timeout("-1S"), None);
    }
}

//! A tower layer that writes one log line per RPC: method, gRPC code, duration and the git
//! subcommands it ran. The line is written when the response ends (trailers seen) or is
//! dropped (client went away), so streaming RPCs are logged with their real duration.
//!
//! It also enforces the client's `grpc-timeout` on the response *body*: tonic applies the
//! deadline only until the response headers, so a streaming RPC (an upload-pack waiting on a
//! silent client) would otherwise outlive it. When the deadline passes mid-stream the body
//! ends with `DEADLINE_EXCEEDED` and the handler's stream is dropped, which kills its git.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Body, Frame};
use tonic::body::Body as TonicBody;
use tower::{Layer, Service};

use crate::monitor::{CallGuard, Rpcs};

/// Also counts each call in the server's [`Rpcs`] (metrics, in-flight table).
#[derive(Clone)]
pub struct RpcLogLayer {
    rpcs: Arc<Rpcs>,
}

impl RpcLogLayer {
    pub fn new(rpcs: Arc<Rpcs>) -> RpcLogLayer {
        RpcLogLayer { rpcs }
    }
}

impl<S> Layer<S> for RpcLogLayer {
    type Service = RpcLog<S>;
    fn layer(&self, inner: S) -> RpcLog<S> {
        RpcLog {
            inner,
            rpcs: self.rpcs.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcLog<S> {
    inner: S,
    rpcs: Arc<Rpcs>,
}

struct Entry {
    method: String,
    start: Instant,
    commands: Arc<Mutex<Vec<&'static str>>>,
    code: Option<String>,
    rpcs: Arc<Rpcs>,
    _call: CallGuard,
    /// Keeps the call's connection from being closed as idle while it runs.
    _stream: Option<crate::conn::StreamGuard>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let code = self.code.as_deref().unwrap_or("1");
        let code_name = tonic::Code::from_i32(code.parse().unwrap_or(2));
        self.rpcs
            .finish(&self.method, code_name, self.start.elapsed());
        let git = self
            .commands
            .lock()
            .map(|c| c.join(","))
            .unwrap_or_default();
        tracing::info!(
            grpc.method = %self.method,
            grpc.code = ?code_name,
            duration_ms = self.start.elapsed().as_secs_f64() * 1000.0,
            git = %git,
            "finished rpc"
        );
    }
}

impl<S, B> Service<http::Request<B>> for RpcLog<S>
where
    S: Service<http::Request<B>, Response = http::Response<TonicBody>> + Send + 'static,
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

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let call = self.rpcs.begin(req.uri().path());
        // The admission layer fills in the repository once it has read the request.
        req.extensions_mut().insert(call.repository.clone());
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_timeout)
            .map(|d| tokio::time::Instant::now() + d);
        let commands = Arc::new(Mutex::new(Vec::new()));
        let mut entry = Entry {
            method: req.uri().path().to_string(),
            start: Instant::now(),
            commands: commands.clone(),
            code: None,
            rpcs: self.rpcs.clone(),
            _call: call,
            _stream: req
                .extensions()
                .get::<crate::conn::ConnInfo>()
                .map(|c| c.stream()),
        };
        let fut = gitrpc_git::stats::COMMANDS.scope(commands, self.inner.call(req));
        Box::pin(async move {
            let resp = fut.await?;
            if let Some(code) = resp.headers().get("grpc-status") {
                entry.code = code.to_str().ok().map(str::to_string);
            }
            Ok(resp.map(|body| {
                TonicBody::new(LoggedBody {
                    inner: body,
                    entry,
                    deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
                    expired: false,
                })
            }))
        })
    }
}

struct LoggedBody {
    inner: TonicBody,
    entry: Entry,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

/// `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n).
fn parse_timeout(v: &str) -> Option<Duration> {
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

impl Body for LoggedBody {
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
            if let Some(sleep) = this.deadline.as_mut() {
                if sleep.as_mut().poll(cx).is_ready() {
                    // Replace the handler's body so its stream (and git) is dropped now.
                    this.expired = true;
                    this.inner = TonicBody::empty();
                    this.entry.code = Some("4".into());
                    return Poll::Ready(Some(Ok(Frame::trailers(deadline_trailers()))));
                }
            }
        }
        if let Poll::Ready(Some(Ok(frame))) = &res {
            if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                this.entry.code = code.to_str().ok().map(str::to_string);
            }
        }
        if let Poll::Ready(None) = &res {
            this.deadline = None;
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

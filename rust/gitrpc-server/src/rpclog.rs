//! A tower layer that writes one log line per RPC: method, gRPC code, duration and the git
//! subcommands it ran. The line is written when the response ends (trailers seen) or is
//! dropped (client went away), so streaming RPCs are logged with their real duration.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame};
use tonic::body::Body as TonicBody;
use tower::{Layer, Service};

#[derive(Clone, Default)]
pub struct RpcLogLayer;

impl<S> Layer<S> for RpcLogLayer {
    type Service = RpcLog<S>;
    fn layer(&self, inner: S) -> RpcLog<S> {
        RpcLog { inner }
    }
}

#[derive(Clone)]
pub struct RpcLog<S> {
    inner: S,
}

struct Entry {
    method: String,
    start: Instant,
    commands: Arc<Mutex<Vec<&'static str>>>,
    code: Option<String>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let code = self.code.as_deref().unwrap_or("1");
        let code_name = tonic::Code::from_i32(code.parse().unwrap_or(2));
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

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let commands = Arc::new(Mutex::new(Vec::new()));
        let mut entry = Entry {
            method: req.uri().path().to_string(),
            start: Instant::now(),
            commands: commands.clone(),
            code: None,
        };
        let fut = gitrpc_git::stats::COMMANDS.scope(commands, self.inner.call(req));
        Box::pin(async move {
            let resp = fut.await?;
            if let Some(code) = resp.headers().get("grpc-status") {
                entry.code = code.to_str().ok().map(str::to_string);
            }
            Ok(resp.map(|body| TonicBody::new(LoggedBody { inner: body, entry })))
        })
    }
}

struct LoggedBody {
    inner: TonicBody,
    entry: Entry,
}

impl Body for LoggedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let res = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &res {
            if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                this.entry.code = code.to_str().ok().map(str::to_string);
            }
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

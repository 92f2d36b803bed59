//! The outermost layer: every call is accounted for ([`crate::accounting`]: in flight, then
//! counted in the metrics) and logged in one line — method, gRPC code, duration,
//! repository and the git subcommands it ran. The line is written when the response ends
//! (trailers seen) or is dropped (client went away), so streaming RPCs are logged with their
//! real duration. A mutator that ended `OK` is counted as a write to its repository by the
//! housekeeping scheduler ([`crate::optimize::Scheduler::wrote`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame};
use tonic::body::Body as TonicBody;
use tower::{Layer, Service};

use crate::accounting::{CallGuard, Rpcs};
use crate::optimize::Scheduler;

#[derive(Clone)]
pub struct RpcLogLayer {
    rpcs: Arc<Rpcs>,
    scheduler: Option<Arc<Scheduler>>,
}

impl RpcLogLayer {
    /// `scheduler`: told about every successful write.
    pub fn new(rpcs: Arc<Rpcs>, scheduler: Option<Arc<Scheduler>>) -> RpcLogLayer {
        RpcLogLayer { rpcs, scheduler }
    }
}

impl<S> Layer<S> for RpcLogLayer {
    type Service = RpcLog<S>;
    fn layer(&self, inner: S) -> RpcLog<S> {
        RpcLog {
            inner,
            rpcs: self.rpcs.clone(),
            scheduler: self.scheduler.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcLog<S> {
    inner: S,
    rpcs: Arc<Rpcs>,
    scheduler: Option<Arc<Scheduler>>,
}

struct Entry {
    start: Instant,
    code: Option<String>,
    rpcs: Arc<Rpcs>,
    scheduler: Option<Arc<Scheduler>>,
    call: CallGuard,
    /// Keeps the call's connection from being closed as idle while it runs.
    _stream: Option<crate::conn::StreamGuard>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let code = self.code.as_deref().unwrap_or("1");
        let code_name = tonic::Code::from_i32(code.parse().unwrap_or(2));
        let call = &self.call.call;
        self.rpcs
            .finish(&call.method, code_name, self.start.elapsed());
        tracing::info!(
            grpc.method = %call.method,
            grpc.code = ?code_name,
            duration_ms = self.start.elapsed().as_secs_f64() * 1000.0,
            repository = call.repository().unwrap_or(""),
            git = %call.commands().join(","),
            "finished rpc"
        );
        if let (tonic::Code::Ok, Some(s), Some(repo)) =
            (code_name, &self.scheduler, call.repository())
        {
            if gitrpc_proto::methods::is_mutator(&call.method) {
                s.wrote(repo);
            }
        }
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
        let guard = self.rpcs.begin(req.uri().path());
        let call = guard.call.clone();
        call.set_caller(gitrpc_proto::identity::Identity::caller(req.headers()));
        // Inner layers (admission records the repository) and handlers read it here.
        req.extensions_mut().insert(call.clone());
        let mut entry = Entry {
            start: Instant::now(),
            code: None,
            rpcs: self.rpcs.clone(),
            scheduler: self.scheduler.clone(),
            call: guard,
            _stream: req
                .extensions()
                .get::<crate::conn::ConnInfo>()
                .map(|c| c.stream()),
        };
        let fut = call.scope(self.inner.call(req));
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
        let res = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &res {
            if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                self.entry.code = code.to_str().ok().map(str::to_string);
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

//! The monitor's HTTP/1 server: `hyper` on a current-thread runtime of its own, on the
//! monitor's dedicated OS thread — never the gRPC runtime, so it answers while every gRPC
//! worker is busy or stuck.
//!
//! One request per connection. Up to [`MAX_CONCURRENT`] connections are served at once, so
//! a slow client can't hold up a scrape; more are closed at once. A connection gets
//! [`REQUEST_DEADLINE`] in all to send its request head (hyper's header read timeout: a
//! deadline, not per read, so a client trickling a byte at a time is cut off too) and
//! [`CONNECTION_DEADLINE`] in all. The server's dependencies are held (upgraded from a weak
//! reference) only while a page is rendered.
//!
//! Why hyper and not a blocking server crate: `tiny_http` has no request deadline at all
//! (and starts a thread per connection without bound), `astra` no header timeout; hyper
//! has both, is already in the tree (tonic's), and on its own small runtime here costs one
//! thread like the blocking server it replaces.

use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{oneshot, Semaphore};

use crate::deps::Deps;

/// Connections served at once.
pub const MAX_CONCURRENT: usize = 8;
/// Time a connection has to send its whole request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Time a connection may take in all (request and answer).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(15);

/// Serve `listener` until `stop` fires (or its sender is dropped). Runs on the calling
/// thread, with a runtime of its own.
pub fn serve(listener: std::net::TcpListener, deps: Weak<Deps>, stop: oneshot::Receiver<()>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "monitor: no runtime; /metrics is not served");
            return;
        }
    };
    rt.block_on(async move {
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "monitor: listener unusable");
                return;
            }
        };
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
        tokio::pin!(stop);
        loop {
            let conn = tokio::select! {
                _ = &mut stop => return,
                c = listener.accept() => c,
            };
            let stream = match conn {
                Ok((s, _)) => s,
                Err(_) => {
                    // Out of fds or similar: don't spin on a connection we can't accept.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Past the limit the connection is dropped: closed at once.
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let deps = deps.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let service = service_fn(move |req| {
                    let page = answer(&deps, &req);
                    async move { Ok::<_, Infallible>(page) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(REQUEST_DEADLINE)
                    .max_buf_size(16 * 1024)
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service);
                let _ = tokio::time::timeout(CONNECTION_DEADLINE, conn).await;
            });
        }
    });
}

fn answer<B>(deps: &Weak<Deps>, req: &http::Request<B>) -> http::Response<Full<Bytes>> {
    let (status, ctype, body) = match deps.upgrade() {
        Some(deps) => super::page(&deps, req.method().as_str(), req.uri().path()),
        None => (503, "text/plain", "server stopped\n".to_string()),
    };
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, ctype)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

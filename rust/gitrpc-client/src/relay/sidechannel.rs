//! A fetch through `SSHUploadPackWithSidechannel` (see the parent module's docs), and the
//! stdin/stdout wrappers it needs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use gitrpc_proto::gitaly::SshUploadPackWithSidechannelRequest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::{Request, Status};

use super::Session;
use crate::Options;

/// `SSHUploadPackWithSidechannel` over a backchannel connection, with git's exit status
/// (0: the call succeeded; a failed upload-pack is a failed call). `None`: the server does
/// not offer it (see the module docs) and not a byte of stdin was read, so the streaming RPC
/// may take over.
pub async fn upload_pack(
    session: &Session,
    opts: &Options,
    request: SshUploadPackWithSidechannelRequest,
) -> Option<Result<i32, Status>> {
    let opts = Options {
        backchannel: true,
        ..opts.clone()
    };
    let client = crate::Client::connect(&session.address, &opts).await.ok()?;
    let touched = Arc::new(AtomicBool::new(false));
    let stdin = Touched {
        inner: tokio::io::stdin(),
        touched: touched.clone(),
    };
    let stdout = Paced::new(super::stdout::Stdout::new(), session.limit_rate);
    let mut request = Request::new(request);
    session.identity.apply(request.metadata_mut());
    let result = client
        .ssh_upload_pack_with_sidechannel(request, stdin, stdout, tokio::io::stderr())
        .await;
    match result {
        Ok(_) => Some(Ok(0)),
        Err(s) if !touched.load(Ordering::SeqCst) && not_offered(s.code()) => None,
        Err(s) => Some(Err(s)),
    }
}

/// A failure that says the server has no sidechannel for us rather than anything about the
/// request.
fn not_offered(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unavailable | Cancelled | Unknown | Unimplemented | FailedPrecondition
    )
}

/// Records whether anything was read (a fallback must not lose what git sent).
struct Touched<R> {
    inner: R,
    touched: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Touched<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.touched.store(true, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// A writer held to `rate` bytes per second on average (`--limit-rate`).
struct Paced<W> {
    inner: W,
    rate: Option<u64>,
    started: std::time::Instant,
    sent: u64,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<W> Paced<W> {
    fn new(inner: W, rate: Option<u64>) -> Paced<W> {
        Paced {
            inner,
            rate: rate.filter(|r| *r > 0),
            started: std::time::Instant::now(),
            sent: 0,
            pause: None,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Paced<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(pause) = self.pause.as_mut() {
            std::task::ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.sent += n as u64;
        if let Some(rate) = self.rate {
            let due = std::time::Duration::from_secs_f64(self.sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(self.started.elapsed()) {
                self.pause = Some(Box::pin(tokio::time::sleep(wait)));
            }
        }
        Poll::Ready(Ok(n))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

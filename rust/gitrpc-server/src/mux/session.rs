//! A backchannel session: the yamux *server* side of a connection that began with
//! `backchannel`. One task drives it (all its socket IO); the first stream the client opens
//! carries the HTTP/2 connection tonic serves; handlers open one more stream per sidechannel
//! call through a [`SidechannelOpener`].
//!
//! Gitaly's server (hashicorp/yamux) accepts exactly one client-opened stream (backlog 1); so
//! do we: every later inbound stream is reset at once. The reverse gRPC connection Gitaly
//! offers on server-opened streams is only used by Praefect's voting and is not served.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

/// How long the client has, after `backchannel`, to open its gRPC stream.
pub const FIRST_STREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing a finished session may take before its socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

type OpenReply = oneshot::Sender<yamux::Result<yamux::Stream>>;

/// The yamux configuration of both ends. Windows start at yamux's 256 KiB and are auto-tuned
/// per stream from the measured round trip (Gitaly's server fixes 16 MiB instead; on the
/// server only requests are received, so the difference only matters to the client, whose
/// window carries the pack). Data frames of 64 KiB (default 16 KiB) for throughput.
pub fn config() -> yamux::Config {
    let mut cfg = yamux::Config::default();
    // At most 512 streams × 256 KiB = 128 MiB of initial windows; bound the total a session
    // may buffer below yamux's default of 1 GiB.
    cfg.set_max_connection_receive_window(Some(256 << 20));
    cfg.set_split_send_size(64 << 10);
    cfg
}

/// Opens sidechannel streams on one session (a handle to its driving task). Cheap to clone.
#[derive(Clone)]
pub struct SidechannelOpener {
    open: mpsc::Sender<OpenReply>,
}

impl SidechannelOpener {
    /// A new server-opened stream. Fails when the session has ended.
    pub async fn open_stream(&self) -> std::io::Result<yamux::Stream> {
        let gone = || std::io::Error::other("the session has ended");
        let (tx, rx) = oneshot::channel();
        self.open.send(tx).await.map_err(|_| gone())?;
        rx.await
            .map_err(|_| gone())?
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Start driving `conn`: returns the opener and a receiver of the client's first stream.
/// The task ends (closing the session) when the client's first stream doesn't come, when
/// `grpc_gone` fires or its sender is dropped (tonic is done with the gRPC stream), or when
/// the connection fails or the client closes it.
pub fn spawn<T>(
    conn: yamux::Connection<T>,
    grpc_gone: oneshot::Receiver<()>,
) -> (SidechannelOpener, oneshot::Receiver<yamux::Stream>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (open_tx, open_rx) = mpsc::channel(64);
    let (first_tx, first_rx) = oneshot::channel();
    tokio::spawn(drive(conn, open_rx, first_tx, grpc_gone));
    (SidechannelOpener { open: open_tx }, first_rx)
}

async fn drive<T>(
    mut conn: yamux::Connection<T>,
    mut open_rx: mpsc::Receiver<OpenReply>,
    first_tx: oneshot::Sender<yamux::Stream>,
    mut grpc_gone: oneshot::Receiver<()>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut first_tx = Some(first_tx);
    let mut pending: Option<OpenReply> = None;
    let mut requests_open = true;
    let first_deadline = tokio::time::sleep(FIRST_STREAM_TIMEOUT);
    tokio::pin!(first_deadline);
    std::future::poll_fn(|cx| loop {
        if first_tx.is_some() && first_deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if Pin::new(&mut grpc_gone).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if pending.is_none() && requests_open {
            match open_rx.poll_recv(cx) {
                Poll::Ready(Some(reply)) => pending = Some(reply),
                Poll::Ready(None) => requests_open = false,
                Poll::Pending => {}
            }
        }
        if let Some(reply) = pending.take() {
            if reply.is_closed() {
                continue; // the handler gave up waiting
            }
            match conn.poll_new_outbound(cx) {
                Poll::Ready(r) => {
                    let _ = reply.send(r);
                    continue;
                }
                Poll::Pending => pending = Some(reply),
            }
        }
        // Polled every turn: this does all of the session's socket IO.
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(stream))) => {
                match first_tx.take() {
                    Some(tx) => {
                        let _ = tx.send(stream);
                    }
                    None => drop(stream), // a second client-opened stream: reset
                }
                continue;
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "backchannel session failed");
                return Poll::Ready(());
            }
            Poll::Ready(None) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await;
    // Streams still held by handlers see the end (reads EOF, writes fail) once `conn` drops.
    let _ = tokio::time::timeout(
        CLOSE_TIMEOUT,
        std::future::poll_fn(|cx| conn.poll_close(cx)),
    )
    .await;
}

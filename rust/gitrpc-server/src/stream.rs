//! Server-streaming helpers. `spawn_stream` runs the producer in its own task and stops it
//! (dropping any git it runs, which kills their process groups) as soon as the client goes
//! away, even while the producer is blocked reading from git. [`Sink::send_reader`] streams
//! raw output in Gitaly's 128 KiB messages; listings batch with [`crate::batch`].

use std::future::Future;
use std::pin::Pin;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Response, Status};

use crate::error::{Error, Result};

/// Bytes per message of raw output (Gitaly's `streamio.WriteBufferSize`): RawBlame,
/// GetArchive, commit and tag messages, signed text, search matches, blob data.
pub const WRITE_BUFFER: usize = 128 * 1024;

pub type RpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Sending half given to producers.
pub struct Sink<T> {
    tx: mpsc::Sender<Result<T, Status>>,
}

impl<T> Sink<T> {
    /// Send one message; fails (ending the producer) if the client is gone.
    pub async fn send(&self, item: T) -> Result<()> {
        self.tx
            .send(Ok(item))
            .await
            .map_err(|_| Error::internal("client went away"))
    }

    /// Send `items` in order; stops at the first that can't be sent.
    pub async fn send_all(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        for item in items {
            self.send(item).await?;
        }
        Ok(())
    }

    /// Send everything `reader` yields, unchanged, in messages of [`WRITE_BUFFER`] bytes
    /// (each full but the last) built by `wrap`; returns the bytes sent. Nothing is sent for
    /// an empty reader. One buffer at a time is held.
    pub async fn send_reader<R: AsyncRead + Unpin + ?Sized>(
        &self,
        reader: &mut R,
        mut wrap: impl FnMut(Vec<u8>) -> T,
    ) -> Result<u64> {
        let mut sent = 0;
        loop {
            let mut buf = vec![0u8; WRITE_BUFFER];
            let n = gitrpc_git::fill(reader, &mut buf).await?;
            if n == 0 {
                return Ok(sent);
            }
            buf.truncate(n);
            sent += n as u64;
            self.send(wrap(buf)).await?;
        }
    }
}

/// A sink and the receiving end of its channel, for producers whose output does not become
/// a gRPC stream (the sidechannel RPCs write it to a sidechannel instead).
pub fn channel<T>(capacity: usize) -> (Sink<T>, mpsc::Receiver<Result<T, Status>>) {
    let (tx, rx) = mpsc::channel(capacity);
    (Sink { tx }, rx)
}

/// Stream what `producer` sends; its error, if any, ends the stream with that status.
pub fn spawn_stream<T, F, Fut>(producer: F) -> Response<RpcStream<T>>
where
    T: Send + 'static,
    F: FnOnce(Sink<T>) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    let fut = producer(Sink { tx: tx.clone() });
    tokio::spawn(async move {
        tokio::select! {
            _ = tx.closed() => {}
            res = fut => if let Err(e) = res {
                let _ = tx.send(Err(e.into())).await;
            }
        }
    });
    Response::new(Box::pin(ReceiverStream::new(rx)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn readers_stream_in_full_messages() {
        let total = 2 * WRITE_BUFFER + 5;
        let (mut w, mut r) = tokio::io::duplex(1000);
        tokio::spawn(async move {
            // Short writes: messages are still full.
            for chunk in vec![7u8; total].chunks(999) {
                w.write_all(chunk).await.unwrap();
            }
        });
        let resp = spawn_stream(move |sink| async move {
            let n = sink.send_reader(&mut r, |b| b).await?;
            assert_eq!(n, total as u64);
            sink.send_all([vec![1], vec![2]]).await
        });
        let sizes: Vec<usize> = resp.into_inner().map(|m| m.unwrap().len()).collect().await;
        assert_eq!(sizes, [WRITE_BUFFER, WRITE_BUFFER, 5, 1, 1]);
    }
}

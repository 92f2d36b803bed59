//! Server-streaming helpers. `spawn_stream` runs the producer in its own task and stops it
//! (dropping any git it runs, which kills their process groups) as soon as the client goes
//! away, even while the producer is blocked reading from git.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Response, Status};

use crate::error::{Error, Result};

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

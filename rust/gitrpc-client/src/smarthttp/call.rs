//! [`Call`]: the RPC behind one smart-HTTP request, streaming both ways through bounded
//! channels, so neither the request body nor the response is ever held whole: the adapter
//! writes body chunks in (waiting while the RPC is behind) and reads response chunks out.
//!
//! The RPC runs as its own task, so bytes keep moving while the adapter does something else
//! (reads the next chunk of its request body, say); dropping the `Call` aborts the task,
//! which cancels the RPC (the server kills its git). It cannot deadlock with a request
//! still being written: the server drains git's output into its spool independently of the
//! response stream (with `[spool] enabled = false`, a huge receive-pack report could stall a
//! writer that never reads; git's own requests and reports are small).
//!
//! Like `gitrpc-ssh`, these calls have no deadline: a clone takes as long as it takes, and
//! the server's `[transport] idle_timeout` ends sessions that stop moving.

use std::io::Write;

use bytes::Bytes;
use futures::StreamExt;
use gitrpc_proto::gitaly::smart_http_service_client::SmartHttpServiceClient;
use gitrpc_proto::gitaly::*;
use gitrpc_proto::identity::Identity;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{Encoding, Endpoint, Reply};
use crate::sshcmd::Action;
use crate::Client;

/// Chunks queued each way before the writer (or the RPC) waits.
const QUEUE: usize = 8;
/// Largest chunk passed on: decompressed input is cut to this size.
const CHUNK: usize = 64 * 1024;
/// Compressed bytes inflated in one step (deflate expands at most ~1032x: ≤ ~1 MiB out).
const INFLATE_STEP: usize = 1024;

/// What to call.
#[derive(Clone, Debug)]
pub struct Request {
    pub endpoint: Endpoint,
    pub repository: Repository,
    /// `version=2` or empty (see [`super::git_protocol`]).
    pub git_protocol: String,
    /// The user the application authorised: metadata on the call, and a push's `gl_id`,
    /// `gl_username`, `gl_repository`.
    pub identity: Identity,
    /// How the request body is encoded (POSTs).
    pub encoding: Encoding,
}

/// A running smart-HTTP RPC (see the module docs).
pub struct Call {
    input: Option<mpsc::Sender<Bytes>>,
    gzip: Option<flate2::write::GzDecoder<Vec<u8>>>,
    output: mpsc::Receiver<Result<Bytes, Status>>,
    /// The first chunk, taken by [`Call::failure`] to learn whether the RPC started well.
    pending: Option<Bytes>,
    /// A failure of our own (the body could not be decoded), answered before anything else.
    failed: Option<Reply>,
    task: tokio::task::AbortHandle,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Call {
    /// Start the RPC on the current tokio runtime.
    pub fn start(client: &Client, req: Request) -> Call {
        let (in_tx, in_rx) = mpsc::channel(QUEUE);
        let (out_tx, out_rx) = mpsc::channel(QUEUE);
        let gzip = (req.encoding == Encoding::Gzip)
            .then(|| flate2::write::GzDecoder::new(Vec::with_capacity(CHUNK)));
        let input = matches!(req.endpoint, Endpoint::Post(_)).then_some(in_tx);
        let task = tokio::spawn(run(client.clone(), req, in_rx, out_tx));
        Call {
            input,
            gzip,
            output: out_rx,
            pending: None,
            failed: None,
            task: task.abort_handle(),
        }
    }

    /// Pass a piece of the request body on, waiting while the RPC is behind. `false`: the
    /// call takes no more input (it ended, failed, or the body was bad): stop writing and
    /// ask [`Call::failure`].
    pub async fn write(&mut self, data: Bytes) -> bool {
        if self.input.is_none() || self.failed.is_some() {
            return false;
        }
        if self.gzip.is_none() {
            return self.send(data).await;
        }
        for piece in data.chunks(INFLATE_STEP) {
            let step = self.gzip.as_mut().map(|d| d.write_all(piece));
            if let Some(Err(e)) = step {
                return self.bad_body(e);
            }
            if !self.drain_inflated().await {
                return false;
            }
        }
        true
    }

    /// The body is complete.
    pub async fn close_write(&mut self) {
        if self.failed.is_none() && self.input.is_some() {
            if let Some(d) = self.gzip.as_mut() {
                match d.try_finish() {
                    Ok(()) => {
                        self.drain_inflated().await;
                    }
                    Err(e) => {
                        self.bad_body(e);
                    }
                }
            }
        }
        self.gzip = None;
        self.input = None;
    }

    /// Wait for the RPC's first answer: `None` if it started well (its first chunk is kept
    /// for [`Call::read`]), else the HTTP answer for its failure.
    pub async fn failure(&mut self) -> Option<Reply> {
        if let Some(r) = self.failed.take() {
            return Some(r);
        }
        if self.pending.is_some() {
            return None;
        }
        match self.output.recv().await {
            Some(Ok(data)) => {
                self.pending = Some(data);
                None
            }
            Some(Err(s)) => Some(Reply::from_status(&s)),
            None => None,
        }
    }

    /// The next chunk of the response; `None` at its end. An error here comes after the
    /// answer's headers: all the adapter can do is end the body early.
    pub async fn read(&mut self) -> Option<Result<Bytes, Status>> {
        if let Some(data) = self.pending.take() {
            return Some(Ok(data));
        }
        if let Some(r) = self.failed.take() {
            return Some(Err(Status::invalid_argument(r.body.trim_end().to_string())));
        }
        self.output.recv().await
    }

    async fn send(&mut self, data: Bytes) -> bool {
        if data.is_empty() {
            return true;
        }
        let Some(tx) = &self.input else { return false };
        if tx.send(data).await.is_err() {
            self.input = None;
            return false;
        }
        true
    }

    /// Send what the decoder has produced, in chunks of at most [`CHUNK`].
    async fn drain_inflated(&mut self) -> bool {
        let out = match self.gzip.as_mut() {
            Some(d) => std::mem::take(d.get_mut()),
            None => return true,
        };
        for chunk in out.chunks(CHUNK) {
            if !self.send(Bytes::copy_from_slice(chunk)).await {
                return false;
            }
        }
        true
    }

    /// The body could not be decoded: end the RPC and answer 400.
    fn bad_body(&mut self, e: std::io::Error) -> bool {
        self.task.abort();
        self.input = None;
        self.gzip = None;
        self.failed = Some(Reply::text(400, format!("invalid gzip request body: {e}")));
        false
    }
}

/// The RPC itself; its chunks and its failure go to `out`.
async fn run(
    client: Client,
    req: Request,
    input: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Result<Bytes, Status>>,
) {
    if let Err(s) = call(client, req, input, &out).await {
        let _ = out.send(Err(crate::described(s))).await;
    }
}

async fn call(
    client: Client,
    req: Request,
    input: mpsc::Receiver<Bytes>,
    out: &mpsc::Sender<Result<Bytes, Status>>,
) -> Result<(), Status> {
    let mut rpc = SmartHttpServiceClient::new(client.transport())
        .max_decoding_message_size(gitrpc_proto::MAX_MESSAGE)
        .max_encoding_message_size(gitrpc_proto::MAX_MESSAGE);
    let repository = Some(req.repository);
    let git_protocol = req.git_protocol;
    let id = req.identity;
    let body = ReceiverStream::new(input);
    macro_rules! relay {
        ($responses:expr) => {{
            let mut responses = $responses.await?.into_inner();
            while let Some(m) = responses.message().await? {
                if out.send(Ok(Bytes::from(m.data))).await.is_err() {
                    return Ok(()); // the adapter is gone; dropping the stream cancels
                }
            }
            Ok(())
        }};
    }
    match req.endpoint {
        Endpoint::InfoRefs(action) => {
            let msg = InfoRefsRequest {
                repository,
                git_protocol,
                ..Default::default()
            };
            let r = identified(msg, &id);
            match action {
                Action::ReceivePack => relay!(rpc.info_refs_receive_pack(r)),
                _ => relay!(rpc.info_refs_upload_pack(r)),
            }
        }
        Endpoint::Post(Action::ReceivePack) => {
            let first = PostReceivePackRequest {
                repository,
                git_protocol,
                gl_id: id.gl_id.clone(),
                gl_username: id.username.clone(),
                gl_repository: id.gl_repository.clone(),
                ..Default::default()
            };
            let rest = body.map(|data| PostReceivePackRequest {
                data: data.to_vec(),
                ..Default::default()
            });
            let stream = futures::stream::iter([first]).chain(rest);
            relay!(rpc.post_receive_pack(identified(stream, &id)))
        }
        Endpoint::Post(_) => {
            let first = PostUploadPackRequest {
                repository,
                git_protocol,
                ..Default::default()
            };
            let rest = body.map(|data| PostUploadPackRequest {
                data: data.to_vec(),
                ..Default::default()
            });
            let stream = futures::stream::iter([first]).chain(rest);
            relay!(rpc.post_upload_pack(identified(stream, &id)))
        }
    }
}

fn identified<T>(message: T, identity: &Identity) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    identity.apply(r.metadata_mut());
    r
}

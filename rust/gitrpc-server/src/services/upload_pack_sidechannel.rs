//! SSHUploadPackWithSidechannel and PostUploadPackWithSidechannel (Gitaly's
//! `service/{ssh,smarthttp}/upload_pack.go`): git-upload-pack with its input and output on a
//! sidechannel ([`crate::sidechannel`]), then a unary response with the negotiation's
//! statistics. The SSH variant side-band encodes the output (band 1 stdout, band 2 stderr)
//! and runs upload-pack full duplex; the HTTP variant writes `--stateless-rpc` output raw.
//!
//! The process, the spool, `[pack_objects_limiting]` (the slot is taken when the negotiation
//! asks for the pack), `[transport] idle_timeout` and cancellation are the streaming RPCs'
//! ([`super::transport`]): the sidechannel's input goes through `transport::pump`, and git's
//! output into a channel whose receiver writes it to the sidechannel. Order: everything the
//! request says is checked before the sidechannel is opened (bad input opens and starts
//! nothing), the sidechannel is opened (5 s, else `UNAVAILABLE`), git started. The client
//! resetting the sidechannel, or closing it before its `0000`, ends the call at once
//! (`CANCELLED`; git killed, slots freed). Gitaly's clients close only after reading the whole response, but a
//! yamux close is a half-close: a client that closed after its `0000` may still read, so
//! the call goes on, unless a write then waits for the client's credit for [`STALL`] (it
//! stopped reading: nothing else would ever end that wait). On success the sidechannel is
//! closed (FIN) before the response is returned.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use gitrpc_proto::gitaly::*;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::transport::{self, Outputs, Service, Started};
use crate::deps::Deps;
use crate::negotiation::Negotiation;
use crate::sidechannel::{self, Sidechannel, Verdict};

/// git's stderr kept for an error message.
const STDERR_KEPT: usize = 10 * 1024;
/// How long a write may wait for a client that closed its side (see the module docs).
pub const STALL: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Ssh,
    Http,
}

/// `SSHService/SSHUploadPackWithSidechannel`.
pub async fn ssh(
    deps: &Deps,
    req: Request<SshUploadPackWithSidechannelRequest>,
) -> Result<Response<SshUploadPackWithSidechannelResponse>, Status> {
    let (metadata, extensions, msg) = req.into_parts();
    let call = Call {
        metadata: &metadata,
        extensions: &extensions,
        repository: msg.repository.as_ref(),
        config: &msg.git_config_options,
        protocol: &msg.git_protocol,
    };
    let stats = serve(deps, call, Variant::Ssh).await?;
    Ok(Response::new(SshUploadPackWithSidechannelResponse {
        packfile_negotiation_statistics: Some(stats),
    }))
}

/// `SmartHTTPService/PostUploadPackWithSidechannel`.
pub async fn http(
    deps: &Deps,
    req: Request<PostUploadPackWithSidechannelRequest>,
) -> Result<Response<PostUploadPackWithSidechannelResponse>, Status> {
    let (metadata, extensions, msg) = req.into_parts();
    let call = Call {
        metadata: &metadata,
        extensions: &extensions,
        repository: msg.repository.as_ref(),
        config: &msg.git_config_options,
        protocol: &msg.git_protocol,
    };
    let stats = serve(deps, call, Variant::Http).await?;
    Ok(Response::new(PostUploadPackWithSidechannelResponse {
        packfile_negotiation_statistics: Some(stats),
    }))
}

/// What both requests carry (their field numbers are the same, too).
struct Call<'a> {
    metadata: &'a MetadataMap,
    extensions: &'a tonic::Extensions,
    repository: Option<&'a Repository>,
    config: &'a [String],
    protocol: &'a str,
}

async fn serve(
    deps: &Deps,
    call: Call<'_>,
    variant: Variant,
) -> Result<PackfileNegotiationStatistics, Status> {
    let opener = sidechannel::opener(call.extensions)?;
    let id = sidechannel::id(call.metadata)?;
    let repo = deps.repo(call.repository)?;
    gitrpc_git::client_config::check(call.config).map_err(crate::Error::from)?;
    transport::protocol(call.protocol)?;
    let channel = sidechannel::open(&opener, id).await?;
    let flags = transport::Flags {
        stateless: variant == Variant::Http,
        ..transport::Flags::SSH
    };
    let started = transport::start(
        &repo,
        Service::UploadPack,
        flags,
        call.config,
        call.protocol,
        None,
    )?;
    exchange(started, channel, variant, deps).await
}

/// What `transport::pump` produces, in order.
enum Out {
    Stdout(Bytes),
    Stderr(Bytes),
    Exit(i32),
}

/// Run git with the sidechannel as its stdin and stdout (and stderr, SSH).
async fn exchange(
    started: Started,
    channel: Sidechannel,
    variant: Variant,
    deps: &Deps,
) -> Result<PackfileNegotiationStatistics, Status> {
    let (rd, mut wr) = tokio::io::split(channel);
    let negotiation = Arc::new(Mutex::new(Negotiation::default()));
    let (input_tx, input_rx) = mpsc::channel::<Bytes>(8);
    let (verdict_tx, mut verdict) = watch::channel(Verdict::Reading);
    let reader = tokio::spawn(sidechannel::read_request(
        rd,
        input_tx,
        verdict_tx,
        negotiation.clone(),
    ));
    let _reader = AbortOnDrop(reader.abort_handle());

    let input = ReceiverStream::new(input_rx).map(Ok::<_, Status>);
    let (sink, out) = crate::stream::channel(16);
    let outputs = Outputs {
        stdout: Out::Stdout,
        stderr: Some(Out::Stderr),
        exit: Some(Out::Exit),
    };
    let pump = transport::pump(started, input, sink, deps, outputs);
    // When the write in progress started (for a client that stopped reading).
    let writing: Mutex<Option<Instant>> = Mutex::new(None);
    let write = async {
        let mut out = out; // owned: if writing fails, the pump sees its receiver gone
        let mut exit = None;
        let mut stderr = Vec::new();
        // SSH: stdout not yet sent, so that side-band packets are full (65515 bytes) while
        // output keeps coming, rather than one and a bit per 64 KiB spool chunk.
        let mut pending = Vec::new();
        loop {
            let item = match out.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Nothing more right now: what is pending goes out before we wait.
                    if !pending.is_empty() {
                        *lock(&writing) = Some(Instant::now());
                        sidechannel::write_sideband(&mut wr, 1, &pending).await?;
                        pending.clear();
                        *lock(&writing) = None;
                    }
                    match out.recv().await {
                        Some(item) => item,
                        None => break,
                    }
                }
            };
            *lock(&writing) = Some(Instant::now());
            match item {
                Ok(Out::Stdout(data)) if variant == Variant::Ssh => {
                    pending.extend_from_slice(&data);
                    let full = pending.len() - pending.len() % sidechannel::MAX_SIDEBAND_DATA;
                    if full > 0 {
                        sidechannel::write_sideband(&mut wr, 1, &pending[..full]).await?;
                        pending.drain(..full);
                    }
                }
                Ok(Out::Stdout(data)) => wr.write_all(&data).await?,
                Ok(Out::Stderr(data)) => {
                    let room = STDERR_KEPT.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&data[..data.len().min(room)]);
                    if variant == Variant::Ssh {
                        sidechannel::write_sideband(&mut wr, 1, &pending).await?;
                        pending.clear();
                        sidechannel::write_sideband(&mut wr, 2, &data).await?;
                    }
                }
                Ok(Out::Exit(code)) => exit = Some(code),
                Err(_) => {}
            }
            *lock(&writing) = None;
        }
        sidechannel::write_sideband(&mut wr, 1, &pending).await?;
        wr.flush().await?;
        Ok::<_, std::io::Error>((exit, stderr))
    };
    // Whichever comes first: git done and its output written, or the client gone. (The FIN
    // is sent only afterwards, so the client cannot legitimately close before.)
    let (pumped, written) = tokio::select! {
        biased;
        done = async { tokio::join!(pump, write) } => done,
        status = client_failure(&mut verdict, &writing) => return Err(status),
    };
    let (exit, stderr) =
        written.map_err(|e| Status::cancelled(format!("sidechannel: write: {e}")))?;
    pumped?;
    let stats = lock(&negotiation).statistics();
    match exit {
        Some(0) => {}
        Some(code) => {
            let stderr = String::from_utf8_lossy(&stderr);
            match variant {
                Variant::Ssh if stderr == "fatal: the remote end hung up unexpectedly\n" => {
                    return Err(Status::cancelled("upload-pack: the client hung up"))
                }
                Variant::Ssh => {
                    return Err(Status::internal(format!(
                        "upload-pack failed (exit status {code}): {stderr}"
                    )))
                }
                // As Gitaly: upload-pack may rightly exit non-zero for a shallow fetch.
                Variant::Http if !stats.deepen.is_empty() => {}
                Variant::Http => {
                    return Err(Status::internal(format!(
                        "git failed (exit status {code}): {stderr}"
                    )))
                }
            }
        }
        None => return Err(Status::internal("upload-pack: no exit status")),
    }
    wr.shutdown()
        .await
        .map_err(|e| Status::cancelled(format!("sidechannel: close: {e}")))?;
    Ok(stats)
}

/// Resolves when the client's side of the sidechannel fails: broken framing, closed before
/// its `0000`, or closed after it and no longer reading (a write stalled for [`STALL`]).
async fn client_failure(
    verdict: &mut watch::Receiver<Verdict>,
    writing: &Mutex<Option<Instant>>,
) -> Status {
    loop {
        match &*verdict.borrow_and_update() {
            Verdict::Invalid(msg) => return Status::invalid_argument(msg.clone()),
            Verdict::Closed { flushed: false } => {
                return Status::cancelled("sidechannel: the client closed the sidechannel")
            }
            Verdict::Closed { flushed: true } => break,
            Verdict::Reading | Verdict::Flushed => {}
        }
        if verdict.changed().await.is_err() {
            // The reader ended; its last verdict was looked at above.
            std::future::pending::<()>().await;
        }
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if lock(writing).is_some_and(|since| since.elapsed() >= STALL) {
            return Status::cancelled(
                "sidechannel: the client closed the sidechannel and stopped reading",
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

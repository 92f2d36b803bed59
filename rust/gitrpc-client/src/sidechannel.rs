//! Sidechannel calls (Gitaly's `sidechannel.RegisterSidechannel` + `Waiter`): a call carries
//! `gitaly-sidechannel-id`; the server opens a stream on the backchannel session the call
//! went over, writes `sidechannel` + the id, and we answer `ok`. git's input is then written
//! framed (4 hex digits of length, at most 65516 bytes; `0000` ends it) and its output read
//! until the server closes the stream. A call succeeds when both the unary response and the
//! end of the output have arrived; the RPC's error wins over the sidechannel's.
//!
//! The registry of waiting calls is process-wide (ids are unique in the process), so every
//! backchannel session of every [`Client`] hands its sidechannels to it. Needs a client
//! connected with [`crate::Options::backchannel`]; over a plain connection the server
//! answers `FAILED_PRECONDITION`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use gitrpc_proto::gitaly::smart_http_service_client::SmartHttpServiceClient;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};
use tonic::{IntoRequest, Request, Status};

use crate::Client;

/// The metadata key naming a call's sidechannel.
pub const METADATA_KEY: &str = "gitaly-sidechannel-id";
const MAGIC: &[u8; 11] = b"sidechannel";
/// How long the server has to complete a sidechannel's handshake, as Gitaly's clients.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest payload of one framed write (a pkt-line of 65520 bytes less its header).
pub const MAX_CHUNK: usize = 65516;

/// An open sidechannel (tokio IO). Writes must be framed ([`write_framed`], [`close_write`]);
/// reads are raw.
pub type Sidechannel = Compat<yamux::Stream>;

struct Registry {
    next: AtomicI64,
    waiters: Mutex<HashMap<i64, oneshot::Sender<Sidechannel>>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    next: AtomicI64::new(0),
    waiters: Mutex::new(HashMap::new()),
});

impl Registry {
    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<i64, oneshot::Sender<Sidechannel>>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self) -> (i64, oneshot::Receiver<Sidechannel>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters().insert(id, tx);
        (id, rx)
    }

    fn take(&self, id: i64) -> Option<oneshot::Sender<Sidechannel>> {
        self.waiters().remove(&id)
    }
}

/// Removes a call's waiter when the call ends, however it ends.
struct Registered(i64);

impl Drop for Registered {
    fn drop(&mut self) {
        REGISTRY.take(self.0);
    }
}

/// A stream the server opened: read `sidechannel` + id, hand it to the waiting call after
/// answering `ok`. Anything else, an unknown id or a slow server: the stream is reset.
pub(crate) async fn accept(stream: yamux::Stream) {
    let mut stream = stream.compat();
    let handshake = async {
        let mut hello = [0u8; 19];
        stream.read_exact(&mut hello).await.ok()?;
        if &hello[..11] != MAGIC {
            return None;
        }
        let id = i64::from_be_bytes(hello[11..].try_into().expect("8 bytes"));
        let waiter = REGISTRY.take(id)?;
        stream.write_all(b"ok").await.ok()?;
        stream.flush().await.ok()?;
        Some(waiter)
    };
    if let Ok(Some(waiter)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        let _ = waiter.send(stream);
    }
}

/// Write `data` to a sidechannel as framed chunks, each in one write.
pub async fn write_framed<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> io::Result<()> {
    for chunk in data.chunks(MAX_CHUNK) {
        let mut frame = Vec::with_capacity(chunk.len() + 4);
        frame.extend_from_slice(format!("{:04x}", chunk.len() + 4).as_bytes());
        frame.extend_from_slice(chunk);
        w.write_all(&frame).await?;
    }
    w.flush().await
}

/// End the input (`0000`). The stream itself stays open: the output is still to be read.
pub async fn close_write<W: AsyncWrite + Unpin>(w: &mut W) -> io::Result<()> {
    w.write_all(b"0000").await?;
    w.flush().await
}

/// Copy `input` to the sidechannel, framed, then `0000`.
async fn send_input<R, W>(mut input: R, w: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; MAX_CHUNK];
    loop {
        let n = input.read(&mut buf).await?;
        if n == 0 {
            return close_write(w).await;
        }
        write_framed(w, &buf[..n]).await?;
    }
}

impl Client {
    /// `SSHUploadPackWithSidechannel`, as gitlab-shell runs it: `stdin` (git's request) goes
    /// to upload-pack; its side-band output is split into `stdout` (band 1, flushed per
    /// packet: git reads it interactively) and `stderr` (band 2). Returns when the call and
    /// the output are complete, without waiting for `stdin` to end (git may hold it open).
    pub async fn ssh_upload_pack_with_sidechannel<I, O, E>(
        &self,
        request: impl IntoRequest<SshUploadPackWithSidechannelRequest>,
        stdin: I,
        mut stdout: O,
        mut stderr: E,
    ) -> Result<SshUploadPackWithSidechannelResponse, Status>
    where
        I: AsyncRead + Unpin + Send,
        O: AsyncWrite + Unpin + Send,
        E: AsyncWrite + Unpin + Send,
    {
        let transport = self.transport();
        let call = |req| async move {
            SshServiceClient::new(transport)
                .ssh_upload_pack_with_sidechannel(req)
                .await
                .map(|r| r.into_inner())
        };
        self.with_sidechannel(request, call, |chan| async move {
            let (rd, mut wr) = tokio::io::split(chan);
            let output = async {
                let mut rd = BufReader::with_capacity(2 * 65520, rd);
                while let Some((band, data)) = read_sideband(&mut rd).await? {
                    match band {
                        1 => stdout.write_all(&data).await?,
                        2 => stderr.write_all(&data).await?,
                        b => return Err(io::Error::other(format!("unexpected side-band {b}"))),
                    }
                    // Flushed whenever nothing more has arrived: git reads interactively.
                    if rd.buffer().is_empty() {
                        stdout.flush().await?;
                        stderr.flush().await?;
                    }
                }
                stdout.flush().await?;
                stderr.flush().await
            };
            both_until_output(send_input(stdin, &mut wr), output).await
        })
        .await
    }

    /// `PostUploadPackWithSidechannel`, as workhorse runs it: `body` (a POST git-upload-pack
    /// body) goes to `upload-pack --stateless-rpc`, whose output is copied to `out`.
    pub async fn post_upload_pack_with_sidechannel<I, O>(
        &self,
        request: impl IntoRequest<PostUploadPackWithSidechannelRequest>,
        body: I,
        mut out: O,
    ) -> Result<PostUploadPackWithSidechannelResponse, Status>
    where
        I: AsyncRead + Unpin + Send,
        O: AsyncWrite + Unpin + Send,
    {
        let transport = self.transport();
        let call = |req| async move {
            SmartHttpServiceClient::new(transport)
                .post_upload_pack_with_sidechannel(req)
                .await
                .map(|r| r.into_inner())
        };
        self.with_sidechannel(request, call, |chan| async move {
            let (mut rd, mut wr) = tokio::io::split(chan);
            let output = async {
                tokio::io::copy(&mut rd, &mut out).await?;
                out.flush().await
            };
            both_until_output(send_input(body, &mut wr), output).await
        })
        .await
    }

    /// Run `call` with a fresh sidechannel id in its metadata and `callback` on the
    /// sidechannel the server opens for it, under the client's deadline. `message` may be a
    /// `Request` carrying metadata of its own (an identity, say).
    pub async fn with_sidechannel<Req, Resp, C, CF, F, FF>(
        &self,
        message: impl IntoRequest<Req>,
        call: C,
        callback: F,
    ) -> Result<Resp, Status>
    where
        C: FnOnce(Request<Req>) -> CF,
        CF: Future<Output = Result<Resp, Status>>,
        F: FnOnce(Sidechannel) -> FF,
        FF: Future<Output = io::Result<()>>,
    {
        let (id, waiter) = REGISTRY.register();
        let _registered = Registered(id);
        let mut request = message.into_request();
        request
            .metadata_mut()
            .insert(METADATA_KEY, id.to_string().parse().expect("digits"));
        let timeout = self.timeout();
        if let Some(t) = timeout {
            request.set_timeout(t);
        }
        let call = call(request);
        let side = async move {
            match waiter.await {
                Ok(chan) => Some(callback(chan).await),
                Err(_) => None, // deregistered: the server never opened it
            }
        };
        let both = async move {
            tokio::pin!(call, side);
            let mut answer = None;
            let mut output = None;
            while answer.is_none() || output.is_none() {
                tokio::select! {
                    r = &mut call, if answer.is_none() => {
                        REGISTRY.take(id); // a waiter still waiting sees "not opened"
                        answer = Some(r?); // an error ends it all (the sidechannel is reset)
                    }
                    s = &mut side, if output.is_none() => output = Some(s),
                }
            }
            match output.flatten() {
                None => Err(Status::internal(
                    "sidechannel: the server answered without opening the sidechannel",
                )),
                Some(Err(e)) => Err(Status::unavailable(format!("sidechannel: {e}"))),
                Some(Ok(())) => Ok(answer.expect("set")),
            }
        };
        match timeout {
            None => both.await,
            Some(t) => tokio::time::timeout(t, both)
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded"))),
        }
        .map_err(crate::described)
    }
}

/// Run `input` and `output` together; done when `output` is (the input may never end: git
/// keeps its side open until the response is over). An input error ends it early.
async fn both_until_output(
    input: impl Future<Output = io::Result<()>>,
    output: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    tokio::pin!(input, output);
    let mut input_done = false;
    loop {
        tokio::select! {
            r = &mut output => return r,
            r = &mut input, if !input_done => {
                r?;
                input_done = true;
            }
        }
    }
}

/// One side-band packet: `(band, data)`; `None` at the end of the stream.
async fn read_sideband<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = std::str::from_utf8(&header)
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .filter(|n| *n > 4)
        .ok_or_else(|| io::Error::other(format!("invalid side-band packet {header:?}")))?;
    let band = r.read_u8().await?;
    let mut data = vec![0u8; len - 5];
    r.read_exact(&mut data).await?;
    Ok(Some((band, data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_ids_are_unique_and_taken_once() {
        let (a, _ra) = REGISTRY.register();
        let (b, rb) = REGISTRY.register();
        assert_ne!(a, b);
        assert!(REGISTRY.take(b).is_some());
        assert!(REGISTRY.take(b).is_none());
        drop(Registered(a));
        assert!(REGISTRY.take(a).is_none());
        drop(rb);
    }

    #[tokio::test]
    async fn framing() {
        let mut out = Vec::new();
        write_framed(&mut out, &vec![b'x'; 70_000]).await.unwrap();
        close_write(&mut out).await.unwrap();
        assert_eq!(&out[..4], b"fff0");
        assert_eq!(
            &out[65520..65524],
            format!("{:04x}", 70_000 - 65516 + 4).as_bytes()
        );
        assert!(out.ends_with(b"0000"));
        assert_eq!(out.len(), 70_000 + 4 + 4 + 4);
    }

    #[tokio::test]
    async fn sideband_reading() {
        let input = b"0009\x01abcd0006\x02e".to_vec();
        let mut r = &input[..];
        assert_eq!(
            read_sideband(&mut r).await.unwrap(),
            Some((1, b"abcd".to_vec()))
        );
        assert_eq!(
            read_sideband(&mut r).await.unwrap(),
            Some((2, b"e".to_vec()))
        );
        assert_eq!(read_sideband(&mut r).await.unwrap(), None);
        let mut bad = &b"zzzz"[..];
        assert!(read_sideband(&mut bad).await.is_err());
    }
}

//! Sidechannels (Gitaly's `internal/grpc/sidechannel`): for a call that carries the metadata
//! `gitaly-sidechannel-id`, the server opens a stream on the backchannel session the call
//! came in on, writes `sidechannel` + the id (8 bytes, big-endian) and reads `ok`. git's
//! input then comes over that stream framed as pkt-lines (4 hex digits of length, at most
//! 65516 payload bytes; `0000` ends the input), and its output goes back raw; closing the
//! stream ends the output. Then the unary response follows.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};
use tonic::Status;

use crate::mux::SidechannelOpener;
use crate::negotiation::Negotiation;

/// The metadata key naming a call's sidechannel (a decimal int64).
pub const METADATA_KEY: &str = "gitaly-sidechannel-id";
/// What the server writes first on a sidechannel, before the id.
pub const MAGIC: &[u8; 11] = b"sidechannel";
/// How long opening a sidechannel (until the client's `ok`) may take, as Gitaly.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest pkt-line (header included), as git's.
pub use crate::negotiation::MAX_PKT;
/// Payload of a side-band packet: a pkt-line less its header and band byte.
pub const MAX_SIDEBAND_DATA: usize = MAX_PKT - 5;

/// An open sidechannel (tokio IO).
pub type Sidechannel = Compat<yamux::Stream>;

/// The opener of the session the call came in on; `FAILED_PRECONDITION` over a plain
/// HTTP/2 connection or in-process.
pub fn opener(extensions: &http::Extensions) -> Result<SidechannelOpener, Status> {
    extensions.get::<SidechannelOpener>().cloned().ok_or_else(|| {
        Status::failed_precondition(
            "sidechannel: the call must come over a multiplexed connection (dial with the \"backchannel\" handshake)",
        )
    })
}

/// The call's sidechannel id (the last value of the metadata, as Gitaly takes it).
pub fn id(metadata: &tonic::metadata::MetadataMap) -> Result<i64, Status> {
    let value = metadata
        .get_all(METADATA_KEY)
        .iter()
        .next_back()
        .ok_or_else(|| {
            Status::failed_precondition(format!(
                "sidechannel: {METADATA_KEY} missing from metadata"
            ))
        })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| Status::invalid_argument(format!("sidechannel: invalid {METADATA_KEY}")))
}

/// Open sidechannel `id`: a new stream, `sidechannel` + id, then the client's `ok`, within
/// [`OPEN_TIMEOUT`]. Any failure is `UNAVAILABLE` (Gitaly's clients retry on it); the stream
/// is then dropped (reset).
pub async fn open(opener: &SidechannelOpener, id: i64) -> Result<Sidechannel, Status> {
    let go = async {
        let mut stream = opener.open_stream().await?.compat();
        let mut hello = [0u8; 19];
        hello[..11].copy_from_slice(MAGIC);
        hello[11..].copy_from_slice(&id.to_be_bytes());
        stream.write_all(&hello).await?; // one frame, which carries the SYN
        stream.flush().await?;
        let mut ok = [0u8; 2];
        stream.read_exact(&mut ok).await?;
        if &ok != b"ok" {
            return Err(std::io::Error::other(format!(
                "expected \"ok\", got {:?}",
                String::from_utf8_lossy(&ok)
            )));
        }
        Ok(stream)
    };
    match tokio::time::timeout(OPEN_TIMEOUT, go).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(Status::unavailable(format!("sidechannel: open: {e}"))),
        Err(_) => Err(Status::unavailable(format!(
            "sidechannel: open: the client did not answer within {}s",
            OPEN_TIMEOUT.as_secs()
        ))),
    }
}

/// How the client's side of a sidechannel stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Input is still coming.
    Reading,
    /// The input ended with `0000`; the client still listens.
    Flushed,
    /// The client closed or reset the stream (`flushed`: after its `0000`).
    Closed { flushed: bool },
    /// The framing was broken (message for `INVALID_ARGUMENT`).
    Invalid(String),
}

/// Read the client's framed input: each payload goes to `negotiation` and to `data` (git's
/// stdin; a closed receiver is not an error: git may stop reading). `0000` closes `data`
/// and reading goes on, discarding, until the client closes the stream. Every change of
/// state is published on `verdict`.
pub async fn read_request<R>(
    r: R,
    data: mpsc::Sender<Bytes>,
    verdict: watch::Sender<Verdict>,
    negotiation: Arc<Mutex<Negotiation>>,
) where
    R: AsyncRead + Unpin,
{
    let mut r = tokio::io::BufReader::with_capacity(MAX_PKT, r);
    let mut data = Some(data);
    let mut flushed = false;
    let end = loop {
        if flushed {
            // After `0000` nothing more is input: only the end of the stream is looked for.
            let mut sink = [0u8; 8192];
            while let Ok(n) = r.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            break Verdict::Closed { flushed: true };
        }
        let mut header = [0u8; 4];
        if r.read_exact(&mut header).await.is_err() {
            break Verdict::Closed { flushed: false };
        }
        let len = match std::str::from_utf8(&header)
            .ok()
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        {
            Some(n) => n,
            None => {
                break Verdict::Invalid(format!(
                    "sidechannel: invalid packet length {:?}",
                    String::from_utf8_lossy(&header)
                ))
            }
        };
        match len {
            0 => {
                flushed = true;
                data = None; // git's stdin closes
                let _ = verdict.send(Verdict::Flushed);
                continue;
            }
            1..=3 => {
                break Verdict::Invalid(format!("sidechannel: invalid packet header {len:04x}"))
            }
            n if n > MAX_PKT => {
                break Verdict::Invalid(format!(
                    "sidechannel: invalid packet length {n} (at most {MAX_PKT})"
                ))
            }
            _ => {}
        }
        let mut payload = BytesMut::zeroed(len - 4);
        if r.read_exact(&mut payload).await.is_err() {
            break Verdict::Closed { flushed: false };
        }
        let payload = payload.freeze();
        lock(&negotiation).feed(&payload);
        if let Some(tx) = &data {
            if !payload.is_empty() && tx.send(payload).await.is_err() {
                data = None; // git stopped reading its stdin; its exit status tells why
            }
        }
    };
    let _ = verdict.send(end);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Write `data` as side-band packets of `band` (1 stdout, 2 stderr): `%04x` length, the band
/// byte and at most [`MAX_SIDEBAND_DATA`] bytes, each packet in one write.
pub async fn write_sideband<W: AsyncWrite + Unpin>(
    w: &mut W,
    band: u8,
    data: &[u8],
) -> std::io::Result<()> {
    for chunk in data.chunks(MAX_SIDEBAND_DATA) {
        let mut packet = Vec::with_capacity(chunk.len() + 5);
        packet.extend_from_slice(format!("{:04x}", chunk.len() + 5).as_bytes());
        packet.push(band);
        packet.extend_from_slice(chunk);
        w.write_all(&packet).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! tar.bz2: git's tar compressed on a blocking thread (the `bzip2` crate, pure Rust backend,
//! level 9 as `bzip2 -c`), fed and drained through bounded channels of 128 KiB pieces, so
//! memory stays bounded whatever the archive's size. Dropping the future (the client went
//! away) closes both channels and the thread ends at its next piece.

use std::io::Write;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::stream::{Sink, WRITE_BUFFER};

/// The compressed stream's writer: full 128 KiB pieces to `out`.
struct Pieces {
    buf: Vec<u8>,
    out: mpsc::Sender<Vec<u8>>,
}

impl Pieces {
    fn ship(&mut self) -> std::io::Result<()> {
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(WRITE_BUFFER));
        self.out
            .blocking_send(piece)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "receiver gone"))
    }
}

impl Write for Pieces {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(WRITE_BUFFER - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == WRITE_BUFFER {
            self.ship()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Compress everything `reader` yields and send it through `sink` in 128 KiB messages.
pub(super) async fn compress<R, T>(
    reader: &mut R,
    sink: &Sink<T>,
    wrap: impl Fn(Vec<u8>) -> T,
) -> Result<()>
where
    R: AsyncRead + Unpin,
{
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<u8>>(2);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(2);
    let worker = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let pieces = Pieces {
            buf: Vec::with_capacity(WRITE_BUFFER),
            out: out_tx,
        };
        let mut enc = ::bzip2::write::BzEncoder::new(pieces, ::bzip2::Compression::best());
        while let Some(chunk) = in_rx.blocking_recv() {
            enc.write_all(&chunk)?;
        }
        let mut pieces = enc.finish()?;
        if !pieces.buf.is_empty() {
            pieces.ship()?;
        }
        Ok(())
    });
    let feed = async move {
        loop {
            let mut buf = vec![0u8; WRITE_BUFFER];
            let n = gitrpc_git::fill(reader, &mut buf).await?;
            if n == 0 {
                return Ok::<_, Error>(());
            }
            buf.truncate(n);
            if in_tx.send(buf).await.is_err() {
                return Err(Error::internal("compressor stopped"));
            }
        }
    };
    let drain = async {
        while let Some(piece) = out_rx.recv().await {
            sink.send(wrap(piece)).await?;
        }
        Ok::<_, Error>(())
    };
    let (fed, drained) = tokio::join!(feed, drain);
    let compressed = worker
        .await
        .map_err(|e| Error::internal(format!("compressor: {e}")))?;
    drained?;
    fed?;
    compressed.map_err(|e| Error::internal(format!("compressing: {e}")))
}

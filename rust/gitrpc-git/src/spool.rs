//! Decouple git from slow clients.
//!
//! [`spool`] drains a reader (git's stdout) as fast as git writes: into memory up to a
//! threshold, then into an unlinked temp file. The [`SpoolReader`] hands the bytes out at the
//! client's pace, so `git pack-objects` finishes (and frees its memory) at its own speed.
//! If the temp file can't be created (dir full or unwritable), the spool falls back to
//! direct streaming: at most `threshold` bytes are buffered and git waits for the client.

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

const CHUNK: usize = 64 * 1024;

/// Spool settings (`[spool]` in the config).
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    pub enabled: bool,
    /// Bytes kept in memory before spilling to disk.
    pub threshold: usize,
    /// Directory for spill files.
    pub dir: PathBuf,
}

/// Process-wide spool gauges, for metrics.
pub static BYTES_IN_MEMORY: AtomicI64 = AtomicI64::new(0);
pub static BYTES_ON_DISK: AtomicI64 = AtomicI64::new(0);
pub static SPILLS: AtomicU64 = AtomicU64::new(0);
pub static FALLBACKS: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct State {
    mem: VecDeque<Bytes>,
    mem_bytes: usize,
    file: Option<Arc<std::fs::File>>,
    written: u64,
    done: bool,
    error: Option<io::Error>,
    reader_gone: bool,
    /// Spilling failed: bounded in-memory streaming only.
    direct: bool,
}

struct Shared {
    state: Mutex<State>,
    data: Notify,
    space: Notify,
    threshold: usize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap();
        BYTES_IN_MEMORY.fetch_sub(st.mem_bytes as i64, Ordering::Relaxed);
        if st.file.is_some() {
            BYTES_ON_DISK.fetch_sub(st.written as i64, Ordering::Relaxed);
        }
    }
}

/// Start draining `src`. With `config.enabled == false` the reader streams directly
/// (one chunk of buffering).
pub fn spool<R>(src: R, config: &SpoolConfig) -> SpoolReader
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let threshold = if config.enabled {
        config.threshold
    } else {
        CHUNK
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            direct: !config.enabled,
            ..Default::default()
        }),
        data: Notify::new(),
        space: Notify::new(),
        threshold,
    });
    tokio::spawn(drain(src, shared.clone(), config.dir.clone()));
    SpoolReader { shared, pos: 0 }
}

enum Place {
    Stored,
    Stop,
    Wait,
    File(Arc<std::fs::File>, u64),
}

/// Decide where the next chunk goes (memory, file, or wait for room), under the lock.
fn place(shared: &Shared, chunk: &Bytes, dir: &std::path::Path) -> Place {
    let n = chunk.len();
    let mut st = shared.state.lock().unwrap();
    if st.reader_gone {
        return Place::Stop;
    }
    if st.file.is_none() && st.mem_bytes + n > shared.threshold && !st.direct {
        match tempfile::tempfile_in(dir) {
            Ok(f) => {
                SPILLS.fetch_add(1, Ordering::Relaxed);
                st.file = Some(Arc::new(f));
            }
            Err(e) => {
                FALLBACKS.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(dir = %dir.display(), error = %e, "spool dir unusable; streaming directly");
                st.direct = true;
            }
        }
    }
    if let Some(f) = &st.file {
        return Place::File(f.clone(), st.written);
    }
    if st.mem_bytes + n <= shared.threshold || st.mem_bytes == 0 {
        st.mem.push_back(chunk.clone());
        st.mem_bytes += n;
        BYTES_IN_MEMORY.fetch_add(n as i64, Ordering::Relaxed);
        return Place::Stored;
    }
    // Direct streaming with a full buffer: wait for the client.
    Place::Wait
}

async fn drain<R: AsyncRead + Unpin>(mut src: R, shared: Arc<Shared>, dir: PathBuf) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                shared.state.lock().unwrap().error = Some(e);
                break;
            }
        };
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        loop {
            match place(&shared, &chunk, &dir) {
                Place::Stored => break,
                Place::Stop => return,
                Place::Wait => shared.space.notified().await,
                Place::File(f, at) => {
                    // Page-cache writes; small enough to do inline.
                    if let Err(e) = f.write_all_at(&chunk, at) {
                        let mut st = shared.state.lock().unwrap();
                        st.error = Some(e);
                        st.done = true;
                        drop(st);
                        shared.data.notify_one();
                        return;
                    }
                    shared.state.lock().unwrap().written += n as u64;
                    BYTES_ON_DISK.fetch_add(n as i64, Ordering::Relaxed);
                    break;
                }
            }
        }
        shared.data.notify_one();
    }
    shared.state.lock().unwrap().done = true;
    shared.data.notify_one();
}

/// The client side of a spool.
pub struct SpoolReader {
    shared: Arc<Shared>,
    pos: u64,
}

impl SpoolReader {
    /// The next piece of output, `None` at the end. An error from reading git's output
    /// or writing the spill file is returned once all data before it was handed out.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let file = {
                let mut st = self.shared.state.lock().unwrap();
                if let Some(c) = st.mem.pop_front() {
                    st.mem_bytes -= c.len();
                    BYTES_IN_MEMORY.fetch_sub(c.len() as i64, Ordering::Relaxed);
                    drop(st);
                    self.shared.space.notify_one();
                    return Ok(Some(c));
                }
                match &st.file {
                    Some(f) if self.pos < st.written => Some((
                        f.clone(),
                        (st.written - self.pos).min(CHUNK as u64) as usize,
                    )),
                    _ if st.done => {
                        return match st.error.take() {
                            Some(e) => Err(e),
                            None => Ok(None),
                        }
                    }
                    _ => None,
                }
            };
            match file {
                Some((f, len)) => {
                    let mut buf = vec![0u8; len];
                    f.read_exact_at(&mut buf, self.pos)?;
                    self.pos += len as u64;
                    return Ok(Some(Bytes::from(buf)));
                }
                None => self.shared.data.notified().await,
            }
        }
    }

    /// Has the source been fully drained (git's output all read)?
    pub fn source_done(&self) -> bool {
        self.shared.state.lock().unwrap().done
    }
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap().reader_gone = true;
        self.shared.space.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    fn config(dir: &std::path::Path, threshold: usize) -> SpoolConfig {
        SpoolConfig {
            enabled: true,
            threshold,
            dir: dir.to_path_buf(),
        }
    }

    async fn read_all(r: &mut SpoolReader) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().await.unwrap() {
            out.extend_from_slice(&c);
        }
        out
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn drains_writer_before_reader_reads_and_preserves_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let payload = data(3 * 1024 * 1024 + 17);
        let (mut w, r) = tokio::io::duplex(64 * 1024);
        let mut reader = spool(r, &config(dir.path(), 256 * 1024));
        let p = payload.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&p).await.unwrap();
        });
        // The writer finishes although nobody has read yet.
        tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read_all(&mut reader).await, payload);
        // Spill file is unlinked: nothing in the dir.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn unusable_dir_falls_back_to_direct_streaming() {
        let payload = data(1024 * 1024);
        let (mut w, r) = tokio::io::duplex(64 * 1024);
        let cfg = config(std::path::Path::new("/nonexistent/spool"), 128 * 1024);
        let mut reader = spool(r, &cfg);
        let p = payload.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&p).await.unwrap();
        });
        // Writer can't finish without a reader: bounded buffering.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!writer.is_finished());
        assert_eq!(read_all(&mut reader).await, payload);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn disabled_spool_streams_directly() {
        let payload = data(512 * 1024);
        let (mut w, r) = tokio::io::duplex(16 * 1024);
        let mut cfg = config(std::path::Path::new("/tmp"), 1 << 30);
        cfg.enabled = false;
        let mut reader = spool(r, &cfg);
        let p = payload.clone();
        let writer = tokio::spawn(async move { w.write_all(&p).await.unwrap() });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!writer.is_finished());
        assert_eq!(read_all(&mut reader).await, payload);
    }
}

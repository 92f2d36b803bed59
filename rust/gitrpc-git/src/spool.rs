//! Decouple git from slow clients.
//!
//! [`spool`] drains a reader (git's stdout) as fast as git writes: into memory up to a
//! threshold, then into an unlinked temp file. The [`SpoolReader`] hands the bytes out at the
//! client's pace, so `git pack-objects` finishes (and frees its memory) at its own speed.
//!
//! Bounds and failures: all spools of a server share a [`Budget`] (`[spool] max_bytes`,
//! memory and disk together); past it a response that still has unread bytes streams
//! directly — git waits for its client — so spooled bytes exceed the budget by at most one
//! chunk per response. A spill file is emptied whenever its client has read all of it. If
//! the temp file can't be created (dir full or unwritable), or a write to it fails mid-response
//! (`ENOSPC`, `EIO`), the bytes already spooled are still handed out and the rest streams
//! directly: a full disk slows a clone down instead of failing it.

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

const CHUNK: usize = 64 * 1024;

/// Spool settings (`[spool]` in the config).
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    pub enabled: bool,
    /// Bytes of one response kept in memory before spilling to disk.
    pub threshold: usize,
    /// Directory for spill files.
    pub dir: PathBuf,
    /// Bytes spooled by all responses sharing this budget (one per server).
    pub budget: Arc<Budget>,
}

/// A server's spooling: the bound on spooled bytes (memory and disk) that all its responses
/// share, and its counters (read by the server's metrics).
#[derive(Debug)]
pub struct Budget {
    max: u64,
    used: AtomicU64,
    in_memory: AtomicI64,
    on_disk: AtomicI64,
    spills: AtomicU64,
    fallbacks: AtomicU64,
}

/// What a [`Budget`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes held in memory now.
    pub in_memory: i64,
    /// Bytes in spill files now.
    pub on_disk: i64,
    /// Responses that spilled to a temp file.
    pub spills: u64,
    /// Spill files that could not be created or written (the rest streamed directly).
    pub fallbacks: u64,
}

impl Budget {
    pub fn new(max: u64) -> Arc<Budget> {
        Arc::new(Budget {
            max,
            used: AtomicU64::new(0),
            in_memory: AtomicI64::new(0),
            on_disk: AtomicI64::new(0),
            spills: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        })
    }

    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            in_memory: self.in_memory.load(Ordering::Relaxed),
            on_disk: self.on_disk.load(Ordering::Relaxed),
            spills: self.spills.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Bytes spooled now by the responses sharing this budget.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn add(&self, n: u64) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Unread output, in order: chunks in memory and regions of the spill file.
enum Segment {
    Mem(Bytes),
    File { at: u64, len: u64 },
}

#[derive(Default)]
struct State {
    queue: VecDeque<Segment>,
    /// Bytes of `Mem` segments.
    mem_bytes: usize,
    file: Option<Arc<std::fs::File>>,
    /// Bytes in the spill file (its length; all on disk until it is emptied).
    written: u64,
    /// Bytes of `File` segments.
    file_unread: u64,
    done: bool,
    error: Option<io::Error>,
    reader_gone: bool,
    /// No (more) spilling: the spool is disabled, or creating or writing the file failed.
    direct: bool,
}

impl State {
    fn unread(&self) -> u64 {
        self.mem_bytes as u64 + self.file_unread
    }
}

/// How a spill file is made (a temp file; tests give files that fail).
type OpenSpill = fn(&Path) -> io::Result<std::fs::File>;

struct Shared {
    state: Mutex<State>,
    data: Notify,
    space: Notify,
    threshold: usize,
    budget: Arc<Budget>,
    dir: PathBuf,
    open: OpenSpill,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let b = &self.budget;
        b.in_memory
            .fetch_sub(st.mem_bytes as i64, Ordering::Relaxed);
        b.on_disk.fetch_sub(st.written as i64, Ordering::Relaxed);
        self.budget.sub(st.mem_bytes as u64 + st.written);
    }
}

/// Start draining `src`. With `config.enabled == false` the reader streams directly
/// (one chunk of buffering).
pub fn spool<R>(src: R, config: &SpoolConfig) -> SpoolReader
where
    R: AsyncRead + Unpin + Send + 'static,
{
    spool_with(src, config, |dir| tempfile::tempfile_in(dir))
}

fn spool_with<R>(src: R, config: &SpoolConfig, open: OpenSpill) -> SpoolReader
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
        budget: config.budget.clone(),
        dir: config.dir.clone(),
        open,
    });
    tokio::spawn(drain(src, shared.clone()));
    SpoolReader { shared }
}

enum Place {
    Stored,
    Stop,
    Wait,
    File(Arc<std::fs::File>, u64),
}

/// Decide where the next chunk goes (memory, file, or wait for the reader), under the lock.
fn place(shared: &Shared, chunk: &Bytes) -> Place {
    let n = chunk.len();
    let mut st = shared.lock();
    if st.reader_gone {
        return Place::Stop;
    }
    // A spill file its reader has caught up with is emptied (its disk space freed).
    if st.file_unread == 0 && st.written > 0 {
        if let Some(f) = &st.file {
            if f.set_len(0).is_ok() {
                shared
                    .budget
                    .on_disk
                    .fetch_sub(st.written as i64, Ordering::Relaxed);
                shared.budget.sub(st.written);
                st.written = 0;
            }
        }
    }
    let unread = st.unread();
    // Over the server-wide budget: one chunk at a time (direct streaming).
    if unread > 0 && shared.budget.used() + n as u64 > shared.budget.max {
        return Place::Wait;
    }
    if st.mem_bytes + n <= shared.threshold || unread == 0 {
        st.queue.push_back(Segment::Mem(chunk.clone()));
        st.mem_bytes += n;
        shared
            .budget
            .in_memory
            .fetch_add(n as i64, Ordering::Relaxed);
        shared.budget.add(n as u64);
        return Place::Stored;
    }
    if st.direct {
        return Place::Wait;
    }
    if st.file.is_none() {
        match (shared.open)(&shared.dir) {
            Ok(f) => {
                shared.budget.spills.fetch_add(1, Ordering::Relaxed);
                st.file = Some(Arc::new(f));
            }
            Err(e) => {
                shared.budget.fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(dir = %shared.dir.display(), error = %e, "spool dir unusable; streaming directly");
                st.direct = true;
                return Place::Wait;
            }
        }
    }
    let f = st.file.clone().expect("created above");
    Place::File(f, st.written)
}

async fn drain<R: AsyncRead + Unpin>(mut src: R, shared: Arc<Shared>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                shared.lock().error = Some(e);
                break;
            }
        };
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        loop {
            match place(&shared, &chunk) {
                Place::Stored => break,
                Place::Stop => return,
                Place::Wait => shared.space.notified().await,
                Place::File(f, at) => {
                    // Page-cache writes; small enough to do inline. Only this task writes,
                    // so `at` (the file's length) can't move meanwhile.
                    let res = f.write_all_at(&chunk, at);
                    let mut st = shared.lock();
                    match res {
                        Ok(()) => {
                            st.written += n as u64;
                            st.file_unread += n as u64;
                            shared.budget.on_disk.fetch_add(n as i64, Ordering::Relaxed);
                            shared.budget.add(n as u64);
                            match st.queue.back_mut() {
                                Some(Segment::File { at: a, len }) if *a + *len == at => {
                                    *len += n as u64
                                }
                                _ => st.queue.push_back(Segment::File { at, len: n as u64 }),
                            }
                            break;
                        }
                        Err(e) => {
                            // What was written stays readable; the rest streams directly.
                            shared.budget.fallbacks.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(dir = %shared.dir.display(), error = %e, "spool write failed; streaming the rest directly");
                            st.direct = true;
                        }
                    }
                }
            }
        }
        shared.data.notify_one();
    }
    shared.lock().done = true;
    shared.data.notify_one();
}

/// The client side of a spool.
pub struct SpoolReader {
    shared: Arc<Shared>,
}

impl SpoolReader {
    /// The next piece of output, `None` at the end. An error from reading git's output
    /// (or the spill file) is returned once all data before it was handed out.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        let shared = &self.shared;
        loop {
            let region = {
                let mut st = shared.lock();
                match st.queue.front() {
                    Some(Segment::Mem(_)) => {
                        let Some(Segment::Mem(c)) = st.queue.pop_front() else {
                            unreachable!()
                        };
                        st.mem_bytes -= c.len();
                        shared
                            .budget
                            .in_memory
                            .fetch_sub(c.len() as i64, Ordering::Relaxed);
                        shared.budget.sub(c.len() as u64);
                        drop(st);
                        shared.space.notify_one();
                        return Ok(Some(c));
                    }
                    Some(Segment::File { at, len }) => {
                        let f = st.file.clone().expect("file segments have a file");
                        Some((f, *at, (*len).min(CHUNK as u64) as usize))
                    }
                    None if st.done => {
                        return match st.error.take() {
                            Some(e) => Err(e),
                            None => Ok(None),
                        }
                    }
                    None => None,
                }
            };
            let Some((f, at, len)) = region else {
                shared.data.notified().await;
                continue;
            };
            let mut buf = vec![0u8; len];
            f.read_exact_at(&mut buf, at)?;
            // Consumed only now, so the writer can't empty the file under this read.
            let mut st = shared.lock();
            if let Some(Segment::File { at, len: left }) = st.queue.front_mut() {
                *at += len as u64;
                *left -= len as u64;
                if *left == 0 {
                    st.queue.pop_front();
                }
            }
            st.file_unread -= len as u64;
            drop(st);
            shared.space.notify_one();
            return Ok(Some(Bytes::from(buf)));
        }
    }

    /// Has the source been fully drained (git's output all read)?
    pub fn source_done(&self) -> bool {
        self.shared.lock().done
    }
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        self.shared.lock().reader_gone = true;
        self.shared.space.notify_one();
    }
}

#[cfg(test)]
mod tests;

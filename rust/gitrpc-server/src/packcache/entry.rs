//! One pack: written once by its generation, read by any number of readers.
//!
//! The pack goes into the entry's file at git's speed (the writer never waits for readers);
//! each [`Reader`] follows it from offset 0 at its own pace (it hands out ranges of the
//! file, which the bridge `splice`s to the hook), so a reader that joins late catches up
//! from the file and a slow one holds nobody back. `written` only
//! counts bytes already in the file, so a reader never sees a partial write. Readers wait
//! on a `watch` channel the writer bumps after every write, progress message and outcome.
//! pack-objects' progress messages (its stderr) are kept in memory (up to 256 KiB) and
//! replayed to every reader before the pack bytes available at the time.
//!
//! If the file can't take more (`ENOSPC`, a failing disk, `min_free_disk` crossed) the entry
//! falls back to memory: later bytes are queued in memory for the readers attached now
//! (nobody new can join: the cache forgets the entry), the queue is trimmed as the slowest of
//! them advances, and past [`MEM_BOUND`] queued bytes the writer waits for it — the one case
//! where a reader can slow the writer, and only after the disk failed. If every reader of such
//! an entry leaves, the pack can reach nobody and its generation stops.
//!
//! Dropping the last reference to an entry (the cache forgot it, its generation ended, its
//! last reader left) removes its file: eviction never deletes a file someone still reads.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::watch;

use super::key::{self, Key};
pub use super::reader::Reader;
use crate::metrics::PackCacheMetrics;

/// Pack bytes a writer may queue in memory for its slowest reader once its file failed.
pub const MEM_BOUND: u64 = 16 << 20;
/// Progress messages kept per entry (later ones are dropped).
const STDERR_CAP: usize = 256 << 10;
/// Largest piece of pack a reader takes at once.
pub const READ_CHUNK: u64 = 256 << 10;

/// Why a generation produced no pack.
#[derive(Clone, Debug)]
pub enum Failure {
    /// `[pack_objects_limiting]` refused it (`RESOURCE_EXHAUSTED` with a `LimitError`).
    Refused(tonic::Status),
    /// pack-objects failed or was killed, or its output could reach no reader.
    Failed(String),
}

impl Failure {
    /// The line a hook prints to upload-pack's stderr.
    pub fn message(&self) -> String {
        match self {
            Failure::Refused(s) => {
                format!(
                    "too many pack-objects, please try again later ({})",
                    s.message()
                )
            }
            Failure::Failed(why) => format!("pack-objects failed: {why}"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Generating,
    Done,
    Failed(Failure),
}

/// What a reader gets next.
#[derive(Debug)]
pub enum Next {
    Stderr(Bytes),
    /// Pack bytes from memory (already counted as read).
    Pack(Bytes),
    /// Pack bytes `[at, at + len)` of the entry's file ([`Reader::file`]): the caller
    /// copies what it can and says how much with [`Reader::advance`].
    File {
        at: u64,
        len: u64,
    },
    Done,
    Failed(Failure),
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Wrote {
    Stored,
    /// Stored in memory: the file failed just now (`reason`: `enospc` or `io`).
    FellBack(&'static str),
}

pub struct Entry {
    pub id: u64,
    pub key: Key,
    /// The repository's path on disk.
    pub repo: PathBuf,
    /// `storage/relative_path`, for diagnostics and logs.
    pub label: String,
    pub created: Instant,
    path: Option<PathBuf>,
    pub(super) file: Option<File>,
    st: Mutex<State>,
    /// Bumped on every write, progress message and outcome (readers wait on it).
    pub(super) data: watch::Sender<u64>,
    /// Bumped when a reader advances or leaves (a writer waiting for memory waits on it).
    pub(super) progress: watch::Sender<u64>,
    pub(super) metrics: PackCacheMetrics,
}

pub(super) struct State {
    /// Pack bytes produced and readable.
    pub(super) written: u64,
    /// Of which in the file: `[0, on_disk)`.
    pub(super) on_disk: u64,
    /// In memory: `[mem_start, written)`, once the file failed.
    pub(super) mem: VecDeque<Bytes>,
    pub(super) mem_start: u64,
    pub(super) memory: bool,
    pub(super) stderr: Vec<u8>,
    pub(super) outcome: Outcome,
    /// Attached readers and their offsets.
    pub(super) readers: BTreeMap<u64, u64>,
    next_reader: u64,
    last_access: Instant,
    /// The generating pack-objects, while it runs.
    pid: Option<i32>,
}

impl Entry {
    /// A new entry being generated; `file` (with its path) or, without one, in memory.
    pub fn new(
        id: u64,
        key: Key,
        repo: PathBuf,
        label: String,
        file: Option<(PathBuf, File)>,
        metrics: PackCacheMetrics,
    ) -> Entry {
        let (path, file) = file.map_or((None, None), |(p, f)| (Some(p), Some(f)));
        Entry {
            id,
            key,
            repo,
            label,
            created: Instant::now(),
            st: Mutex::new(State {
                written: 0,
                on_disk: 0,
                mem: VecDeque::new(),
                mem_start: 0,
                memory: file.is_none(),
                stderr: Vec::new(),
                outcome: Outcome::Generating,
                readers: BTreeMap::new(),
                next_reader: 0,
                last_access: Instant::now(),
                pid: None,
            }),
            path,
            file,
            data: watch::channel(0).0,
            progress: watch::channel(0).0,
            metrics,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn bump(tx: &watch::Sender<u64>) {
        tx.send_modify(|v| *v = v.wrapping_add(1));
    }

    // --- the writer (the generation task)

    /// Append pack bytes: to the file, or (once it failed) to memory, waiting there while
    /// [`MEM_BOUND`] bytes are queued for the slowest reader. `Err` if the pack can reach
    /// nobody any more (it is in memory and every reader left).
    pub async fn write(&self, data: Bytes) -> Result<Wrote, String> {
        let n = data.len() as u64;
        let mut wrote = Wrote::Stored;
        let at = {
            let st = self.lock();
            (!st.memory).then_some(st.on_disk)
        };
        if let (Some(at), Some(file)) = (at, &self.file) {
            // Only this task writes, so `at` (the file's length) can't move meanwhile.
            match file.write_all_at(&data, at) {
                Ok(()) => {
                    let mut st = self.lock();
                    st.on_disk += n;
                    st.written += n;
                    drop(st);
                    self.metrics.disk_bytes.inc_by(n as i64);
                    Self::bump(&self.data);
                    return Ok(Wrote::Stored);
                }
                Err(e) => {
                    let reason = match e.raw_os_error() {
                        Some(libc::ENOSPC | libc::EDQUOT) => "enospc",
                        _ => "io",
                    };
                    tracing::warn!(entry = %key::short(&self.key), error = %e, "pack-objects cache: write failed; streaming the rest of this pack from memory");
                    self.fall_back();
                    wrote = Wrote::FellBack(reason);
                }
            }
        }
        loop {
            let mut progress = self.progress.subscribe();
            {
                let mut st = self.lock();
                if st.readers.is_empty() {
                    return Err("every reader left while the pack was kept in memory".into());
                }
                if st.written - st.mem_start < MEM_BOUND || st.mem.is_empty() {
                    st.mem.push_back(data);
                    st.written += n;
                    drop(st);
                    Self::bump(&self.data);
                    return Ok(wrote);
                }
            }
            if progress.changed().await.is_err() {
                return Err("cache entry dropped".into());
            }
        }
    }

    /// From now on bytes go to memory (the disk is failing or nearly full).
    pub fn fall_back(&self) {
        let mut st = self.lock();
        if !st.memory {
            st.memory = true;
            st.mem_start = st.written;
        }
    }

    pub fn in_memory(&self) -> bool {
        self.lock().memory
    }

    pub fn write_stderr(&self, data: &[u8]) {
        let mut st = self.lock();
        let room = STDERR_CAP.saturating_sub(st.stderr.len());
        if room == 0 {
            return;
        }
        st.stderr.extend_from_slice(&data[..data.len().min(room)]);
        drop(st);
        Self::bump(&self.data);
    }

    pub fn set_pid(&self, pid: Option<i32>) {
        self.lock().pid = pid;
    }

    /// The generation ended (once; later calls are ignored).
    pub fn finish(&self, outcome: Outcome) {
        let mut st = self.lock();
        if matches!(st.outcome, Outcome::Generating) {
            st.outcome = outcome;
            st.pid = None;
            drop(st);
            Self::bump(&self.data);
        }
    }

    // --- what the cache asks

    pub fn outcome(&self) -> Outcome {
        self.lock().outcome.clone()
    }

    /// Bytes of its file.
    pub fn on_disk(&self) -> u64 {
        self.lock().on_disk
    }

    pub fn last_access(&self) -> Instant {
        self.lock().last_access
    }

    /// Finished, and nobody reads it: evicting it frees its file now.
    pub fn evictable(&self) -> bool {
        let st = self.lock();
        matches!(st.outcome, Outcome::Done) && st.readers.is_empty()
    }

    /// Attach a reader at offset 0. `generated`: the request that caused the miss.
    pub fn attach(self: &Arc<Self>, cache: Arc<super::Shared>, generated: bool) -> Reader {
        let mut st = self.lock();
        let id = st.next_reader;
        st.next_reader += 1;
        st.readers.insert(id, 0);
        st.last_access = Instant::now();
        drop(st);
        self.metrics.readers.inc();
        Reader::new(self.clone(), cache, id, generated)
    }

    /// What the diagnostics page shows.
    pub fn view(&self, kept: bool, occurrences: u32) -> EntryView {
        let st = self.lock();
        EntryView {
            key: key::short(&self.key),
            repository: self.label.clone(),
            state: match &st.outcome {
                Outcome::Generating => "generating",
                Outcome::Done => "done",
                Outcome::Failed(_) => "failed",
            },
            age_seconds: self.created.elapsed().as_secs_f64(),
            written: st.written,
            on_disk: st.on_disk,
            in_memory: st.memory,
            readers: st.readers.values().copied().collect(),
            kept,
            occurrences,
            pid: st.pid,
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let on_disk = self.st.get_mut().map(|s| s.on_disk).unwrap_or(0);
        self.metrics.disk_bytes.dec_by(on_disk as i64);
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// One entry as the diagnostics page lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EntryView {
    /// First 12 hex digits of the key.
    pub key: String,
    pub repository: String,
    /// `generating`, `done` or `failed`.
    pub state: &'static str,
    pub age_seconds: f64,
    /// Pack bytes so far.
    pub written: u64,
    pub on_disk: u64,
    /// Its file failed (or was never made): streamed from memory, not kept.
    pub in_memory: bool,
    /// Each attached reader's offset.
    pub readers: Vec<u64>,
    /// In the cache's index: new identical requests find it.
    pub kept: bool,
    /// Requests for its key within about `max_age`.
    pub occurrences: u32,
    /// The generating pack-objects.
    pub pid: Option<i32>,
}

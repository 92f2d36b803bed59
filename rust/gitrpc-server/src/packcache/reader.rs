//! A reader of an entry: where it is, what comes next, and detaching (see [`super::entry`]).

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::entry::{Entry, Failure, Next, Outcome, State, READ_CHUNK};

/// A hook invocation reading an entry. Dropping it detaches (the generation goes on).
pub struct Reader {
    entry: Arc<Entry>,
    cache: Arc<super::Shared>,
    rx: watch::Receiver<u64>,
    id: u64,
    offset: u64,
    stderr_at: usize,
    generated: bool,
    /// Served by the fast path (`super::direct`), not to a hook.
    direct: bool,
}

enum Step {
    Give(Next),
    File(u64, u64),
    Wait,
}

impl Reader {
    /// Reader `id` of `entry`, already counted as attached by it.
    pub(super) fn new(
        entry: Arc<Entry>,
        cache: Arc<super::Shared>,
        id: u64,
        generated: bool,
    ) -> Reader {
        Reader {
            rx: entry.data.subscribe(),
            entry,
            cache,
            id,
            offset: 0,
            stderr_at: 0,
            generated,
            direct: false,
        }
    }

    /// The next progress message or piece of pack, then how it ended.
    pub async fn next(&mut self) -> Next {
        loop {
            self.rx.borrow_and_update();
            match self.step() {
                Step::Give(next) => return next,
                Step::File(at, len) if self.entry.file.is_some() => return Next::File { at, len },
                Step::File(..) => {
                    return Next::Failed(Failure::Failed("cache file missing".into()))
                }
                Step::Wait => {
                    if self.rx.changed().await.is_err() {
                        return Next::Failed(Failure::Failed("cache entry dropped".into()));
                    }
                }
            }
        }
    }

    /// The entry's file (for [`Next::File`]).
    pub fn file(&self) -> Option<&File> {
        self.entry.file.as_ref()
    }

    fn step(&mut self) -> Step {
        let mut st = self.entry.lock();
        if self.stderr_at < st.stderr.len() {
            let b = Bytes::copy_from_slice(&st.stderr[self.stderr_at..]);
            self.stderr_at = st.stderr.len();
            return Step::Give(Next::Stderr(b));
        }
        if self.offset < st.written {
            if self.offset < st.on_disk {
                let len = (st.on_disk - self.offset).min(READ_CHUNK);
                return Step::File(self.offset, len);
            }
            // In memory: find the chunk holding `offset` (never trimmed: we are attached).
            let mut at = st.mem_start;
            let mut piece = None;
            for c in &st.mem {
                let end = at + c.len() as u64;
                if self.offset < end {
                    piece = Some(c.slice((self.offset - at) as usize..));
                    break;
                }
                at = end;
            }
            let Some(piece) = piece else {
                return Step::Give(Next::Failed(Failure::Failed("pack bytes lost".into())));
            };
            let n = piece.len() as u64;
            self.offset += n;
            st.readers.insert(self.id, self.offset);
            trim(&mut st);
            drop(st);
            self.served(n);
            Entry::bump(&self.entry.progress);
            return Step::Give(Next::Pack(piece));
        }
        match &st.outcome {
            Outcome::Generating => Step::Wait,
            Outcome::Done => Step::Give(Next::Done),
            Outcome::Failed(f) => Step::Give(Next::Failed(f.clone())),
        }
    }

    /// `n` bytes of a [`Next::File`] range were handed on.
    pub fn advance(&mut self, n: u64) {
        self.offset += n;
        let mut st = self.entry.lock();
        st.readers.insert(self.id, self.offset);
        let memory = st.memory;
        if memory {
            trim(&mut st);
        }
        drop(st);
        self.served(n);
        if memory {
            Entry::bump(&self.entry.progress);
        }
    }

    fn served(&self, n: u64) {
        let source = match (self.direct, self.generated) {
            (true, _) => "direct",
            (false, true) => "generated",
            (false, false) => "cache",
        };
        self.entry.metrics.served(n, source);
    }

    /// This reader is the fast path's.
    pub fn set_direct(&mut self) {
        self.direct = true;
    }

    pub fn entry(&self) -> &Arc<Entry> {
        &self.entry
    }
}

/// Drop queued memory every attached reader has passed.
fn trim(st: &mut State) {
    let slowest = st.readers.values().copied().min().unwrap_or(st.written);
    while let Some(front) = st.mem.front() {
        let end = st.mem_start + front.len() as u64;
        if end > slowest {
            break;
        }
        st.mem_start = end;
        st.mem.pop_front();
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut st = self.entry.lock();
        st.readers.remove(&self.id);
        if st.memory {
            trim(&mut st);
        }
        drop(st);
        self.entry.metrics.readers.dec();
        Entry::bump(&self.entry.progress);
        self.cache.reader_left(&self.entry);
    }
}

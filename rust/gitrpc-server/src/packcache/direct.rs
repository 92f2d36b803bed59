//! The fast path: a protocol-v2 `fetch` whose pack is already in the cache (or being
//! generated for an identical request) is answered by the server itself, without the
//! session's upload-pack relaying the pack through its side-band framing.
//!
//! The server cannot know from a fetch request alone which entry holds its pack: entries are
//! keyed by what upload-pack hands pack-objects. So the mapping is *learned*: a request
//! (its direct key, see `crate::services::fastpath`) seen for the first time goes to
//! upload-pack as always, and the entry its pack-objects hook then looks up in the same
//! session is recorded for that key. Identical requests that arrive while it is learned wait
//! for it (a storm of clones costs one upload-pack relay, not one per client); later ones
//! read the entry directly. A mapping is only as good as its entry: once the entry is no
//! longer in the cache's index (expired, evicted, failed, invalidated by a push) the next
//! request learns again.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::watch;

use super::entry::{Next, Outcome, Reader};
use super::key::Key;
use super::{lock, Shared};
use crate::metrics::Lookup;

/// Largest side-band data in one pkt-line (`LARGE_PACKET_MAX` - 4 - 1).
const MAX_SIDEBAND_DATA: usize = 65515;

/// The direct key of a fetch request.
pub type DirectKey = [u8; 32];

#[derive(Default)]
pub(super) struct Mappings(Mutex<HashMap<DirectKey, Slot>>);

enum Slot {
    /// A session is learning it; its sender is dropped (or set) when it is done.
    Learning(watch::Receiver<bool>),
    /// The cache entry `(key, id)` holds (or is generating) the pack.
    Known(Key, u64),
}

/// What a fetch request found.
pub enum Lookup2 {
    /// Serve this pack.
    Serve(DirectPack),
    /// Unknown: this request learns it (send it to upload-pack, then report the entry).
    Learn(Learner),
    /// Another session is learning it: wait on this, then look again.
    Wait(watch::Receiver<bool>),
}

impl Shared {
    pub(super) fn direct_lookup(self: &Arc<Self>, dkey: DirectKey) -> Lookup2 {
        let mut map = lock(&self.direct.0);
        match map.get(&dkey) {
            Some(Slot::Learning(rx)) if rx.has_changed().is_ok() && !*rx.borrow() => {
                return Lookup2::Wait(rx.clone())
            }
            Some(Slot::Known(key, id)) => {
                if let Some(reader) = self.attach_direct(key, *id) {
                    return Lookup2::Serve(DirectPack::new(reader));
                }
            }
            _ => {}
        }
        let (tx, rx) = watch::channel(false);
        map.insert(dkey, Slot::Learning(rx));
        Lookup2::Learn(Learner {
            shared: self.clone(),
            dkey,
            tx: Some(tx),
        })
    }

    /// A reader of the entry `(key, id)` if it is still the cache's entry for `key` and
    /// servable (generating, or done and not expired).
    fn attach_direct(self: &Arc<Self>, key: &Key, id: u64) -> Option<Reader> {
        let mut ix = lock(&self.index);
        ix.rotate(self.settings.max_age);
        let e = ix.entries.get(key).filter(|e| e.id == id).cloned()?;
        let servable = match e.outcome() {
            Outcome::Generating => true,
            Outcome::Done => e.created.elapsed() < self.settings.max_age,
            Outcome::Failed(_) => false,
        };
        if !servable {
            return None;
        }
        *ix.seen.entry(*key).or_default() += 1;
        let mut reader = e.attach(self.clone(), false);
        drop(ix);
        reader.set_direct();
        self.metrics.looked_up(Lookup::HitDirect);
        Some(reader)
    }

    /// Forget mappings to entries the index no longer holds (called without the index
    /// lock: lookups take the mappings' lock, then the index's).
    pub(super) fn prune_direct(&self, live: &std::collections::HashSet<(Key, u64)>) {
        lock(&self.direct.0).retain(|_, slot| match slot {
            Slot::Known(key, id) => live.contains(&(*key, *id)),
            Slot::Learning(_) => true,
        });
    }

    /// How many fetch requests have a learned mapping (for diagnostics).
    pub(super) fn direct_mappings(&self) -> usize {
        lock(&self.direct.0)
            .values()
            .filter(|s| matches!(s, Slot::Known(..)))
            .count()
    }
}

/// A request learning its mapping. Dropped without [`Learner::learned`], it lets the next
/// identical request learn instead.
pub struct Learner {
    shared: Arc<Shared>,
    dkey: DirectKey,
    tx: Option<watch::Sender<bool>>,
}

impl Learner {
    /// The session's pack-objects hook read entry `(key, id)` for this request.
    pub fn learned(mut self, (key, id): (Key, u64)) {
        lock(&self.shared.direct.0).insert(self.dkey, Slot::Known(key, id));
        if let Some(tx) = self.tx.take() {
            tx.send_replace(true);
        }
    }
}

impl Drop for Learner {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let mut map = lock(&self.shared.direct.0);
            if let Some(Slot::Learning(rx)) = map.get(&self.dkey) {
                if rx.same_channel(&tx.subscribe()) {
                    map.remove(&self.dkey);
                }
            }
        }
    }
}

/// A pack served directly: the protocol-v2 `packfile` section, as upload-pack writes it
/// (`packfile` line, the pack in side-band-64k band-1 pkt-lines, flush), without progress.
pub struct DirectPack {
    reader: Reader,
    started: bool,
    finished: bool,
}

impl DirectPack {
    fn new(reader: Reader) -> DirectPack {
        DirectPack {
            reader,
            started: false,
            finished: false,
        }
    }

    /// The next bytes of the response; `Ok(None)` after the final flush. An error (the
    /// generation failed) comes after the client was told on band 3, as upload-pack does.
    pub async fn next(&mut self) -> Result<Option<Bytes>, String> {
        if self.finished {
            return Ok(None);
        }
        let mut out = BytesMut::new();
        if !self.started {
            self.started = true;
            out.put_slice(b"000dpackfile\n");
        }
        loop {
            match self.reader.next().await {
                Next::Stderr(_) => continue,
                Next::Pack(b) => frame(&mut out, &b),
                Next::File { at, len } => {
                    // One pkt-line at a time, read straight into it: what waits in the
                    // session's queue stays small (20 clients × its 16 items).
                    let n = len.min(MAX_SIDEBAND_DATA as u64) as usize;
                    let file = self.reader.file().ok_or("cache file missing")?;
                    out.reserve(5 + n);
                    out.put_slice(format!("{:04x}", n + 5).as_bytes());
                    out.put_u8(1);
                    let start = out.len();
                    out.resize(start + n, 0);
                    file.read_exact_at(&mut out[start..], at)
                        .map_err(|e| format!("reading the cached pack: {e}"))?;
                    self.reader.advance(n as u64);
                }
                Next::Done => {
                    out.put_slice(b"0000");
                    self.finished = true;
                }
                Next::Failed(f) => {
                    self.finished = true;
                    let msg = b"aborting due to possible repository corruption on the remote side.";
                    put_band(&mut out, 3, msg);
                    return Err(f.message());
                }
            }
            return Ok(Some(out.freeze()));
        }
    }
}

/// Append `data` as band-1 pkt-lines.
fn frame(out: &mut BytesMut, data: &[u8]) {
    for piece in data.chunks(MAX_SIDEBAND_DATA) {
        put_band(out, 1, piece);
    }
}

fn put_band(out: &mut BytesMut, band: u8, data: &[u8]) {
    out.put_slice(format!("{:04x}", data.len() + 5).as_bytes());
    out.put_u8(band);
    out.put_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_side_band_64k() {
        let mut out = BytesMut::new();
        frame(&mut out, &vec![7u8; MAX_SIDEBAND_DATA + 1]);
        assert_eq!(&out[..5], b"fff0\x01");
        let second = 4 + 1 + MAX_SIDEBAND_DATA;
        assert_eq!(&out[second..second + 6], b"0006\x01\x07");
        assert_eq!(out.len(), second + 6);
    }
}

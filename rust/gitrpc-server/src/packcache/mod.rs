//! The pack-objects cache (`[pack_objects_cache]`): a storm of identical fetches costs one
//! `git pack-objects`, not one each.
//!
//! git upload-pack hands pack generation to `uploadpack.packObjectsHook`; ours is a shell
//! script that passes the request to the server that started upload-pack ([`bridge`]: a
//! FIFO per session, as the pre-receive bridge does). The server keys the request
//! ([`key`]: repository, arguments, protocol, every byte of stdin) and either reads an
//! existing entry or starts one generation ([`generate`]: `pack-objects` run by our own
//! executor, so its CPU and count show in the git metrics) whose pack goes into a file
//! ([`store`]) that every reader follows at its own pace ([`entry`]).
//!
//! What holds:
//! - **One generation per distinct request at any moment.** An entry is in the index from
//!   the moment its generation starts, so an identical request that arrives meanwhile
//!   reads the same growing file (coalescing), even on the key's first sight and whatever
//!   `min_occurrences` says about keeping it afterwards.
//! - **Readers never slow the writer or each other** (the pack goes to the file at git's
//!   speed), and a reader that leaves never stops a generation: it is owned by the cache,
//!   not by the request that started it.
//! - **A failed generation is never served**: its readers get an error (their hook exits
//!   non-zero, so upload-pack aborts and the client's fetch fails cleanly) and its entry
//!   is forgotten at once.
//! - **Kept** after generation only if the key was asked for more than `min_occurrences`
//!   times within about `max_age` (Gitaly's rule), and only while younger than `max_age`;
//!   an entry not worth keeping still serves identical requests until its last reader is
//!   done (its file exists until then anyway).
//!   `max_bytes` bounds the files: past it the least recently used entries nobody reads are
//!   evicted; an entry being read or generated never is (disk use may pass the bound until
//!   they end). A file is removed when the last reference to its entry goes.
//! - **Disk trouble never fails a fetch**: below `min_free_disk`, or if the file can't be
//!   made or written (`ENOSPC`), the pack streams to its readers from memory (see [`entry`]),
//!   is not kept, and `gitrpc_pack_objects_cache_fallbacks_total` counts it.
//! - **`[pack_objects_limiting]` applies to misses only**: the slot is taken by the
//!   generation, keyed by the request that caused the miss (server-wide, per `remote_ip` or
//!   per user); hits and coalesced readers never wait. A refused generation fails its readers
//!   and the call answers `RESOURCE_EXHAUSTED` as without the cache.
//! - **A push forgets the repository's entries** (receive-pack and every ref update of
//!   ours), so the next fetch is a miss. Writes by other programs are only bounded by
//!   `max_age`, as in Gitaly.

mod bridge;
mod direct;
mod entry;
mod generate;
pub mod key;
mod pipes;
mod reader;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use gitrpc_git::Git;
use gitrpc_proto::identity::Identity;
use tokio::task::AbortHandle;

pub use bridge::{Session, SCRIPT};
pub use direct::{DirectKey, DirectPack, Learner, Lookup2 as DirectLookup};
pub use entry::EntryView;
use entry::{Entry, Outcome, Reader};
use generate::Job;
use key::Key;

use crate::config::PackObjectsCacheConfig;
use crate::limits::Limits;
use crate::metrics::{Lookup, PackCacheMetrics};

/// The cache of one server (`None` in `Deps` when disabled). Dropping it stops its
/// generations and sweeper and removes its files and hook.
pub struct PackCache {
    shared: Arc<Shared>,
    hook: bridge::HookScript,
    sweeper: AbortHandle,
}

/// What the diagnostics page shows of the fast path.
#[derive(serde::Serialize)]
pub struct DirectStats {
    pub mappings: usize,
    pub served: u64,
    pub bytes: u64,
}

/// Settings taken from the config.
struct Settings {
    max_age: Duration,
    min_occurrences: u32,
    max_bytes: Option<u64>,
    min_free_disk: u64,
}

pub(crate) struct Shared {
    settings: Settings,
    limits: Arc<Limits>,
    metrics: PackCacheMetrics,
    store: store::Store,
    index: Mutex<Index>,
    /// Every entry alive (kept, in flight, forgotten but still read), for diagnostics.
    live: Mutex<BTreeMap<u64, Weak<Entry>>>,
    /// Generations running, to stop them with the cache.
    tasks: Mutex<HashMap<u64, AbortHandle>>,
    next_id: AtomicU64,
    /// Where sessions make their directories (`<first storage>/+gitrpc/hooks-run`).
    bridge_dir: PathBuf,
    /// The fast path's fetch request → entry mappings.
    direct: direct::Mappings,
}

#[derive(Default)]
struct Index {
    entries: HashMap<Key, Arc<Entry>>,
    /// Requests per key: this period and the one before (rotated every `max_age`).
    seen: HashMap<Key, u32>,
    seen_before: HashMap<Key, u32>,
    rotated: Option<Instant>,
}

impl Index {
    fn occurrences(&self, key: &Key) -> u32 {
        self.seen.get(key).copied().unwrap_or(0) + self.seen_before.get(key).copied().unwrap_or(0)
    }

    fn rotate(&mut self, max_age: Duration) {
        let now = Instant::now();
        match self.rotated {
            Some(at) if now.duration_since(at) < max_age => {}
            _ => {
                self.seen_before = std::mem::take(&mut self.seen);
                self.rotated = Some(now);
            }
        }
    }

    /// Forget `key`'s entry if it is `entry`.
    fn remove_if(&mut self, entry: &Entry) -> bool {
        if self
            .entries
            .get(&entry.key)
            .is_some_and(|e| e.id == entry.id)
        {
            self.entries.remove(&entry.key);
            return true;
        }
        false
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PackCache {
    /// Open the cache directory (default `<internal>/pack-objects-cache`) and write the
    /// hook script under `bridge_dir`.
    pub fn start(
        config: &PackObjectsCacheConfig,
        internal: &Path,
        bridge_dir: &Path,
        limits: Arc<Limits>,
        metrics: PackCacheMetrics,
    ) -> std::io::Result<PackCache> {
        let root = config
            .dir
            .clone()
            .unwrap_or_else(|| internal.join("pack-objects-cache"));
        let store = store::Store::open(&root, config.max_age)?;
        let hook = bridge::HookScript::create(bridge_dir)?;
        let shared = Arc::new(Shared {
            settings: Settings {
                max_age: config.max_age,
                min_occurrences: config.min_occurrences,
                max_bytes: config.max_bytes,
                min_free_disk: config.min_free_disk,
            },
            limits,
            metrics,
            store,
            index: Mutex::default(),
            live: Mutex::default(),
            tasks: Mutex::default(),
            next_id: AtomicU64::new(1),
            bridge_dir: bridge_dir.to_path_buf(),
            direct: direct::Mappings::default(),
        });
        let sweeper = tokio::spawn(sweeper(Arc::downgrade(&shared))).abort_handle();
        Ok(PackCache {
            shared,
            hook,
            sweeper,
        })
    }

    /// The channel for one upload-pack session: its pack-objects hook's requests are keyed
    /// by `repo` (path on disk), `protocol` (`git_protocol`) and what the hook sends;
    /// generations it causes are limited by `caller`'s key and run by `git` (the call's).
    pub fn session(
        &self,
        repo: &Path,
        label: String,
        protocol: &str,
        caller: &Identity,
        git: &Git,
    ) -> std::io::Result<Session> {
        self.hook.ensure()?;
        Session::open(
            self.shared.clone(),
            repo.to_path_buf(),
            label,
            protocol.to_string(),
            self.shared.limits.pack_key_of(caller),
            git.clone(),
        )
    }

    /// `uploadpack.packObjectsHook`: the script's path, quoted for the shell git runs it
    /// with.
    pub fn hook_config(&self) -> &str {
        self.hook.config_value()
    }

    /// The hook script.
    pub fn hook_path(&self) -> &Path {
        self.hook.path()
    }

    /// `repo` changed: forget its entries (the next fetch generates again).
    pub fn invalidate(&self, repo: &Path) {
        self.shared.invalidate(repo);
    }

    /// The fast path: serve the v2 fetch request keyed `dkey` from the cache, learn its
    /// entry, or wait for the session learning it (see [`direct`]).
    pub fn direct_lookup(&self, dkey: DirectKey) -> DirectLookup {
        self.shared.direct_lookup(dkey)
    }

    /// The fast path so far: requests it knows the entry of, requests it served, pack
    /// bytes it sent.
    pub fn direct_stats(&self) -> DirectStats {
        let m = &self.shared.metrics;
        DirectStats {
            mappings: self.shared.direct_mappings(),
            served: m.lookup_count(crate::metrics::Lookup::HitDirect),
            bytes: m.served_count("direct"),
        }
    }

    /// Every entry alive, oldest first.
    pub fn entries(&self) -> Vec<EntryView> {
        self.shared.views()
    }

    /// The directory this cache writes its files to.
    pub fn dir(&self) -> &Path {
        &self.shared.store.dir
    }
}

impl Drop for PackCache {
    fn drop(&mut self) {
        self.sweeper.abort();
        for (_, t) in lock(&self.shared.tasks).drain() {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&self.shared.store.dir);
    }
}

impl Shared {
    /// Find or start the pack for `job`; returns a reader attached to it and how the
    /// lookup went.
    fn fetch(self: &Arc<Self>, job: Job) -> (Reader, Lookup) {
        let mut ix = lock(&self.index);
        ix.rotate(self.settings.max_age);
        *ix.seen.entry(job.key).or_default() += 1;
        if let Some(e) = ix.entries.get(&job.key).cloned() {
            let expired = e.created.elapsed() >= self.settings.max_age;
            // Attached under the index lock, so eviction can't pick it meanwhile.
            match e.outcome() {
                Outcome::Generating => {
                    let reader = e.attach(self.clone(), false);
                    drop(ix);
                    self.metrics.looked_up(Lookup::Coalesced);
                    return (reader, Lookup::Coalesced);
                }
                Outcome::Done if !expired => {
                    let reader = e.attach(self.clone(), false);
                    drop(ix);
                    self.metrics.looked_up(Lookup::Hit);
                    return (reader, Lookup::Hit);
                }
                Outcome::Done => {
                    ix.entries.remove(&job.key);
                    self.metrics.evicted("max_age");
                }
                Outcome::Failed(_) => {
                    ix.entries.remove(&job.key);
                }
            }
        }
        self.evict(&mut ix);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let file = self.file_for(&job.key, id);
        let entry = Arc::new(Entry::new(
            id,
            job.key,
            job.repo.clone(),
            job.label.clone(),
            file,
            self.metrics.clone(),
        ));
        let reader = entry.attach(self.clone(), true);
        if !entry.in_memory() {
            ix.entries.insert(job.key, entry.clone());
        }
        self.metrics.entries.set(ix.entries.len() as i64);
        drop(ix);
        lock(&self.live).insert(id, Arc::downgrade(&entry));
        self.metrics.looked_up(Lookup::Miss);
        let mut tasks = lock(&self.tasks);
        let task = tokio::spawn(generate::run(self.clone(), entry, job));
        tasks.insert(id, task.abort_handle());
        (reader, Lookup::Miss)
    }

    /// A file for a new entry, or `None` (with the fallback counted) to stream it from
    /// memory.
    fn file_for(&self, key: &Key, id: u64) -> Option<(PathBuf, std::fs::File)> {
        let min = self.settings.min_free_disk;
        if min > 0 && self.store.free_bytes().is_some_and(|free| free < min) {
            self.metrics.fell_back("min_free_disk");
            tracing::warn!(dir = %self.store.dir.display(), min_free_disk = min, "pack-objects cache: disk nearly full; streaming this pack without keeping it");
            return None;
        }
        match self.store.create(key, id) {
            Ok(f) => Some(f),
            Err(e) => {
                self.metrics.fell_back("create");
                tracing::warn!(dir = %self.store.dir.display(), error = %e, "pack-objects cache: can't create a file; streaming this pack without keeping it");
                None
            }
        }
    }

    /// Is free space on the cache's filesystem below `min_free_disk`?
    fn below_min_free_disk(&self) -> bool {
        let min = self.settings.min_free_disk;
        min > 0 && self.store.free_bytes().is_some_and(|free| free < min)
    }

    /// `entry`'s file failed or the disk filled up mid-generation: new requests must not
    /// join it (they would need its bytes from the start).
    fn fell_back(&self, entry: &Entry, reason: &'static str) {
        self.metrics.fell_back(reason);
        let mut ix = lock(&self.index);
        ix.remove_if(entry);
        self.metrics.entries.set(ix.entries.len() as i64);
    }

    /// `entry`'s generation ended: forget it if it failed, is too big, or isn't worth
    /// keeping and nobody reads it.
    fn finished(&self, entry: &Entry, outcome: &Outcome) {
        let mut ix = lock(&self.index);
        match outcome {
            Outcome::Failed(_) if ix.remove_if(entry) => self.metrics.evicted("failed"),
            Outcome::Done => {
                let too_big = self
                    .settings
                    .max_bytes
                    .is_some_and(|max| entry.on_disk() > max);
                if too_big && ix.remove_if(entry) {
                    self.metrics.evicted("max_bytes");
                } else {
                    self.drop_if_unwanted(&mut ix, entry);
                }
            }
            _ => {}
        }
        self.evict(&mut ix);
        self.metrics.entries.set(ix.entries.len() as i64);
        drop(ix);
        lock(&self.tasks).remove(&entry.id);
    }

    /// `min_occurrences`: a finished entry whose key wasn't asked for often enough goes once
    /// nobody reads it. Until then its file exists anyway, so identical requests may still
    /// join it.
    fn drop_if_unwanted(&self, ix: &mut Index, entry: &Entry) {
        if ix.occurrences(&entry.key) <= self.settings.min_occurrences
            && entry.evictable()
            && ix.remove_if(entry)
        {
            self.metrics.evicted("min_occurrences");
        }
    }

    /// A reader detached: the entry may be unwanted now, or evictable.
    fn reader_left(&self, entry: &Entry) {
        let mut ix = lock(&self.index);
        self.drop_if_unwanted(&mut ix, entry);
        self.evict(&mut ix);
        self.metrics.entries.set(ix.entries.len() as i64);
    }

    /// `max_bytes`: evict least recently used entries nobody reads until the files fit.
    fn evict(&self, ix: &mut Index) {
        let Some(max) = self.settings.max_bytes else {
            return;
        };
        let mut disk = self.metrics.disk_bytes.get().max(0) as u64;
        while disk > max {
            let lru = ix
                .entries
                .values()
                .filter(|e| e.evictable())
                .min_by_key(|e| e.last_access())
                .cloned();
            let Some(e) = lru else { break };
            ix.entries.remove(&e.key);
            disk = disk.saturating_sub(e.on_disk());
            self.metrics.evicted("max_bytes");
        }
    }

    fn invalidate(&self, repo: &Path) {
        let mut ix = lock(&self.index);
        let before = ix.entries.len();
        ix.entries.retain(|_, e| e.repo != repo);
        for _ in ix.entries.len()..before {
            self.metrics.evicted("invalidated");
        }
        self.metrics.entries.set(ix.entries.len() as i64);
    }

    /// Forget finished entries older than `max_age`; rotate the occurrence counts.
    fn expire(&self) {
        let mut ix = lock(&self.index);
        ix.rotate(self.settings.max_age);
        let max_age = self.settings.max_age;
        let before = ix.entries.len();
        ix.entries.retain(|_, e| {
            matches!(e.outcome(), Outcome::Generating) || e.created.elapsed() < max_age
        });
        for _ in ix.entries.len()..before {
            self.metrics.evicted("max_age");
        }
        let all: Vec<Arc<Entry>> = ix.entries.values().cloned().collect();
        for e in all {
            self.drop_if_unwanted(&mut ix, &e);
        }
        self.evict(&mut ix);
        self.metrics.entries.set(ix.entries.len() as i64);
        let live = ix.entries.values().map(|e| (e.key, e.id)).collect();
        drop(ix);
        self.prune_direct(&live);
    }

    fn views(&self) -> Vec<EntryView> {
        let ix = lock(&self.index);
        let mut live = lock(&self.live);
        live.retain(|_, w| w.strong_count() > 0);
        live.values()
            .filter_map(Weak::upgrade)
            .map(|e| {
                let kept = ix.entries.get(&e.key).is_some_and(|k| k.id == e.id);
                e.view(kept, ix.occurrences(&e.key))
            })
            .collect()
    }
}

/// Expire entries and sweep the directory every `max_age / 2` (between 50 ms and 30 s).
async fn sweeper(shared: Weak<Shared>) {
    let every = match shared.upgrade() {
        Some(s) => {
            (s.settings.max_age / 2).clamp(Duration::from_millis(50), Duration::from_secs(30))
        }
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(s) = shared.upgrade() else { return };
        s.expire();
        let max_age = s.settings.max_age;
        let _ = tokio::task::spawn_blocking(move || s.store.sweep(max_age)).await;
    }
}

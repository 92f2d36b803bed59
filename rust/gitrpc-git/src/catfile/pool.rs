//! The pool of idle cat-file processes, keyed by repository; a [`Lease`] hands one out and
//! takes it back when dropped (or kills it if it was left mid-object).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::{proto, CatFile};
use crate::{Git, Result};

/// Pool settings.
#[derive(Clone, Debug)]
pub struct CatFilePoolConfig {
    /// Idle processes kept at most (over all repositories); the oldest is killed first.
    pub max_idle: usize,
    /// An idle process older than this is killed.
    pub idle_ttl: Duration,
}

impl Default for CatFilePoolConfig {
    fn default() -> Self {
        CatFilePoolConfig {
            max_idle: 64,
            idle_ttl: Duration::from_secs(60),
        }
    }
}

struct Shared {
    git: Git,
    config: CatFilePoolConfig,
    idle: Mutex<VecDeque<CatFile>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A bounded pool of idle cat-file processes, keyed by repository path.
#[derive(Clone)]
pub struct CatFilePool {
    shared: Arc<Shared>,
}

impl CatFilePool {
    /// Create a pool; inside a tokio runtime a sweeper kills processes idle past the TTL.
    pub fn new(git: Git, config: CatFilePoolConfig) -> Self {
        let shared = Arc::new(Shared {
            git,
            config,
            idle: Mutex::new(VecDeque::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&shared);
            let tick = (shared.config.idle_ttl / 2).max(Duration::from_millis(50));
            h.spawn(sweep(weak, tick));
        }
        CatFilePool { shared }
    }

    /// A process for `repo`: an idle one if there is one (skipping any that died while
    /// idle), else a new one.
    pub fn get(&self, repo: &Path) -> Result<Lease> {
        self.get_with(&self.shared.git, repo)
    }

    /// [`CatFilePool::get`], a new process started by `git` (the same installation with
    /// another observer, e.g. one call's), so its observer sees the spawn. The process is
    /// then the pool's like any other.
    pub fn get_with(&self, git: &Git, repo: &Path) -> Result<Lease> {
        let reused = loop {
            let found = {
                let mut idle = self.shared.idle.lock().unwrap();
                idle.iter()
                    .rposition(|c| c.repo == repo)
                    .and_then(|i| idle.remove(i))
            };
            match found {
                Some(c) if c.has_exited() => {
                    tracing::info!(pid = c.pid(), "idle cat-file died; dropping it");
                    drop(c);
                }
                other => break other,
            }
        };
        let cat = match reused {
            Some(c) => {
                self.shared.hits.fetch_add(1, Ordering::Relaxed);
                c
            }
            None => {
                self.shared.misses.fetch_add(1, Ordering::Relaxed);
                let mut c = CatFile::spawn(git, repo)?;
                // A replacement for it (after it died) is the pool's, not the caller's.
                c.git = self.shared.git.clone();
                c
            }
        };
        Ok(Lease {
            pool: Arc::downgrade(&self.shared),
            cat: Some(cat),
            dedicated: false,
        })
    }

    /// A process of its own for `repo` with `env` (a quarantine's object directories), never
    /// pooled: it is killed when the lease is dropped, so it can't outlive what `env` names.
    /// Started by `git` (see [`CatFilePool::get_with`]).
    pub fn dedicated(
        &self,
        git: &Git,
        repo: &Path,
        env: Vec<(&'static str, OsString)>,
    ) -> Result<Lease> {
        Ok(Lease {
            pool: Weak::new(),
            cat: Some(CatFile::spawn_with_env(git, repo, env)?),
            dedicated: true,
        })
    }

    /// (hits, misses, idle processes)
    pub fn stats(&self) -> (u64, u64, usize) {
        (
            self.shared.hits.load(Ordering::Relaxed),
            self.shared.misses.load(Ordering::Relaxed),
            self.shared.idle.lock().unwrap().len(),
        )
    }

    /// Kill idle processes of one repository (after it is removed, say).
    pub fn evict(&self, repo: &Path) {
        let evicted: VecDeque<CatFile> = {
            let mut idle = self.shared.idle.lock().unwrap();
            let (gone, keep) = idle.drain(..).partition(|c| c.repo.starts_with(repo));
            *idle = keep;
            gone
        };
        drop(evicted);
    }
}

async fn sweep(pool: Weak<Shared>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let Some(shared) = pool.upgrade() else { return };
        let ttl = shared.config.idle_ttl;
        let expired: VecDeque<CatFile> = {
            let mut idle = shared.idle.lock().unwrap();
            let (gone, keep) = idle.drain(..).partition(|c| c.last_used.elapsed() > ttl);
            *idle = keep;
            gone
        };
        drop(expired);
    }
}

/// A process borrowed from the pool; returned on drop if it is clean, killed otherwise.
pub struct Lease {
    pool: Weak<Shared>,
    cat: Option<CatFile>,
    /// Not from the pool ([`CatFilePool::dedicated`]): replaced by a process like it.
    dedicated: bool,
}

impl std::ops::Deref for Lease {
    type Target = CatFile;
    fn deref(&self) -> &CatFile {
        self.cat.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut CatFile {
        self.cat.as_mut().expect("present until drop")
    }
}

impl Lease {
    /// After an object was cut short, the process may still hold its (large) remainder:
    /// swap it for a clean one from the same pool (the dirty one is killed) rather than
    /// read it all.
    pub fn ensure_clean(&mut self) -> Result<()> {
        if !self.is_dirty() {
            return Ok(());
        }
        if self.dedicated {
            let cat = self.cat.as_ref().expect("present until drop");
            let fresh = CatFile::spawn_with_env(&cat.git, &cat.repo, cat.env.clone())?;
            // The dirty one is killed as it is dropped.
            self.cat = Some(fresh);
            return Ok(());
        }
        let shared = self
            .pool
            .upgrade()
            .ok_or_else(|| proto("cat-file pool is gone"))?;
        let repo = self.repo().to_path_buf();
        let fresh = CatFilePool { shared }.get(&repo)?;
        // Dropping the old lease kills its dirty process.
        *self = fresh;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(cat) = self.cat.take() else { return };
        let Some(shared) = self.pool.upgrade() else {
            return;
        };
        if cat.is_dirty() {
            tracing::debug!(pid = cat.pid(), "killing dirty cat-file process");
            return;
        }
        let evicted = {
            let mut idle = shared.idle.lock().unwrap();
            idle.push_back(cat);
            if idle.len() > shared.config.max_idle {
                idle.pop_front()
            } else {
                None
            }
        };
        drop(evicted);
    }
}

//! What a git killed mid-way leaves in a repository, found and removed the way Gitaly's
//! housekeeping does (`internal/git/housekeeping/clean_stale_data.go`): files older than a
//! grace period. We add one rule Gitaly can't have: nothing is removed from a repository
//! while a git of ours (other than a read-only `cat-file`) works in it, since that git may
//! hold it.
//!
//! - Lock files of the ref store: `refs/**/*.lock`, `packed-refs.lock`, `HEAD.lock`,
//!   `config.lock`. A killed `update-ref` leaves them, and the refs stay unwritable (a
//!   [`crate::RefError::Locked`] failure, [`crate::Error::is_locked`]) until someone removes
//!   them.
//! - Quarantine directories `objects/tmp_objdir-*` of a receive-pack that was killed with
//!   SIGKILL (on SIGTERM git removes its own), and of a server's operations
//!   (`tmp_objdir-gitrpc-<pid>.<start>-<hex>`, named after the server process): those of a
//!   server that still runs are in use and kept whatever their age, those of one that died
//!   are removed at once.
//!
//! And what keeps a repository fast, Gitaly's `OptimizeRepository`: [`stats`] reads its
//! state, [`strategy`] decides what to do (Gitaly's heuristics and constants), [`tasks`]
//! builds the git commands, [`stale`] removes the rest of what crashed git leaves.

pub mod stale;
pub mod stats;
pub mod strategy;
pub mod tasks;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::observer::Processes;

/// Gitaly's `ReferenceLockfileGracePeriod` (and `packedRefsLockGracePeriod`): a lock younger
/// than this may belong to a git that is still running somewhere.
pub const LOCK_GRACE: Duration = Duration::from_secs(3600);

/// Gitaly's `deleteTempObjectDirectoriesOlderThanDuration`.
pub const TMP_OBJDIR_GRACE: Duration = Duration::from_secs(72 * 3600);

/// Lock files outside `refs/` that writing refs takes.
const TOP_LOCKS: &[&str] = &["packed-refs.lock", "HEAD.lock", "config.lock"];

/// Is a git of ours (one in `processes`), other than `cat-file` (which only reads), working
/// in `repo` now?
pub fn busy(processes: &Processes, repo: &Path) -> bool {
    processes.list().iter().any(|p| {
        p.subcommand != "cat-file"
            && p.args.iter().any(|a| {
                a.to_str()
                    .and_then(|a| a.strip_prefix("--git-dir="))
                    .is_some_and(|d| Path::new(d) == repo)
            })
    })
}

fn older_than(meta: &std::fs::Metadata, grace: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= grace)
}

/// Lock files of `repo`'s ref store older than `grace`.
pub fn stale_locks(repo: &Path, grace: Duration) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for name in TOP_LOCKS {
        let p = repo.join(name);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && older_than(&m, grace)) {
            out.push(p);
        }
    }
    let mut stack = vec![repo.join("refs")];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file()
                && e.file_name().as_encoded_bytes().ends_with(b".lock")
                && e.metadata().is_ok_and(|m| older_than(&m, grace))
            {
                out.push(e.path());
            }
        }
    }
    Ok(out)
}

/// Quarantine directories (`objects/tmp_objdir-*`) of `repo` older than `grace`.
pub fn stale_tmp_objdirs(repo: &Path, grace: Duration) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(repo.join("objects")) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.file_name().as_encoded_bytes().starts_with(b"tmp_objdir-"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| match crate::lifetime::owner_running(&e.path()) {
            // Ours: in use while its server runs, stale as soon as it doesn't.
            Some(running) => !running,
            None => e.metadata().is_ok_and(|m| older_than(&m, grace)),
        })
        .map(|e| e.path())
        .collect())
}

/// What [`clean_repository`] removed.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub locks: Vec<PathBuf>,
    pub tmp_objdirs: Vec<PathBuf>,
}

impl Cleaned {
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty() && self.tmp_objdirs.is_empty()
    }
}

/// Grace periods for [`clean_repository`].
#[derive(Clone, Copy, Debug)]
pub struct Grace {
    pub locks: Duration,
    pub tmp_objdirs: Duration,
}

impl Default for Grace {
    fn default() -> Self {
        Grace {
            locks: LOCK_GRACE,
            tmp_objdirs: TMP_OBJDIR_GRACE,
        }
    }
}

/// One cleaner at a time in this process: two cleaners that both saw the same stale lock
/// must not remove a fresh one a writer made in between.
static CLEANING: Mutex<()> = Mutex::new(());

/// Remove lock files of `repo`'s ref store older than `grace` (none while [`busy`]).
/// Blocking file-system work: call it off the async runtime.
pub fn remove_stale_locks(
    processes: &Processes,
    repo: &Path,
    grace: Duration,
) -> io::Result<Vec<PathBuf>> {
    let _one = CLEANING.lock().unwrap_or_else(|p| p.into_inner());
    if busy(processes, repo) {
        return Ok(Vec::new());
    }
    remove_locks(repo, grace)
}

fn remove_locks(repo: &Path, grace: Duration) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for lock in stale_locks(repo, grace)? {
        // Look again right before removing: a writer may have replaced it meanwhile.
        let still_stale = std::fs::symlink_metadata(&lock).is_ok_and(|m| older_than(&m, grace));
        if still_stale && std::fs::remove_file(&lock).is_ok() {
            removed.push(lock);
        }
    }
    Ok(removed)
}

/// Remove stale locks and quarantine directories of `repo` (nothing while [`busy`]).
/// Blocking file-system work: call it off the async runtime.
pub fn clean_repository(processes: &Processes, repo: &Path, grace: Grace) -> io::Result<Cleaned> {
    let _one = CLEANING.lock().unwrap_or_else(|p| p.into_inner());
    let mut cleaned = Cleaned::default();
    if busy(processes, repo) {
        return Ok(cleaned);
    }
    cleaned.locks = remove_locks(repo, grace.locks)?;
    for dir in stale_tmp_objdirs(repo, grace.tmp_objdirs)? {
        // A running receive-pack makes a new directory, never reuses an old one.
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => cleaned.tmp_objdirs.push(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backdate(p: &Path, age: Duration) {
        let f = std::fs::File::open(p).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn finds_only_old_locks_and_quarantines() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path();
        std::fs::create_dir_all(repo.join("refs/heads/a")).unwrap();
        std::fs::create_dir_all(repo.join("objects/tmp_objdir-incoming-x")).unwrap();
        std::fs::create_dir_all(repo.join("objects/tmp_objdir-incoming-new")).unwrap();
        std::fs::create_dir_all(repo.join("objects/pack")).unwrap();
        for f in [
            "refs/heads/a/b.lock",
            "refs/heads/new.lock",
            "HEAD.lock",
            "refs/heads/x",
        ] {
            std::fs::write(repo.join(f), "").unwrap();
        }
        let hour = Duration::from_secs(3600);
        for f in ["refs/heads/a/b.lock", "HEAD.lock", "refs/heads/x"] {
            backdate(&repo.join(f), 2 * hour);
        }
        backdate(&repo.join("objects/tmp_objdir-incoming-x"), 100 * hour);
        backdate(&repo.join("objects/pack"), 100 * hour);
        // An operation's quarantine: kept while its server (this process) runs, however old;
        // one of a server that is gone goes at once.
        let ours = repo.join(format!(
            "objects/{}",
            crate::lifetime::owned_name("tmp_objdir-gitrpc", "00ff")
        ));
        let dead = repo.join("objects/tmp_objdir-gitrpc-999999999.1-00ff");
        std::fs::create_dir_all(&ours).unwrap();
        std::fs::create_dir_all(&dead).unwrap();
        backdate(&ours, 100 * hour);
        let mut locks = stale_locks(repo, hour).unwrap();
        locks.sort();
        assert_eq!(
            locks,
            [repo.join("HEAD.lock"), repo.join("refs/heads/a/b.lock")]
        );
        let cleaned = clean_repository(&Processes::default(), repo, Grace::default()).unwrap();
        assert_eq!(cleaned.locks.len(), 2);
        let mut removed = cleaned.tmp_objdirs.clone();
        removed.sort();
        assert_eq!(
            removed,
            [dead.clone(), repo.join("objects/tmp_objdir-incoming-x")]
        );
        assert!(ours.exists());
        assert!(repo.join("refs/heads/new.lock").exists());
        assert!(repo.join("refs/heads/x").exists());
        assert!(repo.join("objects/tmp_objdir-incoming-new").exists());
        assert!(repo.join("objects/pack").exists());
    }
}

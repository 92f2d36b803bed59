//! Housekeeping: what crashes leave behind, cleaned at start-up and then periodically, off
//! the request path.
//!
//! At start-up, before the server serves (proportional to what was left, not to the number
//! of repositories):
//! 1. git processes started by a server process that is no longer running are killed
//!    ([`gitrpc_git::lifetime`]): a receive-pack waiting for its hook, say, when the daemon
//!    was killed mid-push.
//! 2. In each storage's private directory (`+gitrpc`), the hooks directories (`hooks-*`),
//!    hook bridges (`hooks-run/push-*`) and temp directories (`tmp/*`) of servers that are no
//!    longer running. Their names carry their owner process (`<prefix>-<pid>.<start>-<random>`);
//!    one whose owner runs is never touched. Names without an owner (made by older versions)
//!    go once older than `tmp_grace`.
//!
//! Then, in a background task, right away and every `interval`: both again, and every
//! repository of every storage is visited for stale ref locks and quarantine directories
//! ([`gitrpc_git::housekeeping::clean_repository`]; nothing while a git of ours works in that
//! repository). The walk is one blocking thread going through repositories one at a time;
//! it reads each repository's `objects/` and `refs/` directories, so a pass over a large
//! storage takes a while but never delays a request. A ref update that fails on a stale lock
//! doesn't wait for it: it cleans that repository's locks and retries at once
//! ([`crate::deps::Repo::writing_refs`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use gitrpc_git::housekeeping as git_hk;
use gitrpc_git::{lifetime, Processes};

pub use crate::config::HousekeepingConfig;
use crate::tempdir::INTERNAL_DIR;

/// How long orphaned git gets between SIGTERM and SIGKILL (git removes its temporary files
/// and quarantine on SIGTERM).
const ORPHAN_GRACE: Duration = gitrpc_git::TERM_GRACE;

/// The background task; stopped when dropped (with the server's dependencies). A pass in
/// progress stops at the next repository, so dropping a runtime never waits for a long walk.
pub struct Task {
    task: tokio::task::AbortHandle,
    stop: Arc<AtomicBool>,
}

impl Drop for Task {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
    }
}

/// Step 1 and 2 above, before serving. Needs a tokio runtime.
pub async fn at_start(storages: Vec<PathBuf>, config: &HousekeepingConfig) {
    let tmp_grace = config.tmp_grace;
    let _ = tokio::task::spawn_blocking(move || {
        kill_orphans();
        for root in &storages {
            clean_private(&root.join(INTERNAL_DIR), tmp_grace);
        }
    })
    .await;
}

/// Start the background passes over `storages`.
/// `processes`: the server's git, so a repository one of them works in is left alone.
pub fn start(storages: Vec<PathBuf>, config: HousekeepingConfig, processes: Processes) -> Task {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        loop {
            let (roots, c, stop) = (storages.clone(), config.clone(), stopped.clone());
            let procs = processes.clone();
            let _ = tokio::task::spawn_blocking(move || pass(&roots, &c, &procs, &stop)).await;
            if config.interval.is_zero() {
                return;
            }
            tokio::time::sleep(config.interval).await;
        }
    });
    Task {
        task: task.abort_handle(),
        stop,
    }
}

fn kill_orphans() {
    for o in lifetime::kill_orphans(ORPHAN_GRACE) {
        tracing::warn!(
            pgid = o.pgid,
            owner = %o.owner.tag(),
            commands = ?o.commands,
            "killed git left running by a server process that died"
        );
    }
}

/// One background pass (until `stop`).
fn pass(
    storages: &[PathBuf],
    config: &HousekeepingConfig,
    processes: &Processes,
    stop: &AtomicBool,
) {
    let started = Instant::now();
    kill_orphans();
    let (mut repos, mut locks, mut dirs, mut private) = (0, 0, 0, 0);
    for root in storages {
        private += clean_private(&root.join(INTERNAL_DIR), config.tmp_grace);
        for_each_repository(root, stop, |repo| {
            repos += 1;
            match git_hk::clean_repository(processes, repo, config.grace()) {
                Ok(c) => {
                    for p in c.locks.iter().chain(&c.tmp_objdirs) {
                        tracing::warn!(path = %p.display(), "removed stale leftover of a git that died");
                    }
                    locks += c.locks.len();
                    dirs += c.tmp_objdirs.len();
                }
                Err(e) => {
                    tracing::warn!(repo = %repo.display(), error = %e, "housekeeping failed")
                }
            }
        });
    }
    tracing::debug!(
        repos,
        locks,
        quarantines = dirs,
        private,
        secs = started.elapsed().as_secs_f64(),
        "housekeeping pass"
    );
}

/// Call `f` with each repository under a storage root (not following symlinks, not inside
/// `+gitrpc`, not inside other repositories, at most 16 directories deep) until `stop`.
pub(crate) fn for_each_repository(root: &Path, stop: &AtomicBool, mut f: impl FnMut(&Path)) {
    const MAX_DEPTH: usize = 16;
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if depth == 0 && e.file_name() == INTERNAL_DIR {
                continue;
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let path = e.path();
            if crate::locator::is_git_dir(&path) {
                f(&path);
            } else if depth < MAX_DEPTH {
                stack.push((path, depth + 1));
            }
        }
    }
}

/// Remove dead servers' entries from a storage's private directory; returns how many.
fn clean_private(internal: &Path, tmp_grace: Duration) -> usize {
    let mut candidates: Vec<PathBuf> = Vec::new();
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect()
    };
    candidates.extend(list(internal).into_iter().filter(|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.starts_with("hooks-") && name != "hooks-run"
    }));
    candidates.extend(list(&internal.join("hooks-run")));
    candidates.extend(list(&internal.join("tmp")));
    let mut removed = 0;
    for p in candidates {
        let dead = match lifetime::owner_running(&p) {
            Some(running) => !running,
            None => older_than(&p, tmp_grace),
        };
        if !dead {
            continue;
        }
        let gone = match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
            Ok(_) => std::fs::remove_file(&p),
            Err(e) => Err(e),
        };
        match gone {
            Ok(()) => {
                removed += 1;
                tracing::info!(path = %p.display(), "removed a leftover of a server that died");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %p.display(), error = %e, "can't remove leftover"),
        }
    }
    removed
}

fn older_than(p: &Path, grace: Duration) -> bool {
    std::fs::symlink_metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_leftovers_of_dead_owners_only() {
        let d = tempfile::tempdir().unwrap();
        let internal = d.path().join(INTERNAL_DIR);
        // Our pid with another start time: a process that ran before us under that pid.
        let dead = lifetime::Owner {
            pid: std::process::id() as i32,
            start: u64::MAX,
        };
        let mine = lifetime::owned_name("hooks", "aa");
        for p in [
            format!("hooks-{}-bb", dead.tag()),
            mine.clone(),
            "hooks-run/push-x".into(),
            format!("hooks-run/push-{}-cc", dead.tag()),
            format!("tmp/create-{}-dd", dead.tag()),
            lifetime::owned_name("tmp/removed", "ee"),
            "tmp/create-ff".into(),
            "spool".into(),
            "other".into(),
        ] {
            std::fs::create_dir_all(internal.join(p)).unwrap();
        }
        assert_eq!(clean_private(&internal, Duration::from_secs(3600)), 3);
        let mut left: Vec<String> = Vec::new();
        for sub in ["", "hooks-run", "tmp"] {
            for e in std::fs::read_dir(internal.join(sub)).unwrap().flatten() {
                if !e.file_type().unwrap().is_dir() || sub.is_empty() && e.file_name() == "tmp" {
                    continue;
                }
                left.push(format!("{sub}/{}", e.file_name().to_string_lossy()));
            }
        }
        left.sort();
        let removed_tag = lifetime::owned_name("removed", "ee");
        let mut want = vec![
            format!("/{mine}"),
            "/hooks-run".to_string(),
            "/other".to_string(),
            "/spool".to_string(),
            "hooks-run/push-x".to_string(),
            "tmp/create-ff".to_string(),
            format!("tmp/{removed_tag}"),
        ];
        want.sort();
        assert_eq!(left, want);
        // Without an owner: gone once older than the grace period.
        assert_eq!(clean_private(&internal, Duration::ZERO), 2);
    }

    #[test]
    fn finds_repositories_but_not_inside_them() {
        let d = tempfile::tempdir().unwrap();
        for r in [
            "a.git",
            "g/b.git",
            "g/h/c.git",
            "a.git/nested.git",
            "+gitrpc/tmp/x.git",
        ] {
            let p = d.path().join(r);
            std::fs::create_dir_all(p.join("objects")).unwrap();
            std::fs::create_dir_all(p.join("refs")).unwrap();
            std::fs::write(p.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        }
        let mut found: Vec<PathBuf> = Vec::new();
        for_each_repository(d.path(), &AtomicBool::new(false), |p| {
            found.push(p.strip_prefix(d.path()).unwrap().to_path_buf())
        });
        found.sort();
        assert_eq!(found, ["a.git", "g/b.git", "g/h/c.git"].map(PathBuf::from));
    }
}

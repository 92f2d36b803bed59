//! The first step of an optimization: everything Gitaly's `DefaultStaleDataCleanup` removes
//! that a git killed mid-way leaves, beyond the ref locks and quarantines of
//! [`super::clean_repository`] (which runs first), with Gitaly's grace periods:
//!
//! | what | older than |
//! |---|---|
//! | `objects/**/tmp_*` files (pack-objects', index-pack's temporary files) | 24 h |
//! | `commit-graph-chain.lock`, `multi-pack-index.lock`, `objects/info/alternates.lock`, `info/attributes.lock` | 15 min |
//! | `packed-refs.new` | 15 min |
//! | `objects/pack/pack-*.keep` written by `receive-pack` or `fetch-pack` | 7 days |
//!
//! As everywhere here: nothing while a git of ours works in the repository.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{busy, clean_repository, older_than, Grace, CLEANING};
use crate::observer::Processes;

/// Temporary object files (Gitaly's `deleteTempFilesOlderThanDuration`).
pub const TMP_FILE_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Lock files of the object store (Gitaly's `lockfileGracePeriod`), and `packed-refs.new`.
pub const OBJECT_LOCK_GRACE: Duration = Duration::from_secs(15 * 60);
/// `.keep` files of a receive-pack or fetch-pack that died (Gitaly's
/// `packFileLockGracePeriod`).
pub const KEEP_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

const OBJECT_LOCKS: &[&str] = &[
    "objects/info/commit-graphs/commit-graph-chain.lock",
    "objects/pack/multi-pack-index.lock",
    "objects/info/alternates.lock",
    "info/attributes.lock",
    "packed-refs.new",
];

/// What one clean-up removed, by kind (the `filetype` label of the pruned-files metric).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StaleData {
    pub removed: Vec<(&'static str, PathBuf)>,
}

impl StaleData {
    /// How many of each kind, for kinds with any.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for (kind, _) in &self.removed {
            match out.iter_mut().find(|(k, _)| k == kind) {
                Some((_, n)) => *n += 1,
                None => out.push((kind, 1)),
            }
        }
        out
    }
}

fn file_older(p: &Path, grace: Duration) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && older_than(&m, grace))
}

/// Everything stale in `repo` (see the module docs), removed. Blocking: call it off the async
/// runtime.
pub fn clean_stale_data(processes: &Processes, repo: &Path, grace: Grace) -> io::Result<StaleData> {
    let mut out = StaleData::default();
    let first = clean_repository(processes, repo, grace)?;
    out.removed
        .extend(first.locks.into_iter().map(|p| ("reflocks", p)));
    out.removed
        .extend(first.tmp_objdirs.into_iter().map(|p| ("objdirs", p)));
    let _one = CLEANING.lock().unwrap_or_else(|p| p.into_inner());
    if busy(processes, repo) {
        return Ok(out);
    }
    let mut found: Vec<(&'static str, PathBuf)> = Vec::new();
    for name in OBJECT_LOCKS {
        let p = repo.join(name);
        if file_older(&p, OBJECT_LOCK_GRACE) {
            found.push(("locks", p));
        }
    }
    found.extend(temporary_objects(&repo.join("objects"))?);
    found.extend(stale_keeps(&repo.join("objects/pack"))?);
    for (kind, p) in found {
        match std::fs::remove_file(&p) {
            Ok(()) => out.removed.push((kind, p)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// `tmp_*` files in `objects/` and its subdirectories (not `tmp_objdir-*` directories).
fn temporary_objects(objects: &Path) -> io::Result<Vec<(&'static str, PathBuf)>> {
    let mut out = Vec::new();
    let top = match std::fs::read_dir(objects) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut dirs = vec![objects.to_path_buf()];
    for e in top.flatten() {
        let name = e.file_name();
        let is_quarantine = name.as_encoded_bytes().starts_with(b"tmp_objdir");
        if e.file_type().is_ok_and(|t| t.is_dir()) && !is_quarantine {
            dirs.push(e.path());
        }
    }
    for dir in dirs {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_name().as_encoded_bytes().starts_with(b"tmp_")
                && file_older(&p, TMP_FILE_GRACE)
            {
                out.push(("tempobjects", p));
            }
        }
    }
    Ok(out)
}

/// `pack-*.keep` files a receive-pack or fetch-pack wrote (their content says so) and left.
fn stale_keeps(pack: &Path) -> io::Result<Vec<(&'static str, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(pack) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let n = name.as_encoded_bytes();
        if !(n.starts_with(b"pack-") && n.ends_with(b".keep")) {
            continue;
        }
        let p = e.path();
        if !file_older(&p, KEEP_GRACE) {
            continue;
        }
        let mut head = [0u8; 13];
        let len = {
            use std::io::Read;
            std::fs::File::open(&p).and_then(|mut f| f.read(&mut head))?
        };
        let head = &head[..len];
        if head.starts_with(b"receive-pack ") || head.starts_with(b"fetch-pack ") {
            out.push(("packfilelocks", p));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn backdate(p: &Path, age: Duration) {
        let f = std::fs::File::open(p).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn removes_only_old_leftovers() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path();
        for dir in [
            "objects/pack",
            "objects/ab",
            "objects/info/commit-graphs",
            "objects/tmp_objdir-x",
            "info",
            "refs/heads",
        ] {
            std::fs::create_dir_all(repo.join(dir)).unwrap();
        }
        let hour = Duration::from_secs(3600);
        let files: &[(&str, &str, Duration)] = &[
            ("objects/pack/tmp_pack_old", "", 25 * hour),
            ("objects/pack/tmp_pack_new", "", hour),
            ("objects/ab/tmp_obj_old", "", 25 * hour),
            ("objects/tmp_objdir-x/tmp_obj_inside", "", 100 * hour),
            ("objects/pack/multi-pack-index.lock", "", hour),
            (
                "objects/info/commit-graphs/commit-graph-chain.lock",
                "",
                Duration::ZERO,
            ),
            ("packed-refs.new", "", hour),
            (
                "objects/pack/pack-1.keep",
                "receive-pack 123 on host\n",
                8 * 24 * hour,
            ),
            (
                "objects/pack/pack-2.keep",
                "receive-pack 123 on host\n",
                6 * 24 * hour,
            ),
            ("objects/pack/pack-3.keep", "", 8 * 24 * hour),
            ("refs/heads/main.lock", "", 2 * hour),
        ];
        for (f, content, age) in files {
            std::fs::write(repo.join(f), content).unwrap();
            backdate(&repo.join(f), *age);
        }
        let got = clean_stale_data(&Processes::default(), repo, Grace::default()).unwrap();
        let mut removed: Vec<(&str, String)> = got
            .removed
            .iter()
            .map(|(k, p)| (*k, p.strip_prefix(repo).unwrap().display().to_string()))
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            [
                ("locks", "objects/pack/multi-pack-index.lock".to_string()),
                ("locks", "packed-refs.new".to_string()),
                ("packfilelocks", "objects/pack/pack-1.keep".to_string()),
                ("reflocks", "refs/heads/main.lock".to_string()),
                ("tempobjects", "objects/ab/tmp_obj_old".to_string()),
                ("tempobjects", "objects/pack/tmp_pack_old".to_string()),
            ]
        );
        assert_eq!(got.counts().len(), 4);
        for kept in [
            "objects/pack/tmp_pack_new",
            "objects/tmp_objdir-x/tmp_obj_inside",
            "objects/info/commit-graphs/commit-graph-chain.lock",
            "objects/pack/pack-2.keep",
            "objects/pack/pack-3.keep",
        ] {
            assert!(repo.join(kept).exists(), "{kept}");
        }
    }
}

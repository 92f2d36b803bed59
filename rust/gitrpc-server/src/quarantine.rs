//! Quarantines (Gitaly's `quarantine` package): the objects an operation writes go into a
//! directory of their own, visible only to the git commands (and hooks) of that operation,
//! and move into the repository only once the hooks accepted and the ref is locked.
//!
//! - Where: `<repo>/objects/tmp_objdir-gitrpc-<pid>.<start>-<hex>`, git's own naming family
//!   (`tmp_objdir-incoming-*` of a push), named after this server process: housekeeping
//!   leaves it alone while the server runs and removes it once the server is gone (and
//!   `git gc` would too).
//! - [`Quarantine`] removes the directory when dropped unless [`Quarantine::migrate`]d, so a
//!   rejected, failed, cancelled or panicking operation leaves no objects behind.
//! - Read RPCs honour a request's `git_object_directory` / `git_alternate_object_directories`
//!   when they name the repository's own quarantine directories ([`object_dirs`]: `objects`
//!   and `objects/tmp_objdir-*`, symlinks resolved), never an arbitrary path: that is how a
//!   hook reads the objects of the change it decides on.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use gitrpc_proto::gitaly::Repository;

use crate::error::{Error, Result};

/// Name prefix of every quarantine directory (git's and ours).
pub const PREFIX: &str = "tmp_objdir-";

/// An operation's quarantine directory; see the module documentation.
pub struct Quarantine {
    dir: PathBuf,
    repo: PathBuf,
    relative: String,
    migrated: bool,
}

impl Quarantine {
    /// A new, empty quarantine in the repository at `repo`.
    pub fn new(repo: &Path) -> io::Result<Quarantine> {
        let name =
            gitrpc_git::lifetime::owned_name("tmp_objdir-gitrpc", &crate::tempdir::random_hex(8));
        let dir = repo.join("objects").join(&name);
        std::fs::create_dir(&dir)?;
        Ok(Quarantine {
            dir,
            repo: repo.to_path_buf(),
            relative: format!("objects/{name}"),
            migrated: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory relative to the repository (`objects/tmp_objdir-gitrpc-...`).
    pub fn relative(&self) -> &str {
        &self.relative
    }

    /// The object directories git commands of the operation use.
    pub fn object_dirs(&self) -> ObjectDirs {
        ObjectDirs {
            object_dir: Some(self.dir.clone()),
            alternates: vec![self.repo.join("objects")],
        }
    }

    /// `repository` naming this quarantine (what hooks get): read RPCs called with it see
    /// the quarantined objects and the repository's.
    pub fn repository(&self, repository: &Repository) -> Repository {
        Repository {
            git_object_directory: self.relative.clone(),
            git_alternate_object_directories: vec!["objects".to_string()],
            ..repository.clone()
        }
    }

    /// Move every object into the repository (packs' `.idx` last, so a pack becomes
    /// visible only when complete), then remove the directory.
    pub async fn migrate(mut self) -> io::Result<()> {
        let (src, dst) = (self.dir.clone(), self.repo.join("objects"));
        let moved = tokio::task::spawn_blocking(move || {
            migrate_dir(&src, &dst)?;
            std::fs::remove_dir(&src)
        })
        .await
        .map_err(io::Error::other)?;
        if moved.is_ok() {
            self.migrated = true;
        }
        moved
    }
}

impl Drop for Quarantine {
    fn drop(&mut self) {
        if !self.migrated {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Gitaly's `packCopyPriority` (git's `tmp_objdir_migrate`): loose-object directories
/// first; in `pack/`, `.keep`, `.pack`, `.rev`, then `.idx` (what makes a pack visible).
fn priority(name: &str) -> u8 {
    if !name.starts_with("pack") {
        return 0;
    }
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("keep") => 1,
        Some("pack") => 2,
        Some("rev") => 3,
        Some("idx") => 4,
        _ => 5,
    }
}

fn migrate_dir(src: &Path, dst: &Path) -> io::Result<()> {
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(src)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        (priority(&name), name)
    });
    for e in entries {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if e.file_type()?.is_dir() {
            match std::fs::create_dir(&to) {
                Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
                _ => {}
            }
            migrate_dir(&from, &to)?;
            std::fs::remove_dir(&from)?;
            continue;
        }
        // An object already there is the same object.
        match std::fs::hard_link(&from, &to) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(_) => match std::fs::rename(&from, &to) {
                Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
                _ => {}
            },
        }
        match std::fs::remove_file(&from) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

/// Object directories a git command uses instead of the repository's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectDirs {
    pub object_dir: Option<PathBuf>,
    pub alternates: Vec<PathBuf>,
}

impl ObjectDirs {
    /// `GIT_OBJECT_DIRECTORY` and `GIT_ALTERNATE_OBJECT_DIRECTORIES`.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = Vec::new();
        if let Some(d) = &self.object_dir {
            env.push(("GIT_OBJECT_DIRECTORY", d.as_os_str().to_os_string()));
        }
        if !self.alternates.is_empty() {
            let joined = std::env::join_paths(&self.alternates).unwrap_or_default();
            env.push(("GIT_ALTERNATE_OBJECT_DIRECTORIES", joined));
        }
        env
    }
}

/// The object directories `r` names for the repository at `repo`, bounded to the
/// repository's own: `git_object_directory` must be one of its quarantine directories
/// (`objects/tmp_objdir-*`), each alternate that or `objects` itself; symlinks are resolved
/// and checked. `None` when the request names none.
pub fn object_dirs(repo: &Path, r: &Repository) -> Result<Option<ObjectDirs>> {
    if r.git_object_directory.is_empty() && r.git_alternate_object_directories.is_empty() {
        return Ok(None);
    }
    let objects = repo
        .join("objects")
        .canonicalize()
        .map_err(|e| Error::internal(format!("objects directory: {e}")))?;
    let object_dir = match r.git_object_directory.as_str() {
        "" => None,
        d => Some(bounded(repo, &objects, d, false).map_err(|e| match e {
            Bound::Missing => Error::not_found(format!("object directory does not exist: {d:?}")),
            Bound::Outside => Error::invalid(
                "git_object_directory is not a quarantine directory of this repository",
            ),
        })?),
    };
    let mut alternates = Vec::new();
    for a in &r.git_alternate_object_directories {
        alternates.push(bounded(repo, &objects, a, true).map_err(|e| match e {
            Bound::Missing => Error::not_found(format!("object directory does not exist: {a:?}")),
            Bound::Outside => Error::invalid(format!(
                "git_alternate_object_directories: {a:?} is not an object directory of this repository"
            )),
        })?);
    }
    Ok(Some(ObjectDirs {
        object_dir,
        alternates,
    }))
}

enum Bound {
    Missing,
    Outside,
}

/// `rel` (relative to `repo`) as a canonical path, if it is `objects/tmp_objdir-*` (or
/// `objects`, when `objects_ok`) and resolves to a directory directly below `objects`.
fn bounded(repo: &Path, objects: &Path, rel: &str, objects_ok: bool) -> Result<PathBuf, Bound> {
    // Spelled as a direct entry of `objects` (`./` allowed): never a path elsewhere, so no
    // other directory is even looked at.
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if rel.starts_with('/') || rel.contains('\0') {
        return Err(Bound::Outside);
    }
    let quarantine = match parts.as_slice() {
        ["objects"] if objects_ok => false,
        ["objects", name] if name.starts_with(PREFIX) => true,
        _ => return Err(Bound::Outside),
    };
    let real = match repo.join(parts.join("/")).canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Bound::Missing),
        Err(_) => return Err(Bound::Outside),
    };
    let ok = match quarantine {
        false => real == objects,
        true => {
            real.parent() == Some(objects)
                && real
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(PREFIX))
                && real.is_dir()
        }
    };
    ok.then_some(real).ok_or(Bound::Outside)
}

/// Mutating RPCs never take object directories (Gitaly's refusal).
pub fn refuse_on_mutator(r: Option<&Repository>) -> Result<()> {
    match r {
        Some(r)
            if !r.git_object_directory.is_empty()
                || !r.git_alternate_object_directories.is_empty() =>
        {
            Err(Error::invalid("quarantine configured on a mutator request"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_put_idx_last() {
        let mut names = vec![
            "pack-1.idx",
            "pack-1.pack",
            "ab",
            "pack",
            "pack-1.rev",
            "pack-1.keep",
            "pack-1.bitmap",
        ];
        names.sort_by_key(|n| (priority(n), n.to_string()));
        assert_eq!(
            names,
            // git's order: the `pack` directory itself ranks with the "other" files.
            [
                "ab",
                "pack-1.keep",
                "pack-1.pack",
                "pack-1.rev",
                "pack-1.idx",
                "pack",
                "pack-1.bitmap"
            ]
        );
    }

    #[test]
    fn object_dirs_are_bounded_to_the_repository() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("r.git");
        let other = d.path().join("o.git");
        for r in [&repo, &other] {
            std::fs::create_dir_all(r.join("objects/tmp_objdir-incoming-a")).unwrap();
            std::fs::create_dir_all(r.join("objects/pack")).unwrap();
        }
        std::os::unix::fs::symlink(
            other.join("objects/tmp_objdir-incoming-a"),
            repo.join("objects/tmp_objdir-evil"),
        )
        .unwrap();
        let ask = |dir: &str, alts: &[&str]| {
            object_dirs(
                &repo,
                &Repository {
                    git_object_directory: dir.into(),
                    git_alternate_object_directories: alts.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                },
            )
        };
        let ok = ask("objects/tmp_objdir-incoming-a", &["objects"])
            .unwrap()
            .unwrap();
        let objects = repo.join("objects").canonicalize().unwrap();
        assert_eq!(ok.object_dir, Some(objects.join("tmp_objdir-incoming-a")));
        assert_eq!(ok.alternates, std::slice::from_ref(&objects));
        assert!(ask("./objects//tmp_objdir-incoming-a", &[]).is_ok());
        assert!(ask("", &[]).unwrap().is_none());
        for bad in [
            "../o.git/objects/tmp_objdir-incoming-a",
            "/tmp",
            "objects/pack",
            "objects",
            "objects/../objects/tmp_objdir-incoming-a",
            "objects/tmp_objdir-evil",
        ] {
            let e = ask(bad, &["objects"]).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
        }
        let e = ask("objects/tmp_objdir-gone", &[]).unwrap_err();
        assert!(matches!(e, Error::NotFound(_)), "{e}");
        let e = ask("objects/tmp_objdir-incoming-a", &["../o.git/objects"]).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    #[tokio::test]
    async fn migration_moves_everything_and_drop_removes_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path();
        std::fs::create_dir_all(repo.join("objects/ab")).unwrap();
        std::fs::write(repo.join("objects/ab/cdef"), "old").unwrap();
        let q = Quarantine::new(repo).unwrap();
        assert!(q.relative().starts_with("objects/tmp_objdir-gitrpc-"));
        std::fs::create_dir_all(q.dir().join("ab")).unwrap();
        std::fs::create_dir_all(q.dir().join("pack")).unwrap();
        std::fs::write(q.dir().join("ab/cdef"), "same").unwrap();
        std::fs::write(q.dir().join("ab/0123"), "new").unwrap();
        std::fs::write(q.dir().join("pack/pack-1.pack"), "p").unwrap();
        std::fs::write(q.dir().join("pack/pack-1.idx"), "i").unwrap();
        let dir = q.dir().to_path_buf();
        q.migrate().await.unwrap();
        assert!(!dir.exists());
        assert_eq!(std::fs::read(repo.join("objects/ab/cdef")).unwrap(), b"old");
        assert_eq!(std::fs::read(repo.join("objects/ab/0123")).unwrap(), b"new");
        assert!(repo.join("objects/pack/pack-1.idx").exists());
        let q = Quarantine::new(repo).unwrap();
        std::fs::write(q.dir().join("x"), "x").unwrap();
        let dir = q.dir().to_path_buf();
        drop(q);
        assert!(!dir.exists());
    }
}

//! `Repository{storage_name, relative_path}` → a path under a configured storage, with the
//! checks that keep clients inside their storage.

use std::path::{Path, PathBuf};

use gitrpc_proto::gitaly::Repository;

use crate::config::Storage;
use crate::error::{Error, Result};
use crate::startup::StartError;
use crate::tempdir::INTERNAL_DIR;

#[derive(Clone, Debug)]
pub struct Locator {
    storages: Vec<(String, PathBuf)>,
}

impl Locator {
    /// Storage roots are created if missing and canonicalized once.
    pub fn new(storages: &[Storage]) -> std::result::Result<Locator, StartError> {
        let mut out = Vec::new();
        for s in storages {
            let root = std::fs::create_dir_all(&s.path)
                .and_then(|()| s.path.canonicalize())
                .map_err(|source| StartError::Storage {
                    name: s.name.clone(),
                    path: s.path.clone(),
                    source,
                })?;
            out.push((s.name.clone(), root));
        }
        Ok(Locator { storages: out })
    }

    pub fn storages(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.storages.iter().map(|(n, p)| (n.as_str(), p.as_path()))
    }

    /// The root of storage `name` (`INVALID_ARGUMENT` for an unknown name). Its existence is
    /// not checked: see [`Locator::existing_storage`].
    pub fn storage(&self, name: &str) -> Result<&Path> {
        self.storages
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
            .ok_or_else(|| Error::invalid(format!("storage not found: {name:?}")))
    }

    /// The root of storage `name`, which must exist: a root removed while the server runs is
    /// `NOT_FOUND` (as Gitaly answers), and serves again once it is back.
    pub fn existing_storage(&self, name: &str) -> Result<&Path> {
        let root = self.storage(name)?;
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => Ok(root),
            Ok(_) => Err(Error::StorageNotFound(name.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::StorageNotFound(name.to_string()))
            }
            Err(e) => Err(Error::internal(format!("storage {name:?}: {e}"))),
        }
    }

    /// The path a repository has (or would have), without requiring it to exist: the
    /// storage root joined with the normalised relative path (see [`normalize`]).
    pub fn repo_path(&self, repo: Option<&Repository>) -> Result<PathBuf> {
        let repo = repo.ok_or_else(|| Error::invalid("empty Repository"))?;
        // Bounded and linear before anything touches the filesystem.
        let rel = normalize(&repo.relative_path)?;
        let root = self.existing_storage(&repo.storage_name)?;
        let path = root.join(&rel);
        // Symlinks: the deepest existing ancestor must resolve inside the storage, and not
        // into its private directory (at most MAX_COMPONENTS steps up).
        let mut existing = path.as_path();
        while !existing.exists() {
            match existing.parent() {
                Some(p) => existing = p,
                None => break,
            }
        }
        let real = existing.canonicalize()?;
        if !real.starts_with(root) || (existing == path && real == root) {
            return Err(Error::invalid(format!(
                "relative path escapes root directory: {:?}",
                repo.relative_path
            )));
        }
        if real.starts_with(root.join(INTERNAL_DIR)) {
            return Err(reserved(&repo.relative_path));
        }
        Ok(path)
    }

    /// The path of an existing repository; `NOT_FOUND` if there is none.
    pub fn repo(&self, repo: Option<&Repository>) -> Result<PathBuf> {
        let path = self.repo_path(repo)?;
        if !is_git_dir(&path) {
            return Err(Error::not_found(format!(
                "repository not found: {:?}",
                repo.map(|r| r.relative_path.as_str()).unwrap_or_default()
            )));
        }
        Ok(path)
    }
}

/// Longest `relative_path` accepted, in bytes (`PATH_MAX`).
pub const MAX_RELATIVE_PATH: usize = 4096;
/// Most components of a `relative_path` (`.` and `..` count). GitLab nests groups at most
/// 20 deep and hashed storage uses 4 components; 128 leaves room for any real layout while
/// bounding the work (stat calls, admission keys) one path can cause.
pub const MAX_COMPONENTS: usize = 128;

/// A `relative_path` in its one canonical spelling: empty and `.` components dropped, `..`
/// applied (it may not climb above the storage root), no leading or trailing `/`. So
/// `a.git`, `./a.git`, `x/../a.git` and `a.git/.` are all `a.git`, and every spelling of the
/// server's private directory (`./+gitrpc`, `x/../+gitrpc/y`, `+gitrpc/`) is refused.
/// Pure, no I/O, linear in the input, which is bounded first: the admission layer keys
/// limits with it before the call reaches its handler.
pub fn normalize(rel: &str) -> Result<String> {
    if rel.is_empty() {
        return Err(Error::invalid("empty RelativePath"));
    }
    if rel.len() > MAX_RELATIVE_PATH {
        return Err(Error::invalid(format!(
            "relative path too long: {} bytes (max {MAX_RELATIVE_PATH})",
            rel.len()
        )));
    }
    if rel.contains('\0') {
        return Err(Error::invalid("relative path contains NUL"));
    }
    let escapes = || Error::invalid(format!("relative path escapes root directory: {rel:?}"));
    if rel.starts_with('/') {
        return Err(escapes());
    }
    let mut parts: Vec<&str> = Vec::new();
    for (i, c) in rel.split('/').filter(|c| !c.is_empty()).enumerate() {
        if i >= MAX_COMPONENTS {
            return Err(Error::invalid(format!(
                "relative path has too many components (max {MAX_COMPONENTS})"
            )));
        }
        match c {
            "." => {}
            ".." => {
                parts.pop().ok_or_else(escapes)?;
            }
            c => parts.push(c),
        }
    }
    match parts.first() {
        None => Err(escapes()),
        Some(&first) if first == INTERNAL_DIR => Err(reserved(rel)),
        Some(_) => Ok(parts.join("/")),
    }
}

fn reserved(rel: &str) -> Error {
    Error::invalid(format!("relative path is reserved: {rel:?}"))
}

/// What git itself checks to accept a directory as a repository.
pub fn is_git_dir(path: &Path) -> bool {
    path.join("objects").is_dir() && path.join("HEAD").is_file() && path.join("refs").exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn repo(storage: &str, rel: &str) -> Repository {
        Repository {
            storage_name: storage.into(),
            relative_path: rel.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rejects_escapes() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let l = Locator::new(&[Storage {
            name: "default".into(),
            path: root.path().into(),
        }])
        .unwrap();
        std::fs::create_dir_all(root.path().join("+gitrpc/tmp")).unwrap();
        std::os::unix::fs::symlink("+gitrpc/tmp", root.path().join("private")).unwrap();
        for rel in [
            "+gitrpc/tmp/x",
            "./+gitrpc/tmp/x",
            "x/../+gitrpc/x",
            "+gitrpc/",
            "+gitrpc",
            "a/./../+gitrpc/x",
            ".//+gitrpc",
            "private/x.git",
            "../x.git",
            "a/../../x",
            "/etc",
            "link/x.git",
            "",
            ".",
            "a/..",
            "./",
            "a\0b",
        ] {
            let e = l.repo_path(Some(&repo("default", rel))).unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{rel}");
        }
        assert_eq!(
            l.repo_path(Some(&repo("nope", "a.git")))
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        assert_eq!(l.repo_path(None).unwrap_err().code(), Code::InvalidArgument);
        assert!(l.repo_path(Some(&repo("default", "group/a.git"))).is_ok());
        assert_eq!(
            l.repo_path(Some(&repo("default", "x/.././/group//a.git/.")))
                .unwrap(),
            root.path().canonicalize().unwrap().join("group/a.git")
        );
        assert_eq!(
            l.repo(Some(&repo("default", "group/a.git")))
                .unwrap_err()
                .code(),
            Code::NotFound
        );
    }

    #[test]
    fn normalizes_every_spelling_to_one() {
        for rel in [
            "a.git",
            "./a.git",
            "x/../a.git",
            "a.git/",
            "a.git/.",
            ".//a.git",
        ] {
            assert_eq!(normalize(rel).unwrap(), "a.git", "{rel}");
        }
        assert_eq!(normalize("g/./s/../p.git").unwrap(), "g/p.git");
        assert_eq!(normalize("+gitrpcx/a").unwrap(), "+gitrpcx/a");
        let long = "a/".repeat(MAX_RELATIVE_PATH);
        assert!(normalize(&long)
            .unwrap_err()
            .to_string()
            .contains("too long"));
        let deep = "a/".repeat(MAX_COMPONENTS + 1);
        assert!(normalize(&deep)
            .unwrap_err()
            .to_string()
            .contains("too many components"));
        assert!(normalize(&"a/".repeat(MAX_COMPONENTS)).is_ok());
    }
}

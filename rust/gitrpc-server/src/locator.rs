//! `Repository{storage_name, relative_path}` → a path under a configured storage, with the
//! checks that keep clients inside their storage.

use std::path::{Component, Path, PathBuf};

use gitrpc_proto::gitaly::Repository;

use crate::config::Storage;
use crate::error::{Error, Result};
use crate::tempdir::INTERNAL_DIR;

#[derive(Clone, Debug)]
pub struct Locator {
    storages: Vec<(String, PathBuf)>,
}

impl Locator {
    /// Storage roots are created if missing and canonicalized once.
    pub fn new(storages: &[Storage]) -> std::io::Result<Locator> {
        let mut out = Vec::new();
        for s in storages {
            std::fs::create_dir_all(&s.path)?;
            out.push((s.name.clone(), s.path.canonicalize()?));
        }
        Ok(Locator { storages: out })
    }

    pub fn storages(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.storages.iter().map(|(n, p)| (n.as_str(), p.as_path()))
    }

    pub fn storage(&self, name: &str) -> Result<&Path> {
        self.storages
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
            .ok_or_else(|| Error::invalid(format!("storage not found: {name:?}")))
    }

    /// The path a repository has (or would have), without requiring it to exist.
    pub fn repo_path(&self, repo: Option<&Repository>) -> Result<PathBuf> {
        let repo = repo.ok_or_else(|| Error::invalid("empty Repository"))?;
        let root = self.storage(&repo.storage_name)?;
        let rel = &repo.relative_path;
        if rel.is_empty() {
            return Err(Error::invalid("empty RelativePath"));
        }
        if rel.contains('\0') {
            return Err(Error::invalid("relative path contains NUL"));
        }
        let rel_path = Path::new(rel);
        if rel_path.components().next() == Some(Component::Normal(INTERNAL_DIR.as_ref())) {
            return Err(Error::invalid(format!(
                "relative path is reserved: {rel:?}"
            )));
        }
        for c in rel_path.components() {
            match c {
                Component::Normal(_) | Component::CurDir => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "relative path escapes root directory: {rel:?}"
                    )))
                }
            }
        }
        let path = root.join(rel_path);
        // Symlinks: the deepest existing ancestor must resolve inside the storage.
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
                "relative path escapes root directory: {rel:?}"
            )));
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
        for rel in [
            "+gitrpc/tmp/x",
            "../x.git",
            "a/../../x",
            "/etc",
            "link/x.git",
            "",
            ".",
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
            l.repo(Some(&repo("default", "group/a.git")))
                .unwrap_err()
                .code(),
            Code::NotFound
        );
    }
}

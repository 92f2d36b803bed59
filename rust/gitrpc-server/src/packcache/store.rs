//! Where a cache's files live: `<dir>/<instance>/<key12>-<id>.pack`.
//!
//! Several servers may share `dir` (every Puma worker runs its own in-process server on the
//! same storages), so each writes under its own instance directory, named after its
//! process ([`gitrpc_git::lifetime::owned_name`]) and removed when the cache is dropped. At
//! start and at every sweep, instance directories of processes that are gone are removed,
//! and anything else in `dir` not owned by a running process is removed once older than
//! `max_age` (Gitaly's rule for its cache directory).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gitrpc_git::lifetime;

use super::key::{self, Key};

pub struct Store {
    /// The configured (or default) cache directory.
    pub root: PathBuf,
    /// This cache's own directory in it.
    pub dir: PathBuf,
}

impl Store {
    /// Create `root` (if needed) and our instance directory in it; remove what dead
    /// servers left there.
    pub fn open(root: &Path, max_age: Duration) -> io::Result<Store> {
        std::fs::create_dir_all(root)?;
        let dir = root.join(lifetime::owned_name(
            "cache",
            &crate::tempdir::random_hex(6),
        ));
        sweep(root, &dir, max_age);
        create_private_dir(&dir)?;
        Ok(Store {
            root: root.to_path_buf(),
            dir,
        })
    }

    /// A new, empty file for an entry (made again if the directory was removed under us).
    pub fn create(&self, key: &Key, id: u64) -> io::Result<(PathBuf, File)> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(format!("{}-{id}.pack", key::short(key)));
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        };
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.root)?;
                create_private_dir(&self.dir)?;
                open()?
            }
            other => other?,
        };
        Ok((path, file))
    }

    /// Bytes available to us on the directory's filesystem (`None` if unknown).
    pub fn free_bytes(&self) -> Option<u64> {
        free_bytes(&self.dir).or_else(|| free_bytes(&self.root))
    }

    /// Remove what other servers left in `root` (see the module docs).
    pub fn sweep(&self, max_age: Duration) {
        sweep(&self.root, &self.dir, max_age);
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

fn free_bytes(p: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path and a zeroed out-parameter of the right type.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut s) == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
    }
}

fn older_than(p: &Path, age: Duration) -> bool {
    std::fs::symlink_metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| std::time::SystemTime::now().duration_since(m).ok())
        .is_some_and(|a| a >= age)
}

fn sweep(root: &Path, own: &Path, max_age: Duration) {
    let Ok(list) = std::fs::read_dir(root) else {
        return;
    };
    for e in list.flatten() {
        let p = e.path();
        if p == own {
            continue;
        }
        let removed = match lifetime::owner_running(&p) {
            Some(true) => continue,
            Some(false) => std::fs::remove_dir_all(&p),
            None => match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    for inner in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                        if older_than(&inner.path(), max_age) {
                            let _ = std::fs::remove_file(inner.path());
                        }
                    }
                    // Only if it is empty now.
                    let _ = std::fs::remove_dir(&p);
                    continue;
                }
                Ok(_) if older_than(&p, max_age) => std::fs::remove_file(&p),
                _ => continue,
            },
        };
        match removed {
            Ok(()) => tracing::info!(path = %p.display(), "pack-objects cache: removed a leftover"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "pack-objects cache: can't remove a leftover")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_dirs_and_leftovers() {
        let root = tempfile::tempdir().unwrap();
        // A dead server's instance directory, a live one's, an old stray file, a new one.
        let dead = root.path().join("cache-999999999.1-aa");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("x.pack"), "x").unwrap();
        let live = root.path().join(lifetime::owned_name("cache", "bb"));
        std::fs::create_dir(&live).unwrap();
        let old = root.path().join("stray.pack");
        std::fs::write(&old, "x").unwrap();
        let when = std::time::SystemTime::now() - Duration::from_secs(3600);
        File::open(&old).unwrap().set_modified(when).unwrap();
        let new = root.path().join("fresh.pack");
        std::fs::write(&new, "x").unwrap();

        let store = Store::open(root.path(), Duration::from_secs(60)).unwrap();
        assert!(!dead.exists() && !old.exists());
        assert!(live.exists() && new.exists() && store.dir.is_dir());
        let key = [7u8; 32];
        let (path, _f) = store.create(&key, 3).unwrap();
        assert_eq!(path.file_name().unwrap(), "070707070707-3.pack");
        // Its directory removed under it: made again.
        std::fs::remove_dir_all(&store.dir).unwrap();
        store.create(&key, 4).unwrap();
        assert!(store.free_bytes().unwrap() > 0);
    }
}

//! Temporary directories inside a storage (`<storage>/+gitrpc/tmp/...`), so a finished one
//! can be renamed into place atomically (same filesystem). Removed on drop unless disarmed;
//! their names carry this process (`<purpose>-<pid>.<start>-<random>`), so housekeeping
//! removes those of a server that died.

use std::path::{Path, PathBuf};

/// Name of our internal directory in every storage; clients can't address it.
pub const INTERNAL_DIR: &str = "+gitrpc";

pub struct TempDir {
    path: PathBuf,
    armed: bool,
}

impl TempDir {
    pub fn new_in_storage(storage: &Path, purpose: &str) -> std::io::Result<TempDir> {
        let base = storage.join(INTERNAL_DIR).join("tmp");
        std::fs::create_dir_all(&base)?;
        let path = base.join(gitrpc_git::lifetime::owned_name(purpose, &random_hex(8)));
        std::fs::create_dir(&path)?;
        Ok(TempDir { path, armed: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory was moved into place: don't delete it.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `n` random bytes from the kernel as hex.
pub fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    hex::encode(buf)
}

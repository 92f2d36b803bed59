//! Native reads of references in `files`-backend repositories (loose files + packed-refs),
//! without spawning git. For other backends (reftable) callers fall back to git itself:
//! [`RefStore::open`] returns `None` there.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::validate;

/// What a reference points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefValue {
    Oid(String),
    Symbolic(String),
}

/// Reader for a repository using the `files` ref backend.
pub struct RefStore {
    git_dir: PathBuf,
}

impl RefStore {
    /// `None` if the repository does not use the `files` backend (then ask git).
    pub fn open(git_dir: &Path) -> Option<RefStore> {
        if git_dir.join("reftable").is_dir() {
            return None;
        }
        Some(RefStore {
            git_dir: git_dir.to_path_buf(),
        })
    }

    /// Read one reference without following symrefs. Invalid names read as absent.
    pub fn read_raw(&self, name: &str) -> io::Result<Option<RefValue>> {
        if name != "HEAD" && !(name.starts_with("refs/") && validate::is_valid_ref_name(name)) {
            return Ok(None);
        }
        // The loose file first, then `packed-refs`: keep this order. `git pack-refs` (run by
        // housekeeping while we serve) writes the new `packed-refs` before it deletes the
        // loose files, so a ref is always in one of the two places we look, in this order.
        // The other order could read the old `packed-refs`, then miss the deleted loose file.
        match fs::read(self.git_dir.join(name)) {
            Ok(data) => return parse_loose(&data).map(Some),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::IsADirectory
                    || e.raw_os_error() == Some(libc::ENOTDIR)
                    // A component over NAME_MAX can't be a loose ref (packed ones can be).
                    || e.raw_os_error() == Some(libc::ENAMETOOLONG) => {}
            Err(e) => return Err(e),
        }
        if name == "HEAD" {
            return Ok(None);
        }
        self.read_packed(name)
    }

    fn read_packed(&self, name: &str) -> io::Result<Option<RefValue>> {
        let Some(packed) = packed_refs(&self.git_dir.join("packed-refs"))? else {
            return Ok(None);
        };
        Ok(packed.get(name).map(|oid| RefValue::Oid(oid.to_string())))
    }

    /// Resolve a reference to an object id, following up to 5 symbolic links.
    pub fn resolve(&self, name: &str) -> io::Result<Option<String>> {
        let mut name = name.to_string();
        for _ in 0..5 {
            match self.read_raw(&name)? {
                None => return Ok(None),
                Some(RefValue::Oid(oid)) => return Ok(Some(oid)),
                Some(RefValue::Symbolic(target)) => name = target,
            }
        }
        Ok(None)
    }

    /// Does the reference exist (as git's `show-ref --verify` would say)?
    pub fn exists(&self, name: &str) -> io::Result<bool> {
        Ok(self.resolve(name)?.is_some())
    }

    /// Where HEAD points (`refs/heads/main`), if it is symbolic.
    pub fn head_target(&self) -> io::Result<Option<String>> {
        Ok(match self.read_raw("HEAD")? {
            Some(RefValue::Symbolic(t)) => Some(t),
            _ => None,
        })
    }
}

/// A parsed `packed-refs`: name → object id (peeled lines are skipped).
type Packed = HashMap<Box<str>, Box<str>>;

/// Identity of a `packed-refs` file as written: git replaces it by renaming a lock file
/// over it, so a new version has a new inode (and usually another size and mtime).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

/// Repositories' parsed `packed-refs`, kept while their stamp matches. Big repositories
/// have thousands of packed refs (hundreds of KB); parsing the file on every lookup cost
/// more than the whole rest of a RefExists call. A `stat` per lookup checks freshness.
const PACKED_CACHE_MAX: usize = 512;

type PackedCache = Mutex<HashMap<PathBuf, (Stamp, Arc<Packed>)>>;

fn packed_cache() -> &'static PackedCache {
    static C: OnceLock<PackedCache> = OnceLock::new();
    C.get_or_init(Default::default)
}

fn packed_refs(path: &Path) -> io::Result<Option<Arc<Packed>>> {
    use std::os::unix::fs::MetadataExt;
    let stamp = |m: &fs::Metadata| Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let want = stamp(&meta);
    if let Some((have, packed)) = packed_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(path)
    {
        if *have == want {
            return Ok(Some(packed.clone()));
        }
    }
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // Stamp what we actually read (the file may have been replaced since the stat).
    let read_stamp = stamp(&file.metadata()?);
    let data = {
        use std::io::Read;
        let mut d = Vec::with_capacity(read_stamp.size as usize);
        (&file).read_to_end(&mut d)?;
        d
    };
    let packed = Arc::new(parse_packed(&data));
    let mut cache = packed_cache().lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= PACKED_CACHE_MAX {
        cache.clear();
    }
    cache.insert(path.to_path_buf(), (read_stamp, packed.clone()));
    Ok(Some(packed))
}

fn parse_packed(data: &[u8]) -> Packed {
    let mut out = Packed::new();
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() || line[0] == b'#' || line[0] == b'^' {
            continue;
        }
        let Some(sp) = line.iter().position(|&b| b == b' ') else {
            continue;
        };
        if let (Ok(oid), Ok(name)) = (
            std::str::from_utf8(&line[..sp]),
            std::str::from_utf8(&line[sp + 1..]),
        ) {
            out.insert(name.trim_end_matches('\r').into(), oid.into());
        }
    }
    out
}

fn parse_loose(data: &[u8]) -> io::Result<RefValue> {
    let s = std::str::from_utf8(data)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "ref is not UTF-8"))?
        .trim_end();
    if let Some(target) = s.strip_prefix("ref: ") {
        return Ok(RefValue::Symbolic(target.trim().to_string()));
    }
    if s.len() >= 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(RefValue::Oid(s.to_string()));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad loose ref: {s:?}"),
    ))
}

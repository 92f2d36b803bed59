//! Native reads of references in `files`-backend repositories (loose files + packed-refs),
//! without spawning git. For other backends (reftable) callers fall back to git itself:
//! [`RefStore::open`] returns `None` there.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
        match fs::read(self.git_dir.join(name)) {
            Ok(data) => return parse_loose(&data).map(Some),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.kind() == io::ErrorKind::IsADirectory
                    || e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => return Err(e),
        }
        if name == "HEAD" {
            return Ok(None);
        }
        self.read_packed(name)
    }

    fn read_packed(&self, name: &str) -> io::Result<Option<RefValue>> {
        let data = match fs::read(self.git_dir.join("packed-refs")) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        for line in data.split(|&b| b == b'\n') {
            if line.is_empty() || line[0] == b'#' || line[0] == b'^' {
                continue;
            }
            let Some(sp) = line.iter().position(|&b| b == b' ') else {
                continue;
            };
            if &line[sp + 1..] == name.as_bytes() {
                return Ok(Some(RefValue::Oid(
                    String::from_utf8_lossy(&line[..sp]).into_owned(),
                )));
            }
        }
        Ok(None)
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

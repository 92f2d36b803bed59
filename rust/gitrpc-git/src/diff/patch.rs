//! The patch of one file while it is read: its length always, its bytes only as long as they
//! may still be sent. Up to [`MEMORY`] bytes stay in memory, the rest goes to an unlinked
//! temp file (so a patch that must be sent whole costs no more memory than that).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Bytes of one patch kept in memory before the rest spills to a temp file.
pub const MEMORY: usize = 8 * 1024 * 1024;

/// One file's patch being collected.
#[derive(Debug)]
pub struct PatchBuf {
    mem: Vec<u8>,
    file: Option<File>,
    in_file: u64,
    /// Bytes appended (what Gitaly's `len(diff.Patch)` is), stored or not.
    len: u64,
    /// Bytes may be stored only while `len` stays below this.
    keep: u64,
    /// The bytes were given up (the patch can't be sent): only `len` counts on.
    dropped: bool,
    memory: usize,
    spill_dir: Option<PathBuf>,
}

impl PatchBuf {
    /// Spill to unlinked files in `spill_dir` past `memory` bytes; without a directory
    /// everything stays in memory.
    pub fn new(spill_dir: Option<PathBuf>, memory: usize) -> PatchBuf {
        PatchBuf {
            mem: Vec::new(),
            file: None,
            in_file: 0,
            len: 0,
            keep: u64::MAX,
            dropped: false,
            memory,
            spill_dir,
        }
    }

    /// Start a new patch whose bytes are worth keeping only while it is shorter than `keep`.
    pub fn reset(&mut self, keep: u64) {
        self.clear();
        self.keep = keep;
        self.dropped = keep == 0;
    }

    /// Empty (Gitaly's `ClearPatch`): length 0, nothing stored.
    pub fn clear(&mut self) {
        self.mem.clear();
        if self.mem.capacity() > self.memory.min(1 << 20) {
            self.mem = Vec::new();
        }
        self.file = None;
        self.in_file = 0;
        self.len = 0;
    }

    /// Append a piece of the patch.
    pub fn push(&mut self, piece: &[u8]) -> io::Result<()> {
        self.len += piece.len() as u64;
        if self.dropped {
            return Ok(());
        }
        if self.len >= self.keep {
            self.give_up();
            return Ok(());
        }
        if self.file.is_none() && self.mem.len() + piece.len() > self.memory {
            if let Some(dir) = &self.spill_dir {
                match tempfile::tempfile_in(dir) {
                    Ok(f) => self.file = Some(f),
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "patch spill file unusable; keeping it in memory")
                    }
                }
            }
        }
        match &mut self.file {
            Some(f) => {
                f.write_all(piece)?;
                self.in_file += piece.len() as u64;
            }
            None => self.mem.extend_from_slice(piece),
        }
        Ok(())
    }

    /// The bytes will never be sent: stop storing them (the length still counts).
    pub fn give_up(&mut self) {
        let len = self.len;
        self.clear();
        self.len = len;
        self.dropped = true;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Are all `len` bytes stored (so the patch can be sent)?
    pub fn is_complete(&self) -> bool {
        !self.dropped || self.len == 0
    }

    /// Copy the stored bytes from `offset` into `buf`; returns how many were copied (0 at
    /// the end).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mem = self.mem.len() as u64;
        if offset < mem {
            let start = offset as usize;
            let n = buf.len().min(self.mem.len() - start);
            buf[..n].copy_from_slice(&self.mem[start..start + n]);
            return Ok(n);
        }
        let Some(f) = &self.file else {
            return Ok(0);
        };
        let off = offset - mem;
        if off >= self.in_file {
            return Ok(0);
        }
        let want = buf.len().min((self.in_file - off) as usize);
        f.read_exact_at(&mut buf[..want], off)?;
        Ok(want)
    }

    /// All stored bytes (for tests and small patches).
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; (self.mem.len() as u64 + self.in_file) as usize];
        let mut at = 0;
        while at < out.len() {
            let n = self.read_at(at as u64, &mut out[at..])?;
            if n == 0 {
                break;
            }
            at += n;
        }
        Ok(out)
    }

    /// Has part of the patch gone to a temp file?
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_only_while_they_can_be_sent() {
        let mut p = PatchBuf::new(None, MEMORY);
        p.reset(10);
        p.push(b"12345").unwrap();
        assert!(p.is_complete());
        assert_eq!(p.to_vec().unwrap(), b"12345");
        p.push(b"67890").unwrap(); // len 10 >= keep: dropped
        assert_eq!(p.len(), 10);
        assert!(!p.is_complete());
        assert_eq!(p.to_vec().unwrap(), b"");
        p.reset(0);
        assert!(p.is_complete()); // nothing to send
        p.push(b"x").unwrap();
        assert!(!p.is_complete());
        p.clear();
        assert_eq!((p.len(), p.is_empty()), (0, true));
    }

    #[test]
    fn spills_past_the_memory_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = PatchBuf::new(Some(dir.path().to_path_buf()), 8);
        p.reset(u64::MAX);
        for piece in [&b"abcde"[..], b"fgh", b"ijklmnop", b"q"] {
            p.push(piece).unwrap();
        }
        assert!(p.spilled());
        assert_eq!(p.to_vec().unwrap(), b"abcdefghijklmnopq");
        let mut buf = [0u8; 4];
        assert_eq!(p.read_at(6, &mut buf).unwrap(), 2); // memory part ends at 8
        assert_eq!(&buf[..2], b"gh");
        assert_eq!(p.read_at(8, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"ijkl");
        // Unlinked: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        p.reset(u64::MAX);
        assert!(!p.spilled());
    }
}

//! The key of a cache entry: what determines the bytes `pack-objects` writes for a request.
//!
//! SHA-256 over a length-prefixed encoding of: a format tag, the repository's path on disk
//! (located and normalised, so every spelling of a repository shares entries), the
//! pack-objects arguments after `git` (as upload-pack gave them), the call's `git_protocol`
//! (as Gitaly keys on it), then every byte upload-pack wrote to pack-objects' stdin (the
//! wants, haves and shallow boundaries). Gitaly keys on the same (its `Repository` message,
//! arguments, protocol, stdin). Not in the key: who asked (user, address) and the client's
//! `git_config_options` (none of the allowed ones reaches pack-objects, which we start
//! ourselves without them).

use std::path::Path;

use gitrpc_git::packobjects::PackObjectsArgs;

/// An entry's key.
pub type Key = [u8; 32];

/// Hashes one request: [`KeyHasher::new`] with what is known before stdin, then stdin.
pub struct KeyHasher(ring::digest::Context);

impl KeyHasher {
    pub fn new(repo: &Path, args: &PackObjectsArgs, protocol: &str) -> KeyHasher {
        let mut h = KeyHasher(ring::digest::Context::new(&ring::digest::SHA256));
        h.part(b"gitrpc-pack-objects-v1");
        h.part(repo.as_os_str().as_encoded_bytes());
        let args = args.canonical();
        h.part(&(args.len() as u64).to_be_bytes());
        for a in &args {
            h.part(a.as_bytes());
        }
        h.part(protocol.as_bytes());
        h
    }

    /// One length-prefixed part (so no two different lists of parts hash alike).
    fn part(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    /// stdin, in any number of pieces.
    pub fn update(&mut self, stdin: &[u8]) {
        self.0.update(stdin);
    }

    pub fn finish(self) -> Key {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.0.finish().as_ref());
        key
    }
}

/// The first 12 hex digits: how files, logs and diagnostics name an entry.
pub fn short(key: &Key) -> String {
    hex::encode(&key[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(repo: &str, args: &[&str], protocol: &str, stdin: &[&[u8]]) -> Key {
        let args = PackObjectsArgs::parse(args).unwrap();
        let mut h = KeyHasher::new(Path::new(repo), &args, protocol);
        for s in stdin {
            h.update(s);
        }
        h.finish()
    }

    #[test]
    fn every_part_counts_and_stdin_may_come_in_pieces() {
        let args = ["git", "pack-objects", "--revs", "--stdout"];
        let base = key("/r.git", &args, "version=2", &[b"aa\n\n"]);
        assert_eq!(
            base,
            key("/r.git", &args, "version=2", &[b"a", b"a\n", b"\n"])
        );
        assert_ne!(base, key("/s.git", &args, "version=2", &[b"aa\n\n"]));
        assert_ne!(base, key("/r.git", &args, "", &[b"aa\n\n"]));
        assert_ne!(base, key("/r.git", &args, "version=2", &[b"ab\n\n"]));
        let thin = ["git", "pack-objects", "--revs", "--stdout", "--thin"];
        assert_ne!(base, key("/r.git", &thin, "version=2", &[b"aa\n\n"]));
        assert_eq!(short(&base).len(), 12);
    }
}

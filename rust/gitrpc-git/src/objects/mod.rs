//! git objects: parsers for commits, tags and trees as `git cat-file` prints them, typed
//! reads through a [`crate::CatFile`], and the tree walker that finds an entry by path.
//! Services get parsed objects from here; none of them parses git's formats itself.

mod commit;
mod reader;
mod signed;
pub mod tree;

pub use commit::{
    parse_commit, parse_signature, parse_tag, subject, trailers, Commit, Signature, SignatureKind,
    Tag, MAX_MESSAGE_SIZE,
};
pub use reader::TreeWalker;
pub use signed::{commit_message, signed_commit, SignedCommit};
pub use tree::{mode, parse_ls_tree, parse_tree, EntryKind, TreeEntry};

use std::path::Path;

/// The hash function of a repository's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ObjectFormat {
    #[default]
    Sha1,
    Sha256,
}

impl ObjectFormat {
    /// Bytes of a binary object id.
    pub fn raw_len(self) -> usize {
        match self {
            ObjectFormat::Sha1 => 20,
            ObjectFormat::Sha256 => 32,
        }
    }

    /// Characters of a hex object id.
    pub fn hex_len(self) -> usize {
        self.raw_len() * 2
    }

    /// The format of a hex object id, by its length.
    pub fn of_oid(oid: &str) -> Option<ObjectFormat> {
        match oid.len() {
            40 => Some(ObjectFormat::Sha1),
            64 => Some(ObjectFormat::Sha256),
            _ => None,
        }
    }

    /// The all-zero id (git's "no object": a ref that must not exist, a deletion).
    pub fn zero_oid(self) -> String {
        "0".repeat(self.hex_len())
    }

    /// The id of the empty tree (what a root commit is diffed against; it needn't exist in
    /// the repository: git knows it).
    pub fn empty_tree_oid(self) -> &'static str {
        match self {
            ObjectFormat::Sha1 => "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            ObjectFormat::Sha256 => {
                "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
            }
        }
    }

    /// Is `oid` a full hex object id of this format?
    pub fn is_oid(self, oid: &[u8]) -> bool {
        oid.len() == self.hex_len() && oid.iter().all(u8::is_ascii_hexdigit)
    }

    /// The format of the repository at `git_dir`, from its config
    /// (`extensions.objectFormat`); SHA-1 when unset or unreadable.
    pub fn of_repository(git_dir: &Path) -> ObjectFormat {
        let cfg = std::fs::read_to_string(git_dir.join("config")).unwrap_or_default();
        let sha256 = cfg.lines().any(|l| {
            let l = l.trim().to_ascii_lowercase().replace(' ', "");
            l == "objectformat=sha256"
        });
        if sha256 {
            ObjectFormat::Sha256
        } else {
            ObjectFormat::Sha1
        }
    }
}

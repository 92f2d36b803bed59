//! Tree objects: one parser for raw trees (SHA-1 and SHA-256) and one for `ls-tree -z`
//! listings, one entry type, one kind enum.

use super::ObjectFormat;
use crate::{Error, Result};

/// Entry modes as git writes them.
pub mod mode {
    /// The bits that say what an entry is.
    pub const TYPE_MASK: u32 = 0o170000;
    pub const TREE: u32 = 0o040000;
    pub const BLOB: u32 = 0o100644;
    pub const EXECUTABLE: u32 = 0o100755;
    pub const SYMLINK: u32 = 0o120000;
    /// A submodule: the entry names a commit of another repository.
    pub const GITLINK: u32 = 0o160000;
}

/// What a tree entry is (Gitaly's `TreeEntry.EntryType`: blobs include executables and
/// symlinks, a submodule is a commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Blob,
    Tree,
    Submodule,
}

impl EntryKind {
    pub fn from_mode(m: u32) -> EntryKind {
        match m & mode::TYPE_MASK {
            mode::TREE => EntryKind::Tree,
            mode::GITLINK => EntryKind::Submodule,
            _ => EntryKind::Blob,
        }
    }
}

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    pub mode: u32,
    pub kind: EntryKind,
    /// Its name in the tree (for [`parse_ls_tree`]: its path below the tree listed).
    pub name: Vec<u8>,
    /// Object id, lowercase hex.
    pub oid: String,
}

impl TreeEntry {
    fn new(mode: u32, name: &[u8], oid: String) -> TreeEntry {
        TreeEntry {
            mode,
            kind: EntryKind::from_mode(mode),
            name: name.to_vec(),
            oid,
        }
    }
}

fn malformed(what: &str) -> Error {
    Error::Protocol {
        subcommand: "cat-file",
        detail: format!("malformed {what}"),
    }
}

fn octal(m: &[u8]) -> Option<u32> {
    u32::from_str_radix(std::str::from_utf8(m).ok()?, 8).ok()
}

/// Parse a raw tree object: `<octal mode> SP <name> NUL <binary object id>`, repeated, with
/// ids of `format`'s length.
pub fn parse_tree(data: &[u8], format: ObjectFormat) -> Result<Vec<TreeEntry>> {
    let bad = || malformed("tree object");
    let raw_len = format.raw_len();
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let m = octal(&rest[..sp]).ok_or_else(bad)?;
        let name_len = rest[sp + 1..]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(bad)?;
        let nul = sp + 1 + name_len;
        let raw = rest.get(nul + 1..nul + 1 + raw_len).ok_or_else(bad)?;
        out.push(TreeEntry::new(m, &rest[sp + 1..nul], hex::encode(raw)));
        rest = &rest[nul + 1 + raw_len..];
    }
    Ok(out)
}

/// Parse `git ls-tree -z [-r] [-t]` output: `<mode> SP <type> SP <oid> TAB <path> NUL`,
/// repeated. Entries carry their path (below the tree listed) as their name.
pub fn parse_ls_tree(out: &[u8]) -> Result<Vec<TreeEntry>> {
    let mut entries = Vec::new();
    for record in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let bad = || Error::Protocol {
            subcommand: "ls-tree",
            detail: format!("unexpected line {:?}", String::from_utf8_lossy(record)),
        };
        let tab = record.iter().position(|&b| b == b'\t').ok_or_else(bad)?;
        let mut fields = record[..tab].split(|&b| b == b' ');
        let (Some(m), Some(_kind), Some(oid)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let m = octal(m).ok_or_else(bad)?;
        let oid = std::str::from_utf8(oid).map_err(|_| bad())?;
        entries.push(TreeEntry::new(m, &record[tab + 1..], oid.to_string()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_tree(entries: &[(&str, &[u8], &[u8])]) -> Vec<u8> {
        let mut t = Vec::new();
        for (m, name, raw) in entries {
            t.extend_from_slice(m.as_bytes());
            t.push(b' ');
            t.extend_from_slice(name);
            t.push(0);
            t.extend_from_slice(raw);
        }
        t
    }

    #[test]
    fn sha1_and_sha256_trees() {
        for format in [ObjectFormat::Sha1, ObjectFormat::Sha256] {
            let a = vec![0xab; format.raw_len()];
            let b: Vec<u8> = (0..format.raw_len() as u8).collect();
            let data = raw_tree(&[
                ("100644", b"a file", &a),
                ("100755", b"run.sh", &b),
                ("120000", b"link", &a),
                ("40000", b"dir", &b),
                ("160000", b"sub\xff", &a),
            ]);
            let t = parse_tree(&data, format).unwrap();
            let kinds: Vec<_> = t.iter().map(|e| (e.mode, e.kind)).collect();
            assert_eq!(
                kinds,
                [
                    (mode::BLOB, EntryKind::Blob),
                    (mode::EXECUTABLE, EntryKind::Blob),
                    (mode::SYMLINK, EntryKind::Blob),
                    (mode::TREE, EntryKind::Tree),
                    (mode::GITLINK, EntryKind::Submodule),
                ]
            );
            assert_eq!(t[0].name, b"a file");
            assert_eq!(t[4].name, b"sub\xff");
            assert_eq!(t[0].oid, "ab".repeat(format.raw_len()));
            assert_eq!(t[1].oid.len(), format.hex_len());
            assert!(t[1].oid.starts_with("000102030405"));
            // The same bytes read with the other hash length are not a tree.
            let other = match format {
                ObjectFormat::Sha1 => ObjectFormat::Sha256,
                ObjectFormat::Sha256 => ObjectFormat::Sha1,
            };
            assert!(parse_tree(&data, other).is_err());
        }
        assert_eq!(parse_tree(b"", ObjectFormat::Sha1).unwrap(), []);
    }

    #[test]
    fn malformed_trees_are_errors() {
        let id = [1u8; 20];
        for bad in [
            raw_tree(&[("100644", b"x", &id[..19])]),
            raw_tree(&[("10x644", b"x", &id)]),
            b"100644 no-nul".to_vec(),
            b"100644".to_vec(),
        ] {
            let e = parse_tree(&bad, ObjectFormat::Sha1).unwrap_err();
            assert_eq!(
                e.to_string(),
                "git cat-file: unexpected output: malformed tree object"
            );
        }
    }

    #[test]
    fn ls_tree_listings() {
        let oid = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let out = format!("040000 tree {oid}\tdir\0100644 blob {oid}\tdir/a b\n.txt\0");
        let t = parse_ls_tree(out.as_bytes()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].kind, t[0].name.as_slice()),
            (EntryKind::Tree, &b"dir"[..])
        );
        assert_eq!(t[1].name, b"dir/a b\n.txt");
        assert_eq!(t[1].mode, mode::BLOB);
        assert!(parse_ls_tree(b"100644 blob x").is_err());
    }
}

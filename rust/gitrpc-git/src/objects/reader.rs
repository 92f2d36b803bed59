//! Typed reads through a cat-file process, and the tree walker.

use std::collections::HashMap;
use std::sync::Arc;

use super::{parse_commit, parse_tree, Commit, EntryKind, ObjectFormat, TreeEntry};
use crate::{CatFile, Lease, ObjectType, Result};

impl CatFile {
    /// The commit `object` names; `None` if it is missing or not a commit (peel with
    /// `<rev>^{commit}` to accept tags).
    pub async fn read_commit(&mut self, object: &str) -> Result<Option<Commit>> {
        match self.read_object(object).await? {
            Some((info, data)) if info.kind == ObjectType::Commit => {
                Ok(Some(parse_commit(&info.oid, &data)))
            }
            _ => Ok(None),
        }
    }

    /// The entries of the tree `object` names; `None` if it is missing or not a tree (a
    /// non-tree is not read: its content is skipped, or left for the pool to discard).
    pub async fn read_tree(&mut self, object: &str) -> Result<Option<Vec<TreeEntry>>> {
        let Some(info) = self.contents(object).await? else {
            return Ok(None);
        };
        if info.kind != ObjectType::Tree {
            self.skip_rest().await?;
            return Ok(None);
        }
        let data = self.read_rest().await?;
        let format = ObjectFormat::of_oid(&info.oid).unwrap_or_default();
        Ok(Some(parse_tree(&data, format)?))
    }
}

/// Can `s` go into a cat-file command as part of an object name?
fn batch_safe(s: &[u8]) -> Option<&str> {
    if s.contains(&b'\n') || s.contains(&0) {
        return None;
    }
    std::str::from_utf8(s).ok()
}

/// Finds tree entries by path through one leased cat-file, keeping the trees it read for the
/// rest of the request. Paths never reach git's path resolution as typed: only plain
/// relative paths match (empty, `.` and `..` components never do, as in Gitaly's tree entry
/// finder), so no path syntax (`./`, `../`, pathspec magic) is interpreted.
pub struct TreeWalker {
    cat: Lease,
    /// Trees by the object name they were read as (`<rev>:<dir>` or an id).
    trees: HashMap<String, Option<Arc<Vec<TreeEntry>>>>,
}

impl TreeWalker {
    pub fn new(cat: Lease) -> TreeWalker {
        TreeWalker {
            cat,
            trees: HashMap::new(),
        }
    }

    /// The cat-file process, for reading what was found.
    pub fn cat(&mut self) -> &mut Lease {
        &mut self.cat
    }

    pub fn into_cat(self) -> Lease {
        self.cat
    }

    /// The tree `object` names (`None`: missing or not a tree), read once per request.
    pub async fn tree(&mut self, object: &str) -> Result<Option<Arc<Vec<TreeEntry>>>> {
        if let Some(t) = self.trees.get(object) {
            return Ok(t.clone());
        }
        let tree = self.cat.read_tree(object).await?.map(Arc::new);
        // A large non-tree's content may still be in the pipe: start afresh.
        self.cat.ensure_clean()?;
        self.trees.insert(object.to_string(), tree.clone());
        Ok(tree)
    }

    /// The entry at `path` (no trailing slash) in `rev`'s tree; `None` if there is none.
    /// The root itself is no entry (as in Gitaly). One cat-file round trip for the parent
    /// directory (`<rev>:<dir>`, resolved by git), none when it was read before.
    pub async fn entry(&mut self, rev: &str, path: &[u8]) -> Result<Option<TreeEntry>> {
        if path.is_empty()
            || path
                .split(|&b| b == b'/')
                .any(|c| c.is_empty() || c == b"." || c == b"..")
        {
            return Ok(None);
        }
        let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&b""[..], path),
        };
        let parent = match batch_safe(dir) {
            Some(dir) => self.tree(&format!("{rev}:{dir}")).await?,
            // A directory name cat-file can't be asked for: walk down from the root.
            None => self.walk(rev, dir).await?,
        };
        Ok(parent.and_then(|t| t.iter().find(|e| e.name == name).cloned()))
    }

    /// The tree at `dir` in `rev`, component by component.
    async fn walk(&mut self, rev: &str, dir: &[u8]) -> Result<Option<Arc<Vec<TreeEntry>>>> {
        let Some(mut tree) = self.tree(&format!("{rev}:")).await? else {
            return Ok(None);
        };
        for name in dir.split(|&b| b == b'/') {
            let Some(sub) = tree
                .iter()
                .find(|e| e.name == name && e.kind == EntryKind::Tree)
                .map(|e| e.oid.clone())
            else {
                return Ok(None);
            };
            let Some(t) = self.tree(&sub).await? else {
                return Ok(None);
            };
            tree = t;
        }
        Ok(Some(tree))
    }
}

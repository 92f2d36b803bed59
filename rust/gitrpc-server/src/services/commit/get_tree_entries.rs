//! GetTreeEntries: a tree's entries (or all below it), sorted, paginated, with flat paths.

use gitrpc_git::objects::{self, EntryKind, TreeWalker};
use gitrpc_git::{validate, ObjectType, Subcommand};
use gitrpc_proto::gitaly::*;
use tonic::{Response, Status};

use super::{page_token, CommitServiceImpl, FLAT_PATH_DEPTH};
use crate::batch::{batches, Limits};
use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::stream::RpcStream;

/// The `EntryType` of a tree entry.
fn entry_type(kind: EntryKind) -> tree_entry::EntryType {
    match kind {
        EntryKind::Tree => tree_entry::EntryType::Tree,
        EntryKind::Submodule => tree_entry::EntryType::Commit,
        EntryKind::Blob => tree_entry::EntryType::Blob,
    }
}

/// A `TreeEntry` below `prefix` (no trailing slash); `commit_oid` is the revision as asked,
/// as Gitaly does.
fn tree_entry(e: &objects::TreeEntry, prefix: &str, rev: &str) -> TreeEntry {
    let mut path = Vec::with_capacity(prefix.len() + 1 + e.name.len());
    if !prefix.is_empty() {
        path.extend_from_slice(prefix.as_bytes());
        path.push(b'/');
    }
    path.extend_from_slice(&e.name);
    TreeEntry {
        oid: e.oid.clone(),
        path,
        r#type: entry_type(e.kind) as i32,
        mode: e.mode as i32,
        commit_oid: rev.to_string(),
        flat_path: Vec::new(),
    }
}

/// `git ls-tree -z -r -t <tree>`: every entry below the tree, trees before their contents.
async fn ls_tree_recursive(
    repo: &Repo<'_>,
    tree: &str,
    prefix: &str,
    rev: &str,
) -> Result<Vec<TreeEntry>> {
    let cmd = repo
        .cmd(Subcommand::LsTree)
        .flag("-z")
        .flag("-r")
        .flag("-t")
        .rev(tree);
    let out = repo.output(&cmd).await?;
    Ok(objects::parse_ls_tree(&out.stdout)?
        .iter()
        .map(|e| tree_entry(e, prefix, rev))
        .collect())
}

/// Gitaly's pagination of tree entries: start after the entry named by the token (an error if
/// none matches), return at most `limit` (negative: all; zero: none), and a cursor if more
/// entries follow.
fn paginate_entries(
    entries: Vec<TreeEntry>,
    p: &PaginationParameter,
) -> Result<(Vec<TreeEntry>, String)> {
    let start = if p.page_token.is_empty() {
        0
    } else {
        let (pos, start) = match page_token::decode(&p.page_token) {
            page_token::Token::Path(path) => (
                entries.iter().position(|e| e.path == path),
                String::from_utf8_lossy(&path).into_owned(),
            ),
            page_token::Token::Oid(oid) => (entries.iter().position(|e| e.oid == oid), oid),
        };
        pos.ok_or_else(|| Error::internal(format!("could not find starting OID: {start}")))? + 1
    };
    let limit = p.limit;
    if limit == 0 {
        return Ok((Vec::new(), String::new()));
    }
    let mut entries = entries;
    let rest: Vec<TreeEntry> = entries.drain(start.min(entries.len())..).collect();
    if limit < 0 || limit as usize >= rest.len() {
        return Ok((rest, String::new()));
    }
    let page: Vec<TreeEntry> = rest.into_iter().take(limit as usize).collect();
    let cursor = page_token::encode(&page[page.len() - 1].path);
    Ok((page, cursor))
}

impl CommitServiceImpl {
    pub(super) async fn get_tree_entries(
        &self,
        req: GetTreeEntriesRequest,
    ) -> Result<Response<RpcStream<GetTreeEntriesResponse>>> {
        use get_tree_entries_request::SortBy;
        let repo = self.deps.repo(req.repository.as_ref())?;
        let rev = validate::revision(&req.revision)?;
        if req.path.is_empty() {
            return Err(Error::invalid("empty path"));
        }
        let mut path = validate::tree_path(&req.path)?;
        if path == "." {
            path = "";
        }
        let sort = SortBy::try_from(req.sort).map_err(|_| Error::invalid("unknown sort order"))?;
        let prefix = path.trim_end_matches('/');
        let mut walker = TreeWalker::new(repo.catfile()?);
        let info = walker.cat().info(&format!("{rev}:{path}")).await?;
        let mut entries = match info {
            // As Gitaly: a missing revision or path is NOT_FOUND for recursive listings and
            // INVALID_ARGUMENT otherwise; a path naming a blob lists nothing.
            None if req.recursive => return Err(Error::not_found("invalid revision or path")),
            None => return Err(Error::invalid("invalid revision or path")),
            Some(info) if info.kind != ObjectType::Tree => Vec::new(),
            Some(info) if req.recursive => ls_tree_recursive(&repo, &info.oid, prefix, rev).await?,
            Some(info) => walker
                .tree(&info.oid)
                .await?
                .unwrap_or_default()
                .iter()
                .map(|e| tree_entry(e, prefix, rev))
                .collect(),
        };
        match sort {
            SortBy::Default => {}
            SortBy::TreesFirst => entries.sort_by_key(|e| match e.r#type() {
                tree_entry::EntryType::Tree => 0,
                tree_entry::EntryType::Blob => 1,
                tree_entry::EntryType::Commit => 2,
            }),
            SortBy::Filesystem => entries.sort_by(|a, b| a.path.cmp(&b.path)),
        }
        let (mut entries, cursor) = match &req.pagination_params {
            Some(p) => paginate_entries(entries, p)?,
            None => (entries, String::new()),
        };
        if !req.recursive && !req.skip_flat_paths {
            // The flat path of a directory skips down through directories that hold nothing
            // but one directory.
            for e in &mut entries {
                e.flat_path = e.path.clone();
                if e.r#type() != tree_entry::EntryType::Tree {
                    continue;
                }
                let mut oid = e.oid.clone();
                for _ in 1..FLAT_PATH_DEPTH {
                    let Some(sub) = walker.tree(&oid).await? else {
                        break;
                    };
                    match sub.as_slice() {
                        [only] if only.kind == EntryKind::Tree => {
                            e.flat_path.push(b'/');
                            e.flat_path.extend_from_slice(&only.name);
                            oid = only.oid.clone();
                        }
                        _ => break,
                    }
                }
            }
        }
        let messages = batches(entries, Limits::LISTING);
        // Only the first message carries the cursor, as Gitaly sends it.
        let mut cursor = Some(PaginationCursor {
            next_cursor: cursor,
        });
        let messages: Vec<Result<GetTreeEntriesResponse, Status>> = messages
            .into_iter()
            .map(|entries| {
                Ok(GetTreeEntriesResponse {
                    entries,
                    pagination_cursor: cursor.take(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }
}

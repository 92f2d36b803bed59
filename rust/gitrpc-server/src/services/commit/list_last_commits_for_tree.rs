//! ListLastCommitsForTree: the last commit of each entry of a directory, in one walk of the
//! directory's history per page (`gitrpc_git::lastcommits`), equal to what
//! `git log -1 <rev> -- <entry>` gives for each entry.
//! Gitaly: `internal/gitaly/service/commit/list_last_commits_for_tree.go` (per entry
//! `git log -1` until 2025, `git last-modified` since, which git 2.47 doesn't have).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use gitrpc_git::lastcommits::{last_commit_of, last_commits};
use gitrpc_git::objects::{parse_ls_tree, EntryKind, TreeEntry};
use gitrpc_git::validate::gitaly::{self, RevisionRules};
use gitrpc_git::{Git, Lease, Subcommand};
use gitrpc_proto::gitaly::list_last_commits_for_tree_response::CommitForTree;
use gitrpc_proto::gitaly::*;
use tonic::Response;

use super::{literal_pathspecs, CommitServiceImpl};
use crate::convert;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

/// Entries per response message (Gitaly's `maxNumStatBatchSize`).
const PER_MESSAGE: usize = 10;

/// Gitaly's order: trees, then blobs, then submodules; ls-tree's order within each.
fn kind_rank(k: EntryKind) -> u8 {
    match k {
        EntryKind::Tree => 0,
        EntryKind::Blob => 1,
        EntryKind::Submodule => 2,
    }
}

/// Would git read `path` as more than itself (a glob, or pathspec magic) without literal
/// pathspecs?
fn is_pattern(path: &[u8]) -> bool {
    path.starts_with(b":") || path.iter().any(|b| b"*?[\\".contains(b))
}

/// `(directory, name)` of a path from ls-tree (`""` for the root).
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

impl CommitServiceImpl {
    pub(super) async fn list_last_commits_for_tree(
        &self,
        req: ListLastCommitsForTreeRequest,
    ) -> Result<Response<RpcStream<ListLastCommitsForTreeResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        gitaly::revision(req.revision.as_bytes(), RevisionRules::PLAIN)?;
        if req.offset < 0 {
            return Err(Error::invalid("offset negative"));
        }
        if req.limit < 0 {
            return Err(Error::invalid("limit negative"));
        }
        let literal = req
            .global_options
            .as_ref()
            .is_some_and(|o| o.literal_pathspecs);
        let path: &[u8] = if req.path.is_empty() || req.path == b"/" {
            b"."
        } else {
            &req.path
        };
        let cmd = repo
            .cmd(Subcommand::LsTree)
            .flag("-z")
            .flag("--full-name")
            .rev(&req.revision)
            .path(path);
        let mut ls = repo.spawn(&literal_pathspecs(cmd, literal))?;
        let cat = repo.catfile()?;
        let (git, repo_path) = (repo.git.clone(), repo.path.clone());
        Ok(spawn_stream(move |sink| async move {
            let listing = ls.read_stdout_to_end().await?;
            let (status, stderr) = ls.wait_status().await?;
            if !status.success() {
                // As Gitaly: an unknown or ambiguous revision is git's exit status.
                tracing::debug!(%stderr, "ls-tree failed");
                return Err(Error::internal(format!(
                    "exit status {}",
                    status.code().unwrap_or(-1)
                )));
            }
            let mut entries = parse_ls_tree(&listing)?;
            entries.sort_by_key(|e| kind_rank(e.kind));
            let offset = req.offset as usize;
            if offset >= entries.len() {
                return Ok(());
            }
            let end = offset.saturating_add(req.limit as usize).min(entries.len());
            let page = &entries[offset..end];
            if page.is_empty() {
                return Ok(());
            }
            let commits = page_commits(&git, &repo_path, cat, &req.revision, page, literal).await?;
            let items: Vec<CommitForTree> = page
                .iter()
                .zip(commits)
                .map(|(e, commit)| CommitForTree {
                    commit: Some(commit),
                    path_bytes: e.name.clone(),
                })
                .collect();
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                let commits: Vec<CommitForTree> = items.by_ref().take(PER_MESSAGE).collect();
                sink.send(ListLastCommitsForTreeResponse { commits })
                    .await?;
            }
            Ok(())
        }))
    }
}

/// The last commit of each entry of `page` (ls-tree entries: full paths), in order.
async fn page_commits(
    git: &Git,
    repo: &Path,
    mut cat: Lease,
    revision: &str,
    page: &[TreeEntry],
    literal: bool,
) -> Result<Vec<GitCommit>> {
    let start = cat
        .info(&format!("{revision}^{{commit}}"))
        .await?
        .ok_or_else(|| Error::internal(format!("revision {revision:?} is not a commit")))?
        .oid;
    // One walk per directory (a page is one directory, unless the path named one entry),
    // and entries git would read as patterns on their own.
    let mut groups: BTreeMap<&[u8], Vec<usize>> = BTreeMap::new();
    let mut answers: Vec<Option<String>> = vec![None; page.len()];
    for (i, e) in page.iter().enumerate() {
        if !literal && is_pattern(&e.name) {
            let found = last_commit_of(git, repo, &start, &e.name, false).await?;
            let found = found.ok_or_else(|| {
                Error::internal(format!(
                    "commit not resolved for {}",
                    gitaly::go_quote(&e.name)
                ))
            })?;
            answers[i] = Some(found);
        } else {
            groups.entry(split(&e.name).0).or_default().push(i);
        }
    }
    for (dir, members) in groups {
        let names = members
            .iter()
            .map(|&i| split(&page[i].name).1.to_vec())
            .collect();
        let found = last_commits(git, &mut cat, repo, &start, dir, names).await?;
        for (i, c) in members.into_iter().zip(found) {
            answers[i] = Some(c);
        }
    }
    let mut read: HashMap<String, GitCommit> = HashMap::new();
    let mut out = Vec::with_capacity(page.len());
    for oid in answers.into_iter().flatten() {
        if let Some(c) = read.get(&oid) {
            out.push(c.clone());
            continue;
        }
        let commit = cat
            .read_commit(&oid)
            .await?
            .ok_or_else(|| Error::internal(format!("commit {oid} not found")))?;
        let commit = convert::commit(&commit, false);
        read.insert(oid, commit.clone());
        out.push(commit);
    }
    Ok(out)
}

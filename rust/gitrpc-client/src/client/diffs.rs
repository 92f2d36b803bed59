//! Typed calls of DiffService reads: CommitDiff (one [`Diff`] per file, reassembled from its
//! messages), FindChangedPaths, GetPatchID.

use futures::{Stream, StreamExt};
use tonic::Status;

use super::call::rpc;
use super::Client;
use crate::gitaly::commit_diff_request::{DiffMode, WhitespaceChanges};
use crate::gitaly::find_changed_paths_request::{request, Request as ChangedPathsRequest};
use crate::gitaly::*;

/// CommitDiff's limits and modes (`Default`: no limits, whole patches). The `max_*` limits
/// and the per-extension map only count with `enforce_limits`; the `safe_*` ones only with
/// `collapse_diffs`.
#[derive(Clone, Debug, Default)]
pub struct CommitDiffOptions {
    pub paths: Vec<Vec<u8>>,
    pub collapse_diffs: bool,
    pub enforce_limits: bool,
    pub collect_all_paths: bool,
    pub max_files: i32,
    pub max_lines: i32,
    pub max_bytes: i32,
    pub safe_max_files: i32,
    pub safe_max_lines: i32,
    pub safe_max_bytes: i32,
    pub max_patch_bytes: i32,
    pub max_patch_bytes_for_file_extension: std::collections::HashMap<String, i32>,
    pub word_diff: bool,
    pub whitespace: WhitespaceChanges,
}

/// One file of a CommitDiff, its patch put together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub from_path: Vec<u8>,
    pub to_path: Vec<u8>,
    pub from_id: String,
    pub to_id: String,
    pub old_mode: i32,
    pub new_mode: i32,
    pub binary: bool,
    /// The patch without its header lines (hunks, or git's `Binary files ... differ`).
    pub patch: Vec<u8>,
    /// The limits ended the diff here (an empty entry unless `collect_all_paths`).
    pub overflow_marker: bool,
    /// Left out by the safe limits (`collapse_diffs`).
    pub collapsed: bool,
    /// Left out as larger than `max_patch_bytes`.
    pub too_large: bool,
    pub lines_added: i32,
    pub lines_removed: i32,
}

impl Diff {
    fn from_first(m: CommitDiffResponse) -> Diff {
        Diff {
            from_path: m.from_path,
            to_path: m.to_path,
            from_id: m.from_id,
            to_id: m.to_id,
            old_mode: m.old_mode,
            new_mode: m.new_mode,
            binary: m.binary,
            patch: m.raw_patch_data,
            overflow_marker: m.overflow_marker,
            collapsed: m.collapsed,
            too_large: m.too_large,
            lines_added: m.lines_added,
            lines_removed: m.lines_removed,
        }
    }
}

/// Messages into files: a file's first message has its metadata, the following ones (up to
/// the one with `end_of_patch`) only more patch.
fn files(
    messages: impl Stream<Item = Result<CommitDiffResponse, Status>> + Send + Unpin + 'static,
) -> impl Stream<Item = Result<Diff, Status>> + Send + 'static {
    futures::stream::unfold(Some(messages), |messages| async move {
        let mut messages = messages?;
        let mut pending: Option<Diff> = None;
        loop {
            match messages.next().await {
                None => {
                    return pending.map(|_| {
                        let e = Status::internal("the last patch has no end_of_patch");
                        (Err(e), None)
                    })
                }
                Some(Err(e)) => return Some((Err(e), None)),
                Some(Ok(m)) => {
                    let end = m.end_of_patch;
                    match pending.as_mut() {
                        Some(d) => d.patch.extend_from_slice(&m.raw_patch_data),
                        None => pending = Some(Diff::from_first(m)),
                    }
                    if end {
                        return pending.map(|d| (Ok(d), Some(messages)));
                    }
                }
            }
        }
    })
}

impl Client {
    /// The files changed between two commits with their patches (`git diff left right`),
    /// as they come, bounded by `opts`' limits.
    pub async fn commit_diff(
        &self,
        repo: &Repository,
        left: &str,
        right: &str,
        opts: CommitDiffOptions,
    ) -> Result<impl Stream<Item = Result<Diff, Status>> + Send + 'static, Status> {
        let call = rpc(self.diff_service(), |mut c, r| async move {
            c.commit_diff(r).await
        });
        let msg = CommitDiffRequest {
            repository: Some(repo.clone()),
            left_commit_id: left.to_string(),
            right_commit_id: right.to_string(),
            paths: opts.paths,
            collapse_diffs: opts.collapse_diffs,
            enforce_limits: opts.enforce_limits,
            max_files: opts.max_files,
            max_lines: opts.max_lines,
            max_bytes: opts.max_bytes,
            safe_max_files: opts.safe_max_files,
            safe_max_lines: opts.safe_max_lines,
            safe_max_bytes: opts.safe_max_bytes,
            max_patch_bytes: opts.max_patch_bytes,
            diff_mode: if opts.word_diff {
                DiffMode::Worddiff as i32
            } else {
                DiffMode::Default as i32
            },
            max_patch_bytes_for_file_extension: opts.max_patch_bytes_for_file_extension,
            whitespace_changes: opts.whitespace as i32,
            collect_all_paths: opts.collect_all_paths,
        };
        let messages = self
            .stream("/gitaly.DiffService/CommitDiff", msg, call)
            .await?;
        Ok(files(Box::pin(messages)))
    }

    /// The paths each commit changed against its parents (`commits`), or between two trees
    /// (`trees`: left, right revisions), as `git diff-tree -r` lists them; `find_renames`
    /// reports renames with their old path; `filters` keep only those kinds of change
    /// (empty: all).
    pub async fn find_changed_paths(
        &self,
        repo: &Repository,
        commits: &[&str],
        trees: &[(&str, &str)],
        find_renames: bool,
        filters: &[find_changed_paths_request::DiffStatus],
    ) -> Result<Vec<ChangedPaths>, Status> {
        let call = rpc(self.diff_service(), |mut c, r| async move {
            c.find_changed_paths(r).await
        });
        let mut requests: Vec<ChangedPathsRequest> = commits
            .iter()
            .map(|c| ChangedPathsRequest {
                r#type: Some(request::Type::CommitRequest(request::CommitRequest {
                    commit_revision: c.to_string(),
                    parent_commit_revisions: Vec::new(),
                })),
            })
            .collect();
        requests.extend(trees.iter().map(|(l, r)| ChangedPathsRequest {
            r#type: Some(request::Type::TreeRequest(request::TreeRequest {
                left_tree_revision: l.to_string(),
                right_tree_revision: r.to_string(),
            })),
        }));
        let msg = FindChangedPathsRequest {
            repository: Some(repo.clone()),
            requests,
            find_renames,
            diff_filters: filters.iter().map(|f| *f as i32).collect(),
            ..Default::default()
        };
        let pages = self
            .collect("/gitaly.DiffService/FindChangedPaths", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.paths).collect())
    }

    /// `git patch-id` of the diff between two (possibly path-scoped) revisions;
    /// `context_free`: of the diff without context lines.
    pub async fn patch_id(
        &self,
        repo: &Repository,
        old: &[u8],
        new: &[u8],
        context_free: bool,
    ) -> Result<String, Status> {
        let call = rpc(self.diff_service(), |mut c, r| async move {
            c.get_patch_id(r).await
        });
        let msg = GetPatchIdRequest {
            repository: Some(repo.clone()),
            old_revision: old.to_vec(),
            new_revision: new.to_vec(),
            context_free,
        };
        let r = self
            .unary("/gitaly.DiffService/GetPatchID", msg, call)
            .await?;
        Ok(r.patch_id)
    }
}

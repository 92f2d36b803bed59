//! CommitService: reading commits (FindCommit, ListCommitsByOid), walking history
//! (ListCommits, CountCommits, CommitIsAncestor, LastCommitForPath) and reading trees
//! (TreeEntry, GetTreeEntries); the history reads behind a forge's pages (step 11: last
//! commits of a tree, FindCommits, blame, stats, signatures, messages...).
//!
//! Commits and trees are read through the cat-file pool; `git` itself is only spawned to walk
//! history (`rev-list`, `log`, `merge-base`, `blame`) and for recursive tree listings
//! (`ls-tree`). One file per RPC; the trait impl below delegates.

mod check_objects_exist;
mod commit_stats;
mod commits_by_message;
mod count_commits;
mod count_diverging_commits;
mod find_commits;
mod get_commit_messages;
mod get_commit_signatures;
mod get_tree_entries;
mod is_ancestor;
mod last_commit_for_path;
mod list_commits;
mod list_commits_by_ref_name;
mod list_last_commits_for_tree;
mod page_token;
mod raw_blame;
mod tree_entry;

use std::sync::Arc;

use gitrpc_git::{Command, Subcommand};
use gitrpc_proto::gitaly::commit_service_server::CommitService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status, Streaming};

use crate::convert;
use crate::deps::Deps;
use crate::error::{Error, Result};
use crate::stream::RpcStream;

/// Blob bytes per TreeEntry message.
const BLOB_CHUNK: usize = 64 * 1024;
/// How deep a flat path may reach (as Gitaly: at most 9 levels below the entry).
const FLAT_PATH_DEPTH: usize = 10;

pub struct CommitServiceImpl {
    deps: Arc<Deps>,
}

impl CommitServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        CommitServiceImpl { deps }
    }
}

/// Input for `git rev-list --stdin`: the revisions checked by rev-list's rule in
/// gitrpc-git (validated revisions plus the pseudo revisions `--not` and `--all`, in order).
fn rev_list_input<R: AsRef<[u8]>>(revisions: &[R]) -> Result<Vec<u8>> {
    let rule = Subcommand::RevList.description().revisions;
    Ok(rule.stdin(revisions)?)
}

/// `--before=@<seconds>` / `--after=...` take git's raw epoch format.
fn date(ts: &prost_types::Timestamp) -> String {
    format!("@{}", ts.seconds)
}

fn utf8<'a>(b: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// The revision FindCommits and CommitsByMessage walk when the request names none: the
/// default branch; in a repository without branches, HEAD's (unborn) target, or HEAD.
async fn default_revision(repo: &crate::deps::Repo<'_>) -> Result<Vec<u8>> {
    if let Some(b) = repo.default_branch().await? {
        return Ok(b);
    }
    Ok(repo
        .head_target()
        .await?
        .map_or_else(|| b"HEAD".to_vec(), String::into_bytes))
}

/// Treat pathspecs literally (no globs, no `:(magic)`), like git's `--literal-pathspecs`.
fn literal_pathspecs(cmd: Command, on: bool) -> Command {
    if on {
        cmd.env("GIT_LITERAL_PATHSPECS", "1")
    } else {
        cmd
    }
}

#[tonic::async_trait]
impl CommitService for CommitServiceImpl {
    async fn find_commit(
        &self,
        req: Request<FindCommitRequest>,
    ) -> Result<Response<FindCommitResponse>, Status> {
        let req = req.into_inner();
        let repo = self.deps.repo(req.repository.as_ref())?;
        // Served from the cat-file pool; an unknown revision is an empty answer.
        let commit = repo.commit(&req.revision).await?;
        Ok(Response::new(FindCommitResponse {
            commit: commit.map(|c| convert::commit(&c, req.trailers)),
        }))
    }

    async fn list_commits(
        &self,
        req: Request<ListCommitsRequest>,
    ) -> Result<Response<RpcStream<ListCommitsResponse>>, Status> {
        Ok(self.list_commits(req.into_inner()).await?)
    }

    async fn list_commits_by_oid(
        &self,
        req: Request<ListCommitsByOidRequest>,
    ) -> Result<Response<RpcStream<ListCommitsByOidResponse>>, Status> {
        Ok(self.list_commits_by_oid(req.into_inner()).await?)
    }

    async fn commit_is_ancestor(
        &self,
        req: Request<CommitIsAncestorRequest>,
    ) -> Result<Response<CommitIsAncestorResponse>, Status> {
        let value = self.commit_is_ancestor(req.into_inner()).await?;
        Ok(Response::new(CommitIsAncestorResponse { value }))
    }

    async fn count_commits(
        &self,
        req: Request<CountCommitsRequest>,
    ) -> Result<Response<CountCommitsResponse>, Status> {
        let count = self.count_commits(req.into_inner()).await?;
        Ok(Response::new(CountCommitsResponse { count }))
    }

    async fn last_commit_for_path(
        &self,
        req: Request<LastCommitForPathRequest>,
    ) -> Result<Response<LastCommitForPathResponse>, Status> {
        let commit = self.last_commit_for_path(req.into_inner()).await?;
        Ok(Response::new(LastCommitForPathResponse { commit }))
    }

    async fn tree_entry(
        &self,
        req: Request<TreeEntryRequest>,
    ) -> Result<Response<RpcStream<TreeEntryResponse>>, Status> {
        Ok(self.tree_entry(req.into_inner()).await?)
    }

    async fn get_tree_entries(
        &self,
        req: Request<GetTreeEntriesRequest>,
    ) -> Result<Response<RpcStream<GetTreeEntriesResponse>>, Status> {
        Ok(self.get_tree_entries(req.into_inner()).await?)
    }

    async fn list_last_commits_for_tree(
        &self,
        req: Request<ListLastCommitsForTreeRequest>,
    ) -> Result<Response<RpcStream<ListLastCommitsForTreeResponse>>, Status> {
        Ok(self.list_last_commits_for_tree(req.into_inner()).await?)
    }

    async fn find_commits(
        &self,
        req: Request<FindCommitsRequest>,
    ) -> Result<Response<RpcStream<FindCommitsResponse>>, Status> {
        Ok(self.find_commits(req.into_inner()).await?)
    }

    async fn count_diverging_commits(
        &self,
        req: Request<CountDivergingCommitsRequest>,
    ) -> Result<Response<CountDivergingCommitsResponse>, Status> {
        Ok(Response::new(
            self.count_diverging_commits(req.into_inner()).await?,
        ))
    }

    async fn raw_blame(
        &self,
        req: Request<RawBlameRequest>,
    ) -> Result<Response<RpcStream<RawBlameResponse>>, Status> {
        Ok(self.raw_blame(req.into_inner()).await?)
    }

    async fn commit_stats(
        &self,
        req: Request<CommitStatsRequest>,
    ) -> Result<Response<CommitStatsResponse>, Status> {
        Ok(Response::new(self.commit_stats(req.into_inner()).await?))
    }

    async fn check_objects_exist(
        &self,
        req: Request<Streaming<CheckObjectsExistRequest>>,
    ) -> Result<Response<RpcStream<CheckObjectsExistResponse>>, Status> {
        Ok(self.check_objects_exist(req.into_inner()).await?)
    }

    async fn commits_by_message(
        &self,
        req: Request<CommitsByMessageRequest>,
    ) -> Result<Response<RpcStream<CommitsByMessageResponse>>, Status> {
        Ok(self.commits_by_message(req.into_inner()).await?)
    }

    async fn list_commits_by_ref_name(
        &self,
        req: Request<ListCommitsByRefNameRequest>,
    ) -> Result<Response<RpcStream<ListCommitsByRefNameResponse>>, Status> {
        Ok(self.list_commits_by_ref_name(req.into_inner()).await?)
    }

    async fn get_commit_signatures(
        &self,
        req: Request<GetCommitSignaturesRequest>,
    ) -> Result<Response<RpcStream<GetCommitSignaturesResponse>>, Status> {
        Ok(self.get_commit_signatures(req.into_inner()).await?)
    }

    async fn get_commit_messages(
        &self,
        req: Request<GetCommitMessagesRequest>,
    ) -> Result<Response<RpcStream<GetCommitMessagesResponse>>, Status> {
        Ok(self.get_commit_messages(req.into_inner()).await?)
    }
}

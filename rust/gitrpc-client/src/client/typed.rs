//! The typed calls of [`Client`]: the common RPCs with Rust arguments and answers; what an
//! answer means (a missing revision is `None`) is decided here, once for every adapter.

use futures::Stream;
use tonic::Status;

use super::call::{flatten, rpc};
use super::{Blob, Branch, Client, TreeEntry};
use crate::gitaly::*;

impl Client {
    pub async fn repository_exists(&self, repo: &Repository) -> Result<bool, Status> {
        let call = rpc(self.repository_service(), |mut c, r| async move {
            c.repository_exists(r).await
        });
        let msg = RepositoryExistsRequest {
            repository: Some(repo.clone()),
        };
        Ok(self
            .unary("/gitaly.RepositoryService/RepositoryExists", msg, call)
            .await?
            .exists)
    }

    /// Create an empty repository (`default_branch` like `main`; empty: git's default).
    pub async fn create_repository(
        &self,
        repo: &Repository,
        default_branch: &str,
    ) -> Result<(), Status> {
        let call = rpc(self.repository_service(), |mut c, r| async move {
            c.create_repository(r).await
        });
        let msg = CreateRepositoryRequest {
            repository: Some(repo.clone()),
            default_branch: default_branch.as_bytes().to_vec(),
            ..Default::default()
        };
        self.unary("/gitaly.RepositoryService/CreateRepository", msg, call)
            .await
            .map(|_| ())
    }

    pub async fn remove_repository(&self, repo: &Repository) -> Result<(), Status> {
        let call = rpc(self.repository_service(), |mut c, r| async move {
            c.remove_repository(r).await
        });
        let msg = RemoveRepositoryRequest {
            repository: Some(repo.clone()),
        };
        self.unary("/gitaly.RepositoryService/RemoveRepository", msg, call)
            .await
            .map(|_| ())
    }

    /// Does `name` (which must start with `refs/`) exist?
    pub async fn ref_exists(&self, repo: &Repository, name: &str) -> Result<bool, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.ref_exists(r).await
        });
        let msg = RefExistsRequest {
            repository: Some(repo.clone()),
            r#ref: name.as_bytes().to_vec(),
        };
        Ok(self
            .unary("/gitaly.RefService/RefExists", msg, call)
            .await?
            .value)
    }

    /// The default branch as a full ref name (`refs/heads/main`); `None` if there is none
    /// (an empty repository).
    pub async fn find_default_branch_name(
        &self,
        repo: &Repository,
    ) -> Result<Option<Vec<u8>>, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.find_default_branch_name(r).await
        });
        let msg = FindDefaultBranchNameRequest {
            repository: Some(repo.clone()),
            ..Default::default()
        };
        let name = self
            .unary("/gitaly.RefService/FindDefaultBranchName", msg, call)
            .await?
            .name;
        Ok(Some(name).filter(|n| !n.is_empty()))
    }

    /// Local branches with their target commits, in ref-name order.
    pub async fn branches(&self, repo: &Repository) -> Result<Vec<Branch>, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.find_local_branches(r).await
        });
        let msg = FindLocalBranchesRequest {
            repository: Some(repo.clone()),
            ..Default::default()
        };
        let pages = self
            .collect("/gitaly.RefService/FindLocalBranches", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.local_branches).collect())
    }

    /// The commit `revision` resolves to; `None` if it resolves to nothing.
    pub async fn find_commit(
        &self,
        repo: &Repository,
        revision: &[u8],
    ) -> Result<Option<GitCommit>, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.find_commit(r).await
        });
        let msg = FindCommitRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
            ..Default::default()
        };
        Ok(self
            .unary("/gitaly.CommitService/FindCommit", msg, call)
            .await?
            .commit)
    }

    pub async fn commit_is_ancestor(
        &self,
        repo: &Repository,
        ancestor: &str,
        child: &str,
    ) -> Result<bool, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.commit_is_ancestor(r).await
        });
        let msg = CommitIsAncestorRequest {
            repository: Some(repo.clone()),
            ancestor_id: ancestor.to_string(),
            child_id: child.to_string(),
        };
        Ok(self
            .unary("/gitaly.CommitService/CommitIsAncestor", msg, call)
            .await?
            .value)
    }

    /// Commits reachable from `revisions` (git rev-list syntax, e.g. `^main`), streamed in
    /// pages as the server produces them. The deadline covers the whole stream.
    pub async fn list_commits(
        &self,
        repo: &Repository,
        revisions: Vec<String>,
    ) -> Result<impl Stream<Item = Result<GitCommit, Status>> + Send + 'static, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.list_commits(r).await
        });
        let msg = ListCommitsRequest {
            repository: Some(repo.clone()),
            revisions,
            ..Default::default()
        };
        let pages = self
            .stream("/gitaly.CommitService/ListCommits", msg, call)
            .await?;
        Ok(flatten(pages, |p| p.commits))
    }

    /// A blob by object id, truncated to `limit` bytes (negative: whole blob); `None` if
    /// there is no such blob.
    pub async fn get_blob(
        &self,
        repo: &Repository,
        oid: &str,
        limit: i64,
    ) -> Result<Option<Blob>, Status> {
        let call = rpc(self.blob_service(), |mut c, r| async move {
            c.get_blob(r).await
        });
        let msg = GetBlobRequest {
            repository: Some(repo.clone()),
            oid: oid.to_string(),
            limit,
        };
        let parts = self
            .collect("/gitaly.BlobService/GetBlob", msg, call)
            .await?;
        let mut blob: Option<Blob> = None;
        for p in parts {
            match &mut blob {
                None if p.oid.is_empty() => return Ok(None),
                None => {
                    blob = Some(Blob {
                        oid: p.oid,
                        size: p.size,
                        data: p.data,
                    })
                }
                Some(b) => b.data.extend_from_slice(&p.data),
            }
        }
        Ok(blob)
    }

    /// The entry at `path` in `revision`'s tree; `None` if the revision or path is missing
    /// (a missing repository is still `NOT_FOUND`).
    pub async fn tree_entry(
        &self,
        repo: &Repository,
        revision: &[u8],
        path: &[u8],
        limit: i64,
    ) -> Result<Option<TreeEntry>, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.tree_entry(r).await
        });
        let msg = TreeEntryRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
            path: path.to_vec(),
            limit,
            ..Default::default()
        };
        let parts = match self
            .collect("/gitaly.CommitService/TreeEntry", msg, call)
            .await
        {
            Ok(p) => p,
            Err(e) if is_missing_tree_entry(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut entry: Option<TreeEntry> = None;
        for p in parts {
            match &mut entry {
                None if p.oid.is_empty() => return Ok(None),
                None => {
                    let kind = match tree_entry_response::ObjectType::try_from(p.r#type) {
                        Ok(tree_entry_response::ObjectType::Tree) => "tree",
                        Ok(tree_entry_response::ObjectType::Commit) => "commit",
                        _ => "blob",
                    };
                    entry = Some(TreeEntry {
                        kind,
                        oid: p.oid,
                        mode: p.mode,
                        size: p.size,
                        data: p.data,
                    })
                }
                Some(e) => e.data.extend_from_slice(&p.data),
            }
        }
        Ok(entry)
    }
}

fn is_missing_tree_entry(e: &Status) -> bool {
    e.code() == tonic::Code::NotFound && e.message().starts_with("tree entry not found")
}

//! Typed calls of RefService reads: branch and tag names containing a commit, FindRefsByOID, tag messages and
//! signatures, FindAllRemoteBranches.

use tonic::Status;

use super::call::rpc;
use super::Client;
use crate::gitaly::get_tag_signatures_response::TagSignature;
use crate::gitaly::*;

impl Client {
    /// Names of the branches (without `refs/heads/`) whose history contains `commit_id` (a
    /// full object id); at most `limit` (0: all).
    pub async fn branch_names_containing(
        &self,
        repo: &Repository,
        commit_id: &str,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.list_branch_names_containing_commit(r).await
        });
        let msg = ListBranchNamesContainingCommitRequest {
            repository: Some(repo.clone()),
            commit_id: commit_id.to_string(),
            limit,
        };
        let pages = self
            .collect(
                "/gitaly.RefService/ListBranchNamesContainingCommit",
                msg,
                call,
            )
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.branch_names).collect())
    }

    /// Names of the tags (without `refs/tags/`) whose history contains `commit_id`.
    pub async fn tag_names_containing(
        &self,
        repo: &Repository,
        commit_id: &str,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.list_tag_names_containing_commit(r).await
        });
        let msg = ListTagNamesContainingCommitRequest {
            repository: Some(repo.clone()),
            commit_id: commit_id.to_string(),
            limit,
        };
        let pages = self
            .collect("/gitaly.RefService/ListTagNamesContainingCommit", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.tag_names).collect())
    }

    /// Full names of the refs pointing at `oid` (a full id or a unique prefix), under
    /// `patterns` (empty: tags and branches), sorted by `sort_field` (empty: by name).
    pub async fn find_refs_by_oid(
        &self,
        repo: &Repository,
        oid: &str,
        patterns: Vec<String>,
        sort_field: &str,
        limit: u32,
    ) -> Result<Vec<String>, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.find_refs_by_oid(r).await
        });
        let msg = FindRefsByOidRequest {
            repository: Some(repo.clone()),
            oid: oid.to_string(),
            ref_patterns: patterns,
            sort_field: sort_field.to_string(),
            limit,
        };
        let r = self
            .unary("/gitaly.RefService/FindRefsByOID", msg, call)
            .await?;
        Ok(r.refs)
    }

    /// `(tag id, whole message)` of each annotated tag of `tag_ids`, reassembled.
    pub async fn get_tag_messages(
        &self,
        repo: &Repository,
        tag_ids: Vec<String>,
    ) -> Result<Vec<(String, Vec<u8>)>, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.get_tag_messages(r).await
        });
        let msg = GetTagMessagesRequest {
            repository: Some(repo.clone()),
            tag_ids,
        };
        let pieces = self
            .collect("/gitaly.RefService/GetTagMessages", msg, call)
            .await?;
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for p in pieces {
            match out.last_mut() {
                Some(last) if p.tag_id.is_empty() => last.1.extend_from_slice(&p.message),
                _ => out.push((p.tag_id, p.message)),
            }
        }
        Ok(out)
    }

    /// Signatures of the tags the revisions name (and of tags reachable through them).
    pub async fn get_tag_signatures(
        &self,
        repo: &Repository,
        revisions: Vec<String>,
    ) -> Result<Vec<TagSignature>, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.get_tag_signatures(r).await
        });
        let msg = GetTagSignaturesRequest {
            repository: Some(repo.clone()),
            tag_revisions: revisions,
        };
        let pages = self
            .collect("/gitaly.RefService/GetTagSignatures", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.signatures).collect())
    }

    /// The branches of remote `remote_name` (full names, `refs/remotes/<name>/...`).
    pub async fn find_all_remote_branches(
        &self,
        repo: &Repository,
        remote_name: &str,
    ) -> Result<Vec<Branch>, Status> {
        let call = rpc(self.ref_service(), |mut c, r| async move {
            c.find_all_remote_branches(r).await
        });
        let msg = FindAllRemoteBranchesRequest {
            repository: Some(repo.clone()),
            remote_name: remote_name.to_string(),
        };
        let pages = self
            .collect("/gitaly.RefService/FindAllRemoteBranches", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.branches).collect())
    }
}

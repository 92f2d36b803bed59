//! ListBranchNamesContainingCommit: `git for-each-ref --contains=<oid> refs/heads`.
//! Gitaly: `internal/gitaly/service/ref/refnames_containing.go`.

use gitrpc_proto::gitaly::{
    ListBranchNamesContainingCommitRequest, ListBranchNamesContainingCommitResponse,
};
use tonic::Response;

use super::RefServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RefServiceImpl {
    pub(super) async fn list_branch_names_containing_commit(
        &self,
        req: ListBranchNamesContainingCommitRequest,
    ) -> Result<Response<RpcStream<ListBranchNamesContainingCommitResponse>>> {
        let names = self
            .names_containing(
                req.repository.as_ref(),
                &req.commit_id,
                req.limit,
                "refs/heads/",
            )
            .await?;
        Ok(super::contains::stream_names(names, |branch_names| {
            ListBranchNamesContainingCommitResponse { branch_names }
        }))
    }
}

//! ListTagNamesContainingCommit: `git for-each-ref --contains=<oid> refs/tags`.
//! Gitaly: `internal/gitaly/service/ref/refnames_containing.go`.

use gitrpc_proto::gitaly::{
    ListTagNamesContainingCommitRequest, ListTagNamesContainingCommitResponse,
};
use tonic::Response;

use super::RefServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RefServiceImpl {
    pub(super) async fn list_tag_names_containing_commit(
        &self,
        req: ListTagNamesContainingCommitRequest,
    ) -> Result<Response<RpcStream<ListTagNamesContainingCommitResponse>>> {
        let names = self
            .names_containing(
                req.repository.as_ref(),
                &req.commit_id,
                req.limit,
                "refs/tags/",
            )
            .await?;
        Ok(super::contains::stream_names(names, |tag_names| {
            ListTagNamesContainingCommitResponse { tag_names }
        }))
    }
}

//! ListBranchNamesContainingCommit: `git for-each-ref --contains` over refs/heads/.
//! Gitaly: `internal/gitaly/service/ref/refnames_containing.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

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
        _req: ListBranchNamesContainingCommitRequest,
    ) -> Result<Response<RpcStream<ListBranchNamesContainingCommitResponse>>> {
        crate::services::not_yet()
    }
}

//! FindAllRemoteBranches: the branches of one remote.
//! Gitaly: `internal/gitaly/service/ref/find_all_remote_branches.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{FindAllRemoteBranchesRequest, FindAllRemoteBranchesResponse};
use tonic::Response;

use super::RefServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RefServiceImpl {
    pub(super) async fn find_all_remote_branches(
        &self,
        _req: FindAllRemoteBranchesRequest,
    ) -> Result<Response<RpcStream<FindAllRemoteBranchesResponse>>> {
        crate::services::not_yet()
    }
}

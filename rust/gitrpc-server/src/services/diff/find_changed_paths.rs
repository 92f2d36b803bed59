//! FindChangedPaths: the paths changed by commits or between trees.
//! Gitaly: `internal/gitaly/service/diff/find_changed_paths.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{FindChangedPathsRequest, FindChangedPathsResponse};
use tonic::Response;

use super::DiffServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl DiffServiceImpl {
    pub(super) async fn find_changed_paths(
        &self,
        _req: FindChangedPathsRequest,
    ) -> Result<Response<RpcStream<FindChangedPathsResponse>>> {
        crate::services::not_yet()
    }
}

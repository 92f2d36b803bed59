//! CommitDiff: the patch of every changed file, cut into pieces and bounded by the limits.
//! Gitaly: `internal/gitaly/service/diff/commit_diff.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{CommitDiffRequest, CommitDiffResponse};
use tonic::Response;

use super::DiffServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl DiffServiceImpl {
    pub(super) async fn commit_diff(
        &self,
        _req: CommitDiffRequest,
    ) -> Result<Response<RpcStream<CommitDiffResponse>>> {
        crate::services::not_yet()
    }
}

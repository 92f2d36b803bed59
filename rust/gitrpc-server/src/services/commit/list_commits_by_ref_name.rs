//! ListCommitsByRefName: the commits references point at.
//! Gitaly: `internal/gitaly/service/commit/list_commits_by_ref_name.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{ListCommitsByRefNameRequest, ListCommitsByRefNameResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl CommitServiceImpl {
    pub(super) async fn list_commits_by_ref_name(
        &self,
        _req: ListCommitsByRefNameRequest,
    ) -> Result<Response<RpcStream<ListCommitsByRefNameResponse>>> {
        crate::services::not_yet()
    }
}

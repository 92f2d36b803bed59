//! CommitsByMessage: `git log --grep`.
//! Gitaly: `internal/gitaly/service/commit/commits_by_message.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{CommitsByMessageRequest, CommitsByMessageResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl CommitServiceImpl {
    pub(super) async fn commits_by_message(
        &self,
        _req: CommitsByMessageRequest,
    ) -> Result<Response<RpcStream<CommitsByMessageResponse>>> {
        crate::services::not_yet()
    }
}

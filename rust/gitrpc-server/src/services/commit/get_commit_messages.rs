//! GetCommitMessages: full commit messages.
//! Gitaly: `internal/gitaly/service/commit/commit_messages.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetCommitMessagesRequest, GetCommitMessagesResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl CommitServiceImpl {
    pub(super) async fn get_commit_messages(
        &self,
        _req: GetCommitMessagesRequest,
    ) -> Result<Response<RpcStream<GetCommitMessagesResponse>>> {
        crate::services::not_yet()
    }
}

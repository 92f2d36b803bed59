//! GetCommitSignatures: signatures of commits and the text they sign.
//! Gitaly: `internal/gitaly/service/commit/get_commit_signatures.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetCommitSignaturesRequest, GetCommitSignaturesResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl CommitServiceImpl {
    pub(super) async fn get_commit_signatures(
        &self,
        _req: GetCommitSignaturesRequest,
    ) -> Result<Response<RpcStream<GetCommitSignaturesResponse>>> {
        crate::services::not_yet()
    }
}

//! RawBlame: `git blame --porcelain`, streamed.
//! Gitaly: `internal/gitaly/service/commit/raw_blame.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{RawBlameRequest, RawBlameResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl CommitServiceImpl {
    pub(super) async fn raw_blame(
        &self,
        _req: RawBlameRequest,
    ) -> Result<Response<RpcStream<RawBlameResponse>>> {
        crate::services::not_yet()
    }
}

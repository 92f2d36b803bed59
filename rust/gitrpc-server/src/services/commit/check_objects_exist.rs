//! CheckObjectsExist: whether revisions sent in a stream exist.
//! Gitaly: `internal/gitaly/service/commit/check_objects_exist.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{CheckObjectsExistRequest, CheckObjectsExistResponse};
use tonic::{Response, Streaming};

use super::CommitServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl CommitServiceImpl {
    pub(super) async fn check_objects_exist(
        &self,
        _req: Streaming<CheckObjectsExistRequest>,
    ) -> Result<Response<RpcStream<CheckObjectsExistResponse>>> {
        crate::services::not_yet()
    }
}

//! GetRawChanges: the blobs changed between two revisions, with sizes.
//! Gitaly: `internal/gitaly/service/repository/raw_changes.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetRawChangesRequest, GetRawChangesResponse};
use tonic::Response;

use super::RepositoryServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RepositoryServiceImpl {
    pub(super) async fn get_raw_changes(
        &self,
        _req: GetRawChangesRequest,
    ) -> Result<Response<RpcStream<GetRawChangesResponse>>> {
        crate::services::not_yet()
    }
}

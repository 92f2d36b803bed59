//! ListLFSPointers: the LFS pointers reachable from revisions.
//! Gitaly: `internal/gitaly/service/blob/lfs_pointers.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{ListLfsPointersRequest, ListLfsPointersResponse};
use tonic::Response;

use super::BlobServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl BlobServiceImpl {
    pub(super) async fn list_lfs_pointers(
        &self,
        _req: ListLfsPointersRequest,
    ) -> Result<Response<RpcStream<ListLfsPointersResponse>>> {
        crate::services::not_yet()
    }
}

//! ListAllLFSPointers: every LFS pointer of the object database.
//! Gitaly: `internal/gitaly/service/blob/lfs_pointers.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{ListAllLfsPointersRequest, ListAllLfsPointersResponse};
use tonic::Response;

use super::BlobServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl BlobServiceImpl {
    pub(super) async fn list_all_lfs_pointers(
        &self,
        _req: ListAllLfsPointersRequest,
    ) -> Result<Response<RpcStream<ListAllLfsPointersResponse>>> {
        crate::services::not_yet()
    }
}

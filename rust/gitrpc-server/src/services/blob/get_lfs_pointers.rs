//! GetLFSPointers: the LFS pointers among given blobs.
//! Gitaly: `internal/gitaly/service/blob/lfs_pointers.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetLfsPointersRequest, GetLfsPointersResponse};
use tonic::Response;

use super::BlobServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl BlobServiceImpl {
    pub(super) async fn get_lfs_pointers(
        &self,
        _req: GetLfsPointersRequest,
    ) -> Result<Response<RpcStream<GetLfsPointersResponse>>> {
        crate::services::not_yet()
    }
}

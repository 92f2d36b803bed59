//! ListAllBlobs: every blob of the object database.
//! Gitaly: `internal/gitaly/service/blob/blobs.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{ListAllBlobsRequest, ListAllBlobsResponse};
use tonic::Response;

use super::BlobServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl BlobServiceImpl {
    pub(super) async fn list_all_blobs(
        &self,
        _req: ListAllBlobsRequest,
    ) -> Result<Response<RpcStream<ListAllBlobsResponse>>> {
        crate::services::not_yet()
    }
}

//! ListBlobs: the blobs reachable from revisions.
//! Gitaly: `internal/gitaly/service/blob/blobs.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{ListBlobsRequest, ListBlobsResponse};
use tonic::Response;

use super::BlobServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl BlobServiceImpl {
    pub(super) async fn list_blobs(
        &self,
        _req: ListBlobsRequest,
    ) -> Result<Response<RpcStream<ListBlobsResponse>>> {
        crate::services::not_yet()
    }
}

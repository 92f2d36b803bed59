//! GetArchive: tar, tar.gz, tar.bz2 or zip of a tree, streamed.
//! Gitaly: `internal/gitaly/service/repository/archive.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetArchiveRequest, GetArchiveResponse};
use tonic::Response;

use super::RepositoryServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RepositoryServiceImpl {
    pub(super) async fn get_archive(
        &self,
        _req: GetArchiveRequest,
    ) -> Result<Response<RpcStream<GetArchiveResponse>>> {
        crate::services::not_yet()
    }
}

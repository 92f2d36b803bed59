//! SearchFilesByContent: `git grep` match blocks, framed as Gitaly frames them.
//! Gitaly: `internal/gitaly/service/repository/search_files.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{SearchFilesByContentRequest, SearchFilesByContentResponse};
use tonic::Response;

use super::RepositoryServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RepositoryServiceImpl {
    pub(super) async fn search_files_by_content(
        &self,
        _req: SearchFilesByContentRequest,
    ) -> Result<Response<RpcStream<SearchFilesByContentResponse>>> {
        crate::services::not_yet()
    }
}

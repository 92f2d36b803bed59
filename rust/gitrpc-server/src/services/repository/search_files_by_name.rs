//! SearchFilesByName: paths under a prefix, filtered by a bounded regex.
//! Gitaly: `internal/gitaly/service/repository/search_files.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{SearchFilesByNameRequest, SearchFilesByNameResponse};
use tonic::Response;

use super::RepositoryServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RepositoryServiceImpl {
    pub(super) async fn search_files_by_name(
        &self,
        _req: SearchFilesByNameRequest,
    ) -> Result<Response<RpcStream<SearchFilesByNameResponse>>> {
        crate::services::not_yet()
    }
}

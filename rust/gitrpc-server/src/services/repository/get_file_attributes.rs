//! GetFileAttributes: `git check-attr --source=<rev>`.
//! Gitaly: `internal/gitaly/service/repository/file_attributes.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetFileAttributesRequest, GetFileAttributesResponse};

use super::RepositoryServiceImpl;
use crate::error::Result;

impl RepositoryServiceImpl {
    pub(super) async fn get_file_attributes(
        &self,
        _req: GetFileAttributesRequest,
    ) -> Result<GetFileAttributesResponse> {
        crate::services::not_yet()
    }
}

//! RepositoryInfo: statistics of references and objects.
//! Gitaly: `internal/gitaly/service/repository/repository_info.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{RepositoryInfoRequest, RepositoryInfoResponse};

use super::RepositoryServiceImpl;
use crate::error::Result;

impl RepositoryServiceImpl {
    pub(super) async fn repository_info(
        &self,
        _req: RepositoryInfoRequest,
    ) -> Result<RepositoryInfoResponse> {
        crate::services::not_yet()
    }
}

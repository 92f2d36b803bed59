//! FindLicense: the license of the default branch.
//! Gitaly: `internal/gitaly/service/repository/license.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{FindLicenseRequest, FindLicenseResponse};

use super::RepositoryServiceImpl;
use crate::error::Result;

impl RepositoryServiceImpl {
    pub(super) async fn find_license(
        &self,
        _req: FindLicenseRequest,
    ) -> Result<FindLicenseResponse> {
        crate::services::not_yet()
    }
}

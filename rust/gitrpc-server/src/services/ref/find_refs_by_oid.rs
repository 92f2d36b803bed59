//! FindRefsByOID: `git for-each-ref --points-at`.
//! Gitaly: `internal/gitaly/service/ref/find_refs_by_oid.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{FindRefsByOidRequest, FindRefsByOidResponse};

use super::RefServiceImpl;
use crate::error::Result;

impl RefServiceImpl {
    pub(super) async fn find_refs_by_oid(
        &self,
        _req: FindRefsByOidRequest,
    ) -> Result<FindRefsByOidResponse> {
        crate::services::not_yet()
    }
}

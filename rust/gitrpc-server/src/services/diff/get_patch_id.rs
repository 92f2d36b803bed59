//! GetPatchID: `git diff | git patch-id` of two revisions.
//! Gitaly: `internal/gitaly/service/diff/patch_id.go`.
//! Step 11, WP-A; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetPatchIdRequest, GetPatchIdResponse};

use super::DiffServiceImpl;
use crate::error::Result;

impl DiffServiceImpl {
    pub(super) async fn get_patch_id(&self, _req: GetPatchIdRequest) -> Result<GetPatchIdResponse> {
        crate::services::not_yet()
    }
}

//! CommitStats: lines added and removed by a commit.
//! Gitaly: `internal/gitaly/service/commit/stats.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{CommitStatsRequest, CommitStatsResponse};

use super::CommitServiceImpl;
use crate::error::Result;

impl CommitServiceImpl {
    pub(super) async fn commit_stats(
        &self,
        _req: CommitStatsRequest,
    ) -> Result<CommitStatsResponse> {
        crate::services::not_yet()
    }
}

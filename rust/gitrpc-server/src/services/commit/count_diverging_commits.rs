//! CountDivergingCommits: `git rev-list --left-right --count`.
//! Gitaly: `internal/gitaly/service/commit/count_diverging_commits.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{CountDivergingCommitsRequest, CountDivergingCommitsResponse};

use super::CommitServiceImpl;
use crate::error::Result;

impl CommitServiceImpl {
    pub(super) async fn count_diverging_commits(
        &self,
        _req: CountDivergingCommitsRequest,
    ) -> Result<CountDivergingCommitsResponse> {
        crate::services::not_yet()
    }
}

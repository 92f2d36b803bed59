//! FindCommits: `git log` by path, author, dates, following renames.
//! Gitaly: `internal/gitaly/service/commit/find_commits.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{FindCommitsRequest, FindCommitsResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl CommitServiceImpl {
    pub(super) async fn find_commits(
        &self,
        _req: FindCommitsRequest,
    ) -> Result<Response<RpcStream<FindCommitsResponse>>> {
        crate::services::not_yet()
    }
}

//! ListLastCommitsForTree: the last commit of each entry of a directory (`gitrpc_git::lastcommits`).
//! Gitaly: `internal/gitaly/service/commit/list_last_commits_for_tree.go`.
//! Step 11, WP-B; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{ListLastCommitsForTreeRequest, ListLastCommitsForTreeResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl CommitServiceImpl {
    pub(super) async fn list_last_commits_for_tree(
        &self,
        _req: ListLastCommitsForTreeRequest,
    ) -> Result<Response<RpcStream<ListLastCommitsForTreeResponse>>> {
        crate::services::not_yet()
    }
}

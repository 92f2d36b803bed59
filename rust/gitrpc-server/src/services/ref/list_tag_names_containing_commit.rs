//! ListTagNamesContainingCommit: `git for-each-ref --contains` over refs/tags/.
//! Gitaly: `internal/gitaly/service/ref/refnames_containing.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{
    ListTagNamesContainingCommitRequest, ListTagNamesContainingCommitResponse,
};
use tonic::Response;

use super::RefServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RefServiceImpl {
    pub(super) async fn list_tag_names_containing_commit(
        &self,
        _req: ListTagNamesContainingCommitRequest,
    ) -> Result<Response<RpcStream<ListTagNamesContainingCommitResponse>>> {
        crate::services::not_yet()
    }
}

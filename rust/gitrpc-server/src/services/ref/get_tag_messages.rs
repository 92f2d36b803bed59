//! GetTagMessages: messages of annotated tags.
//! Gitaly: `internal/gitaly/service/ref/tag_messages.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetTagMessagesRequest, GetTagMessagesResponse};
use tonic::Response;

use super::RefServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RefServiceImpl {
    pub(super) async fn get_tag_messages(
        &self,
        _req: GetTagMessagesRequest,
    ) -> Result<Response<RpcStream<GetTagMessagesResponse>>> {
        crate::services::not_yet()
    }
}

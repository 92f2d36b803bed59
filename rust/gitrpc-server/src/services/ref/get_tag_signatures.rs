//! GetTagSignatures: signatures of annotated tags and the text they sign.
//! Gitaly: `internal/gitaly/service/ref/tag_signatures.go`.
//! Step 11, WP-C; `UNIMPLEMENTED` until then.

use gitrpc_proto::gitaly::{GetTagSignaturesRequest, GetTagSignaturesResponse};
use tonic::Response;

use super::RefServiceImpl;
use crate::error::Result;
use crate::stream::RpcStream;

impl RefServiceImpl {
    pub(super) async fn get_tag_signatures(
        &self,
        _req: GetTagSignaturesRequest,
    ) -> Result<Response<RpcStream<GetTagSignaturesResponse>>> {
        crate::services::not_yet()
    }
}

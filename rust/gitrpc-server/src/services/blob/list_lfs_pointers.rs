//! ListLFSPointers: the Git LFS pointers reachable from revisions.
//! Gitaly: `internal/gitaly/service/blob/lfs_pointers.go`.
//!
//! rev-list keeps blobs under 200 bytes (`--filter=blob:limit=200`: < 200, one byte less
//! than GetLFSPointers and ListAllLFSPointers accept, as in Gitaly).

use gitrpc_proto::gitaly::{ListLfsPointersRequest, ListLfsPointersResponse};
use tonic::Response;

use super::listing::{lfs_pointer, rev_list};
use super::BlobServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::error::Result;
use crate::stream::{spawn_stream, RpcStream};

impl BlobServiceImpl {
    pub(super) async fn list_lfs_pointers(
        &self,
        req: ListLfsPointersRequest,
    ) -> Result<Response<RpcStream<ListLfsPointersResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut source = rev_list(&repo, &req.revisions, &["blob:limit=200"]).await?;
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            let mut batcher = Batcher::new(Limits::GITALY);
            let mut count = 0i32;
            while let Some(b) = source.next().await? {
                if req.limit > 0 && count >= req.limit {
                    break;
                }
                if let Some(p) = lfs_pointer(&mut cat, &b.oid, u64::MAX).await? {
                    count += 1;
                    if let Some(lfs_pointers) = batcher.push(p) {
                        sink.send(ListLfsPointersResponse { lfs_pointers }).await?;
                    }
                }
            }
            if let Some(lfs_pointers) = batcher.finish() {
                sink.send(ListLfsPointersResponse { lfs_pointers }).await?;
            }
            Ok(())
        }))
    }
}

//! ListAllLFSPointers: every Git LFS pointer of the object database, reachable or not.
//! Gitaly: `internal/gitaly/service/blob/lfs_pointers.go`.

use gitrpc_git::lfs::POINTER_MAX_SIZE;
use gitrpc_proto::gitaly::{ListAllLfsPointersRequest, ListAllLfsPointersResponse};
use tonic::Response;

use super::listing::{all_objects, lfs_pointer};
use super::BlobServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::error::Result;
use crate::stream::{spawn_stream, RpcStream};

impl BlobServiceImpl {
    pub(super) async fn list_all_lfs_pointers(
        &self,
        req: ListAllLfsPointersRequest,
    ) -> Result<Response<RpcStream<ListAllLfsPointersResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut source = all_objects(&repo, Some(POINTER_MAX_SIZE))?;
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            let mut batcher = Batcher::new(Limits::GITALY);
            let mut count = 0i32;
            while let Some(b) = source.next().await? {
                if req.limit > 0 && count >= req.limit {
                    break;
                }
                if let Some(p) = lfs_pointer(&mut cat, &b.oid, POINTER_MAX_SIZE).await? {
                    count += 1;
                    if let Some(lfs_pointers) = batcher.push(p) {
                        sink.send(ListAllLfsPointersResponse { lfs_pointers })
                            .await?;
                    }
                }
            }
            if let Some(lfs_pointers) = batcher.finish() {
                sink.send(ListAllLfsPointersResponse { lfs_pointers })
                    .await?;
            }
            Ok(())
        }))
    }
}

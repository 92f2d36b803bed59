//! GetLFSPointers: which of the given blobs are Git LFS pointers.
//! Gitaly: `internal/gitaly/service/blob/lfs_pointers.go`.

use gitrpc_git::lfs::POINTER_MAX_SIZE;
use gitrpc_proto::gitaly::{GetLfsPointersRequest, GetLfsPointersResponse};
use tonic::Response;

use super::listing::lfs_pointer;
use super::BlobServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

impl BlobServiceImpl {
    pub(super) async fn get_lfs_pointers(
        &self,
        req: GetLfsPointersRequest,
    ) -> Result<Response<RpcStream<GetLfsPointersResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.blob_ids.is_empty() {
            return Err(Error::invalid("empty BlobIds"));
        }
        for id in &req.blob_ids {
            gitrpc_git::validate::revision(id.as_bytes())?;
        }
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            let mut batcher = Batcher::new(Limits::GITALY);
            for id in &req.blob_ids {
                if let Some(p) = lfs_pointer(&mut cat, id, POINTER_MAX_SIZE).await? {
                    if let Some(lfs_pointers) = batcher.push(p) {
                        sink.send(GetLfsPointersResponse { lfs_pointers }).await?;
                    }
                }
            }
            if let Some(lfs_pointers) = batcher.finish() {
                sink.send(GetLfsPointersResponse { lfs_pointers }).await?;
            }
            Ok(())
        }))
    }
}

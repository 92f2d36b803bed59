//! ListAllBlobs: every blob of the object database, reachable or not.
//! Gitaly: `internal/gitaly/service/blob/blobs.go`.
//!
//! `git cat-file --batch-check --batch-all-objects` (git 2.47 can't filter by type there:
//! the blobs are picked from its lines), contents through the cat-file pool.

use gitrpc_proto::gitaly::list_all_blobs_response::Blob;
use gitrpc_proto::gitaly::{ListAllBlobsRequest, ListAllBlobsResponse};
use tonic::Response;

use super::listing::{all_objects, pieces};
use super::BlobServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::error::Result;
use crate::stream::{spawn_stream, RpcStream};

impl BlobServiceImpl {
    pub(super) async fn list_all_blobs(
        &self,
        req: ListAllBlobsRequest,
    ) -> Result<Response<RpcStream<ListAllBlobsResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut source = all_objects(&repo, None)?;
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            let mut batcher = Batcher::new(Limits::GITALY);
            let mut full = Vec::new();
            let mut count = 0u32;
            while let Some(b) = source.next().await? {
                if req.limit > 0 && count >= req.limit {
                    break;
                }
                count += 1;
                pieces(&mut cat, &b.oid, req.bytes_limit, |first, data| {
                    let (oid, size) = first.unwrap_or_default();
                    full.extend(batcher.push(Blob { oid, size, data }));
                })
                .await?;
                for blobs in full.drain(..) {
                    sink.send(ListAllBlobsResponse { blobs }).await?;
                }
            }
            if let Some(blobs) = batcher.finish() {
                sink.send(ListAllBlobsResponse { blobs }).await?;
            }
            Ok(())
        }))
    }
}

//! ListBlobs: the blobs reachable from revisions.
//! Gitaly: `internal/gitaly/service/blob/blobs.go`.
//!
//! `git rev-list --objects --filter=object:type=blob` names the blobs; each is read through
//! the cat-file pool in 128 KiB pieces, the pieces sent in Gitaly's 1 MiB chunks.

use gitrpc_proto::gitaly::list_blobs_response::Blob;
use gitrpc_proto::gitaly::{ListBlobsRequest, ListBlobsResponse};
use tonic::Response;

use super::listing::{pieces, rev_list};
use super::BlobServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::error::Result;
use crate::stream::{spawn_stream, RpcStream};

impl BlobServiceImpl {
    pub(super) async fn list_blobs(
        &self,
        req: ListBlobsRequest,
    ) -> Result<Response<RpcStream<ListBlobsResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut source = rev_list(&repo, &req.revisions, &[]).await?;
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
                let mut path = Some(b.path);
                pieces(&mut cat, &b.oid, req.bytes_limit, |first, data| {
                    let mut blob = Blob {
                        data,
                        ..Default::default()
                    };
                    if let Some((oid, size)) = first {
                        blob.oid = oid;
                        blob.size = size;
                        if req.with_paths {
                            blob.path = path.take().unwrap_or_default();
                        }
                    }
                    full.extend(batcher.push(blob));
                })
                .await?;
                for blobs in full.drain(..) {
                    sink.send(ListBlobsResponse { blobs }).await?;
                }
            }
            if let Some(blobs) = batcher.finish() {
                sink.send(ListBlobsResponse { blobs }).await?;
            }
            Ok(())
        }))
    }
}

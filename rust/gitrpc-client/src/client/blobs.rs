//! Typed calls of BlobService listings: ListBlobs (reassembled per blob) and the LFS pointer
//! RPCs.

use futures::Stream;
use tonic::Status;

use super::call::{flatten, rpc};
use super::Client;
use crate::gitaly::list_blobs_response::Blob;
use crate::gitaly::*;

impl Client {
    /// The blobs reachable from `revisions` (rev-list syntax, `--all` and `--not` included),
    /// whole (`bytes_limit` -1), cut (`> 0`) or without data (0); `limit` 0: all. Each blob
    /// has its pieces put together.
    pub async fn list_blobs(
        &self,
        repo: &Repository,
        revisions: &[&str],
        limit: u32,
        bytes_limit: i64,
        with_paths: bool,
    ) -> Result<impl Stream<Item = Result<Blob, Status>> + Send + 'static, Status> {
        let call = rpc(self.blob_service(), |mut c, r| async move {
            c.list_blobs(r).await
        });
        let msg = ListBlobsRequest {
            repository: Some(repo.clone()),
            revisions: revisions.iter().map(|r| r.to_string()).collect(),
            limit,
            bytes_limit,
            with_paths,
        };
        let pages = self
            .stream("/gitaly.BlobService/ListBlobs", msg, call)
            .await?;
        let pieces = flatten(pages, |p| p.blobs);
        Ok(super::commits::regroup(
            Box::pin(pieces),
            |b: &Blob| !b.oid.is_empty(),
            |b| b,
            |b, more| b.data.extend_from_slice(&more.data),
        ))
    }

    /// Which of `blob_ids` are Git LFS pointers (at most 200 bytes).
    pub async fn lfs_pointers(
        &self,
        repo: &Repository,
        blob_ids: &[&str],
    ) -> Result<Vec<LfsPointer>, Status> {
        let call = rpc(self.blob_service(), |mut c, r| async move {
            c.get_lfs_pointers(r).await
        });
        let msg = GetLfsPointersRequest {
            repository: Some(repo.clone()),
            blob_ids: blob_ids.iter().map(|r| r.to_string()).collect(),
        };
        let pages = self
            .collect("/gitaly.BlobService/GetLFSPointers", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.lfs_pointers).collect())
    }

    /// The Git LFS pointers reachable from `revisions` (`limit` ≤ 0: all).
    pub async fn list_lfs_pointers(
        &self,
        repo: &Repository,
        revisions: &[&str],
        limit: i32,
    ) -> Result<Vec<LfsPointer>, Status> {
        let call = rpc(self.blob_service(), |mut c, r| async move {
            c.list_lfs_pointers(r).await
        });
        let msg = ListLfsPointersRequest {
            repository: Some(repo.clone()),
            revisions: revisions.iter().map(|r| r.to_string()).collect(),
            limit,
        };
        let pages = self
            .collect("/gitaly.BlobService/ListLFSPointers", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.lfs_pointers).collect())
    }
}

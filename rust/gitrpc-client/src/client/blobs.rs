//! Typed calls of BlobService listings: ListBlobs (reassembled per blob) and the LFS pointer
//! RPCs.

use futures::{Stream, StreamExt};
use tonic::Status;

use super::{with_deadline, Client};
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
        let c = self.blob_service();
        let msg = ListBlobsRequest {
            repository: Some(repo.clone()),
            revisions: revisions.iter().map(|r| r.to_string()).collect(),
            limit,
            bytes_limit,
            with_paths,
        };
        let deadline = self.deadline();
        let pages = self
            .attempt("/gitaly.BlobService/ListBlobs", deadline, msg, |r| {
                let mut c = c.clone();
                async move { Ok(c.list_blobs(r).await?.into_inner()) }
            })
            .await?;
        let pieces = with_deadline(pages, deadline).flat_map(|page| {
            let items: Vec<Result<Blob, Status>> = match page {
                Ok(p) => p.blobs.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(items)
        });
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
        let c = self.blob_service();
        let msg = GetLfsPointersRequest {
            repository: Some(repo.clone()),
            blob_ids: blob_ids.iter().map(|r| r.to_string()).collect(),
        };
        let pages = self
            .collect("/gitaly.BlobService/GetLFSPointers", msg, |r| {
                let mut c = c.clone();
                async move { c.get_lfs_pointers(r).await }
            })
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
        let c = self.blob_service();
        let msg = ListLfsPointersRequest {
            repository: Some(repo.clone()),
            revisions: revisions.iter().map(|r| r.to_string()).collect(),
            limit,
        };
        let pages = self
            .collect("/gitaly.BlobService/ListLFSPointers", msg, |r| {
                let mut c = c.clone();
                async move { c.list_lfs_pointers(r).await }
            })
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.lfs_pointers).collect())
    }
}

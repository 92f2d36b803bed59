//! BlobService: blob contents and listings, served through the pooled `cat-file` processes
//! (and `rev-list` for listings).
//!
//! One file per RPC (`get.rs`: GetBlob and GetBlobs); the trait impl below only delegates.

mod get;
mod get_lfs_pointers;
mod list_all_blobs;
mod list_all_lfs_pointers;
mod list_blobs;
mod list_lfs_pointers;

use std::sync::Arc;

use gitrpc_proto::gitaly::blob_service_server::BlobService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status};

use crate::deps::Deps;
use crate::stream::RpcStream;

pub struct BlobServiceImpl {
    deps: Arc<Deps>,
}

impl BlobServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        BlobServiceImpl { deps }
    }
}

#[tonic::async_trait]
impl BlobService for BlobServiceImpl {
    async fn get_blob(
        &self,
        req: Request<GetBlobRequest>,
    ) -> Result<Response<RpcStream<GetBlobResponse>>, Status> {
        Ok(self.get_blob(req.into_inner()).await?)
    }

    async fn get_blobs(
        &self,
        req: Request<GetBlobsRequest>,
    ) -> Result<Response<RpcStream<GetBlobsResponse>>, Status> {
        Ok(self.get_blobs(req.into_inner()).await?)
    }

    async fn list_blobs(
        &self,
        req: Request<ListBlobsRequest>,
    ) -> Result<Response<RpcStream<ListBlobsResponse>>, Status> {
        Ok(self.list_blobs(req.into_inner()).await?)
    }

    async fn list_all_blobs(
        &self,
        req: Request<ListAllBlobsRequest>,
    ) -> Result<Response<RpcStream<ListAllBlobsResponse>>, Status> {
        Ok(self.list_all_blobs(req.into_inner()).await?)
    }

    async fn get_lfs_pointers(
        &self,
        req: Request<GetLfsPointersRequest>,
    ) -> Result<Response<RpcStream<GetLfsPointersResponse>>, Status> {
        Ok(self.get_lfs_pointers(req.into_inner()).await?)
    }

    async fn list_lfs_pointers(
        &self,
        req: Request<ListLfsPointersRequest>,
    ) -> Result<Response<RpcStream<ListLfsPointersResponse>>, Status> {
        Ok(self.list_lfs_pointers(req.into_inner()).await?)
    }

    async fn list_all_lfs_pointers(
        &self,
        req: Request<ListAllLfsPointersRequest>,
    ) -> Result<Response<RpcStream<ListAllLfsPointersResponse>>, Status> {
        Ok(self.list_all_lfs_pointers(req.into_inner()).await?)
    }
}

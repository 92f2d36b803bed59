//! DiffService: comparing commits and trees.
//!
//! One file per RPC (`raw.rs` holds the four that share git's raw output: RawDiff, RawPatch,
//! CommitDelta, DiffStats); the trait impl below only delegates.

mod commit_diff;
mod find_changed_paths;
mod get_patch_id;
mod raw;

use std::sync::Arc;

use gitrpc_proto::gitaly::diff_service_server::DiffService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status};

use crate::deps::Deps;
use crate::stream::RpcStream;

pub struct DiffServiceImpl {
    deps: Arc<Deps>,
}

impl DiffServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        DiffServiceImpl { deps }
    }
}

#[tonic::async_trait]
impl DiffService for DiffServiceImpl {
    async fn commit_delta(
        &self,
        req: Request<CommitDeltaRequest>,
    ) -> Result<Response<RpcStream<CommitDeltaResponse>>, Status> {
        Ok(self.commit_delta(req.into_inner()).await?)
    }

    async fn raw_diff(
        &self,
        req: Request<RawDiffRequest>,
    ) -> Result<Response<RpcStream<RawDiffResponse>>, Status> {
        Ok(self.raw_diff(req.into_inner()).await?)
    }

    async fn raw_patch(
        &self,
        req: Request<RawPatchRequest>,
    ) -> Result<Response<RpcStream<RawPatchResponse>>, Status> {
        Ok(self.raw_patch(req.into_inner()).await?)
    }

    async fn diff_stats(
        &self,
        req: Request<DiffStatsRequest>,
    ) -> Result<Response<RpcStream<DiffStatsResponse>>, Status> {
        Ok(self.diff_stats(req.into_inner()).await?)
    }

    async fn commit_diff(
        &self,
        req: Request<CommitDiffRequest>,
    ) -> Result<Response<RpcStream<CommitDiffResponse>>, Status> {
        Ok(self.commit_diff(req.into_inner()).await?)
    }

    async fn find_changed_paths(
        &self,
        req: Request<FindChangedPathsRequest>,
    ) -> Result<Response<RpcStream<FindChangedPathsResponse>>, Status> {
        Ok(self.find_changed_paths(req.into_inner()).await?)
    }

    async fn get_patch_id(
        &self,
        req: Request<GetPatchIdRequest>,
    ) -> Result<Response<GetPatchIdResponse>, Status> {
        Ok(Response::new(self.get_patch_id(req.into_inner()).await?))
    }
}

//! RepositoryService: existence, creation (atomic), removal, size, format, merge bases,
//! WriteRef (`admin.rs`), the reads of whole trees and repositories: archives, file
//! search, raw changes, statistics, attributes, licenses; and housekeeping
//! (`optimize.rs`: OptimizeRepository, PruneUnreachableObjects).
//!
//! One file per RPC; the trait impl below only delegates (the oldest RPCs are answered in
//! place).

mod admin;
mod find_license;
mod get_archive;
mod get_file_attributes;
mod get_raw_changes;
mod optimize;
mod repository_info;
mod search_files_by_content;
mod search_files_by_name;

use std::sync::Arc;

use gitrpc_git::{objects, Subcommand};
use gitrpc_proto::gitaly::repository_service_server::RepositoryService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status};

use crate::deps::Deps;
use crate::error::Error;
use crate::stream::RpcStream;

pub struct RepositoryServiceImpl {
    deps: Arc<Deps>,
}

impl RepositoryServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        RepositoryServiceImpl { deps }
    }
}

#[tonic::async_trait]
impl RepositoryService for RepositoryServiceImpl {
    async fn repository_exists(
        &self,
        req: Request<RepositoryExistsRequest>,
    ) -> Result<Response<RepositoryExistsResponse>, Status> {
        let req = req.into_inner();
        let exists = match self.deps.locator.repo(req.repository.as_ref()) {
            Ok(_) => true,
            Err(Error::NotFound(_)) => false,
            Err(e) => return Err(e.into()),
        };
        Ok(Response::new(RepositoryExistsResponse { exists }))
    }

    async fn create_repository(
        &self,
        req: Request<CreateRepositoryRequest>,
    ) -> Result<Response<CreateRepositoryResponse>, Status> {
        self.create(req.into_inner()).await?;
        Ok(Response::new(CreateRepositoryResponse {}))
    }

    async fn remove_repository(
        &self,
        req: Request<RemoveRepositoryRequest>,
    ) -> Result<Response<RemoveRepositoryResponse>, Status> {
        self.remove(req.into_inner()).await?;
        Ok(Response::new(RemoveRepositoryResponse {}))
    }

    async fn repository_size(
        &self,
        req: Request<RepositorySizeRequest>,
    ) -> Result<Response<RepositorySizeResponse>, Status> {
        let repo = self.deps.repo(req.get_ref().repository.as_ref())?;
        let path = repo.path.clone();
        let bytes = tokio::task::spawn_blocking(move || admin::dir_size(&path))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(format!("repository size: {e}")))?;
        Ok(Response::new(RepositorySizeResponse {
            size: (bytes / 1024) as i64,
        }))
    }

    async fn object_format(
        &self,
        req: Request<ObjectFormatRequest>,
    ) -> Result<Response<ObjectFormatResponse>, Status> {
        let repo = self.deps.repo(req.get_ref().repository.as_ref())?;
        Ok(Response::new(ObjectFormatResponse {
            format: match repo.object_format() {
                objects::ObjectFormat::Sha1 => ObjectFormat::Sha1,
                objects::ObjectFormat::Sha256 => ObjectFormat::Sha256,
            } as i32,
        }))
    }

    async fn has_local_branches(
        &self,
        req: Request<HasLocalBranchesRequest>,
    ) -> Result<Response<HasLocalBranchesResponse>, Status> {
        let repo = self.deps.repo(req.get_ref().repository.as_ref())?;
        let cmd = repo
            .cmd(Subcommand::ForEachRef)
            .flag("--count=1")
            .flag("--format=%(refname)")
            .arg("refs/heads/");
        let out = repo.output(&cmd).await.map_err(Error::from)?;
        Ok(Response::new(HasLocalBranchesResponse {
            value: !out.stdout.is_empty(),
        }))
    }

    async fn find_merge_base(
        &self,
        req: Request<FindMergeBaseRequest>,
    ) -> Result<Response<FindMergeBaseResponse>, Status> {
        let base = self.merge_base(req.into_inner()).await?;
        Ok(Response::new(FindMergeBaseResponse { base }))
    }

    async fn write_ref(
        &self,
        req: Request<WriteRefRequest>,
    ) -> Result<Response<WriteRefResponse>, Status> {
        self.write_ref(req.into_inner()).await?;
        Ok(Response::new(WriteRefResponse {}))
    }

    async fn get_raw_changes(
        &self,
        req: Request<GetRawChangesRequest>,
    ) -> Result<Response<RpcStream<GetRawChangesResponse>>, Status> {
        Ok(self.get_raw_changes(req.into_inner()).await?)
    }

    async fn get_archive(
        &self,
        req: Request<GetArchiveRequest>,
    ) -> Result<Response<RpcStream<GetArchiveResponse>>, Status> {
        Ok(self.get_archive(req.into_inner()).await?)
    }

    async fn search_files_by_content(
        &self,
        req: Request<SearchFilesByContentRequest>,
    ) -> Result<Response<RpcStream<SearchFilesByContentResponse>>, Status> {
        Ok(self.search_files_by_content(req.into_inner()).await?)
    }

    async fn search_files_by_name(
        &self,
        req: Request<SearchFilesByNameRequest>,
    ) -> Result<Response<RpcStream<SearchFilesByNameResponse>>, Status> {
        Ok(self.search_files_by_name(req.into_inner()).await?)
    }

    async fn repository_info(
        &self,
        req: Request<RepositoryInfoRequest>,
    ) -> Result<Response<RepositoryInfoResponse>, Status> {
        Ok(Response::new(self.repository_info(req.into_inner()).await?))
    }

    async fn get_file_attributes(
        &self,
        req: Request<GetFileAttributesRequest>,
    ) -> Result<Response<GetFileAttributesResponse>, Status> {
        Ok(Response::new(
            self.get_file_attributes(req.into_inner()).await?,
        ))
    }

    async fn find_license(
        &self,
        req: Request<FindLicenseRequest>,
    ) -> Result<Response<FindLicenseResponse>, Status> {
        Ok(Response::new(self.find_license(req.into_inner()).await?))
    }

    async fn optimize_repository(
        &self,
        req: Request<OptimizeRepositoryRequest>,
    ) -> Result<Response<OptimizeRepositoryResponse>, Status> {
        self.optimize_repository(req.into_inner()).await?;
        Ok(Response::new(OptimizeRepositoryResponse {}))
    }

    async fn prune_unreachable_objects(
        &self,
        req: Request<PruneUnreachableObjectsRequest>,
    ) -> Result<Response<PruneUnreachableObjectsResponse>, Status> {
        self.prune_unreachable_objects(req.into_inner()).await?;
        Ok(Response::new(PruneUnreachableObjectsResponse {}))
    }
}

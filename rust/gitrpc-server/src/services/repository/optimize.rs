//! OptimizeRepository and PruneUnreachableObjects (Gitaly: `service/repository/optimize.go`,
//! `prune_unreachable_objects.go`): the request is checked here, the work is
//! [`crate::optimize::Optimizer`]'s, shared with the background scheduler, so one
//! optimization at a time runs per repository whoever asked (a second one is
//! `ALREADY_EXISTS`, as Gitaly's housekeeping middleware answers).

use gitrpc_proto::gitaly::optimize_repository_request::Strategy;
use gitrpc_proto::gitaly::{OptimizeRepositoryRequest, PruneUnreachableObjectsRequest, Repository};

use super::RepositoryServiceImpl;
use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::optimize::{Mode, OptimizeError, Origin, Target};

impl From<OptimizeError> for Error {
    fn from(e: OptimizeError) -> Error {
        match e {
            OptimizeError::Busy => Error::AlreadyExists(e.to_string()),
            e => Error::internal(e),
        }
    }
}

fn target(repo: &Repo<'_>, r: &Repository) -> Result<Target> {
    Ok(Target {
        path: repo.path.clone(),
        storage: r.storage_name.clone(),
        relative: crate::locator::normalize(&r.relative_path)?,
    })
}

impl RepositoryServiceImpl {
    pub(super) async fn optimize_repository(&self, req: OptimizeRepositoryRequest) -> Result<()> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mode = match Strategy::try_from(req.strategy) {
            Ok(Strategy::Unspecified | Strategy::Heuristical) => Mode::Heuristical,
            Ok(Strategy::Eager) => Mode::Eager,
            Ok(Strategy::Offloading | Strategy::Rehydration) => {
                return Err(Error::Status(Box::new(tonic::Status::unimplemented(
                    "offloading feature not enabled",
                ))))
            }
            Err(_) => {
                return Err(Error::invalid(format!(
                    "unsupported optimization strategy {}",
                    req.strategy
                )))
            }
        };
        let target = target(&repo, &repo.repository)?;
        let optimizer = self.deps.scheduler.optimizer();
        Ok(optimizer
            .optimize(&repo.git, &target, mode, Origin::Rpc)
            .await?)
    }

    pub(super) async fn prune_unreachable_objects(
        &self,
        req: PruneUnreachableObjectsRequest,
    ) -> Result<()> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let target = target(&repo, &repo.repository)?;
        if target.is_pool() {
            return Err(Error::invalid("pruning objects for object pool"));
        }
        let optimizer = self.deps.scheduler.optimizer();
        Ok(optimizer.prune_unreachable(&repo.git, &target).await?)
    }
}

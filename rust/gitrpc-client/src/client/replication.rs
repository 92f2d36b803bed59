//! Moving repositories between storages: ReplicateRepository (the target's server fetches
//! from the source's, which the routing layer names in `gitaly-servers`), and bundles out
//! of one storage and into another.

use tonic::Status;

use super::call::rpc;
use super::{Client, MAX_MESSAGE};
use crate::gitaly::*;

/// Bundle bytes per request message.
const CHUNK: usize = 1 << 20;

impl Client {
    /// Make `target` (created if missing) equal to `source`, a repository on another
    /// storage: same refs, same HEAD. Not retried (it writes).
    pub async fn replicate_repository(
        &self,
        target: &Repository,
        source: &Repository,
    ) -> Result<(), Status> {
        let call = rpc(self.repository_service(), |mut c, r| async move {
            c.replicate_repository(r).await
        });
        let msg = ReplicateRepositoryRequest {
            repository: Some(target.clone()),
            source: Some(source.clone()),
        };
        self.unary("/gitaly.RepositoryService/ReplicateRepository", msg, call)
            .await
            .map(|_| ())
    }

    /// A bundle of every ref of `repo` (`FAILED_PRECONDITION` for an empty repository).
    pub async fn create_bundle(&self, repo: &Repository) -> Result<Vec<u8>, Status> {
        let call = rpc(self.repository_service(), |mut c, r| async move {
            c.create_bundle(r).await
        });
        let msg = CreateBundleRequest {
            repository: Some(repo.clone()),
        };
        let parts = self
            .collect("/gitaly.RepositoryService/CreateBundle", msg, call)
            .await?;
        Ok(parts.into_iter().flat_map(|p| p.data).collect())
    }

    /// Create `repo` (which must not exist) from `bundle`.
    pub async fn create_repository_from_bundle(
        &self,
        repo: &Repository,
        bundle: &[u8],
    ) -> Result<(), Status> {
        let call = rpc(self.repository_service(), |mut c, r| {
            let (meta, ext, msgs) = r.into_parts();
            let req = tonic::Request::from_parts(meta, ext, futures::stream::iter(msgs));
            async move { c.create_repository_from_bundle(req).await }
        });
        let mut msgs: Vec<CreateRepositoryFromBundleRequest> = bundle
            .chunks(CHUNK.min(MAX_MESSAGE / 2))
            .map(|data| CreateRepositoryFromBundleRequest {
                repository: None,
                data: data.to_vec(),
            })
            .collect();
        match msgs.first_mut() {
            Some(m) => m.repository = Some(repo.clone()),
            None => msgs.push(CreateRepositoryFromBundleRequest {
                repository: Some(repo.clone()),
                data: Vec::new(),
            }),
        }
        self.unary(
            "/gitaly.RepositoryService/CreateRepositoryFromBundle",
            msgs,
            call,
        )
        .await
        .map(|_| ())
    }
}

//! CheckObjectsExist: whether the revisions sent in a stream name objects, answered as the
//! requests come (bidirectional).
//! Gitaly: `internal/gitaly/service/commit/check_objects_exist.go`.

use std::path::Path;

use gitrpc_git::validate::gitaly::{self, RevisionRules};
use gitrpc_git::{Git, Lease, Subcommand};
use gitrpc_proto::gitaly::check_objects_exist_response::RevisionExistence;
use gitrpc_proto::gitaly::{CheckObjectsExistRequest, CheckObjectsExistResponse};
use tonic::{Response, Streaming};

use super::CommitServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

const SCOPED: RevisionRules = RevisionRules {
    path_scoped: true,
    ..RevisionRules::PLAIN
};

/// Does `name` (a checked, possibly path-scoped revision) name an object? Through the pool;
/// a name its line protocol can't carry (a newline or non-UTF-8 byte in the path) by a
/// `git cat-file -e` of its own.
async fn exists(cat: &mut Lease, git: &Git, repo: &Path, name: &[u8]) -> Result<bool> {
    if let Some(line) = std::str::from_utf8(name).ok().filter(|n| !n.contains('\n')) {
        return Ok(cat.info(line).await?.is_some());
    }
    let cmd = gitrpc_git::Command::in_repo(repo, Subcommand::CatFile)
        .flag("-e")
        .rev_scoped(name);
    let (status, _) = git.spawn(&cmd)?.wait_status().await?;
    Ok(status.success())
}

impl CommitServiceImpl {
    pub(super) async fn check_objects_exist(
        &self,
        mut requests: Streaming<CheckObjectsExistRequest>,
    ) -> Result<Response<RpcStream<CheckObjectsExistResponse>>> {
        let first = match requests.message().await {
            Ok(Some(r)) => r,
            // As Gitaly (and Praefect): no request at all is io.EOF.
            Ok(None) => return Err(Error::internal("EOF")),
            Err(e) => {
                return Err(Error::internal(format!(
                    "receiving initial request: {}",
                    e.message()
                )))
            }
        };
        let repo = self.deps.repo(first.repository.as_ref())?;
        let mut cat = repo.catfile()?;
        let (git, path) = (repo.git.clone(), repo.path.clone());
        Ok(spawn_stream(move |sink| async move {
            let mut batcher = Batcher::new(Limits::GITALY);
            let mut next = Some(first);
            while let Some(req) = next {
                for rev in &req.revisions {
                    gitaly::revision(rev, SCOPED)
                        .map_err(|e| Error::invalid(format!("invalid revision: {e}")))?;
                }
                for name in req.revisions {
                    let exists = exists(&mut cat, &git, &path, &name).await?;
                    if let Some(revisions) = batcher.push(RevisionExistence { name, exists }) {
                        sink.send(CheckObjectsExistResponse { revisions }).await?;
                    }
                }
                next = requests
                    .message()
                    .await
                    .map_err(|e| Error::internal(format!("receiving request: {}", e.message())))?;
            }
            if let Some(revisions) = batcher.finish() {
                sink.send(CheckObjectsExistResponse { revisions }).await?;
            }
            Ok(())
        }))
    }
}

//! ListCommitsByRefName: the commit each named reference (or revision) points at; names
//! that resolve to no commit are left out.
//! Gitaly: `internal/gitaly/service/commit/list_commits_by_ref_name.go`.

use gitrpc_proto::gitaly::list_commits_by_ref_name_response::CommitForRef;
use gitrpc_proto::gitaly::{ListCommitsByRefNameRequest, ListCommitsByRefNameResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::convert;
use crate::error::Result;
use crate::stream::{spawn_stream, RpcStream};

impl CommitServiceImpl {
    pub(super) async fn list_commits_by_ref_name(
        &self,
        req: ListCommitsByRefNameRequest,
    ) -> Result<Response<RpcStream<ListCommitsByRefNameResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            let mut batcher = Batcher::new(Limits::GITALY);
            for ref_name in req.ref_names {
                // A name cat-file's line can't carry names no commit.
                let Some(name) = std::str::from_utf8(&ref_name)
                    .ok()
                    .filter(|n| !n.contains(['\n', '\0']))
                else {
                    continue;
                };
                let Some(commit) = cat.read_commit(&format!("{name}^{{commit}}")).await? else {
                    continue;
                };
                let item = CommitForRef {
                    commit: Some(convert::commit(&commit, false)),
                    ref_name,
                };
                if let Some(commit_refs) = batcher.push(item) {
                    sink.send(ListCommitsByRefNameResponse { commit_refs })
                        .await?;
                }
            }
            if let Some(commit_refs) = batcher.finish() {
                sink.send(ListCommitsByRefNameResponse { commit_refs })
                    .await?;
            }
            Ok(())
        }))
    }
}

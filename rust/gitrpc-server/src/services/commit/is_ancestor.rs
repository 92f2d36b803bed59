//! CommitIsAncestor: `git merge-base --is-ancestor`.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::*;

use super::CommitServiceImpl;
use crate::error::{Error, Result};

impl CommitServiceImpl {
    pub(super) async fn commit_is_ancestor(&self, req: CommitIsAncestorRequest) -> Result<bool> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.ancestor_id.is_empty() {
            return Err(Error::invalid("empty ancestor sha"));
        }
        if req.child_id.is_empty() {
            return Err(Error::invalid("empty child sha"));
        }
        let cmd = repo
            .cmd(Subcommand::MergeBase)
            .flag("--is-ancestor")
            .rev(&req.ancestor_id)
            .rev(&req.child_id)
            .no_stdout();
        let (status, _) = repo.spawn(&cmd)?.wait_status().await?;
        // Exit 1 is "not an ancestor"; like Gitaly, any failure (a missing object) is false.
        Ok(status.success())
    }
}

//! FindDefaultBranchName and the branch listings' `Branch` messages.

use gitrpc_git::Lease;
use gitrpc_proto::gitaly::*;

use super::{RefLine, RefServiceImpl};
use crate::convert;
use crate::error::Result;

/// Branches as `Branch` messages (target commit read through one cat-file).
pub(super) async fn branches(cat: &mut Lease, refs: Vec<RefLine>) -> Result<Vec<Branch>> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let target = cat.read_commit(&r.oid).await?;
        out.push(Branch {
            name: r.name,
            target_commit: target.map(|c| convert::commit(&c, false)),
        });
    }
    Ok(out)
}

impl RefServiceImpl {
    pub(super) async fn default_branch(
        &self,
        req: &FindDefaultBranchNameRequest,
    ) -> Result<Vec<u8>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.head_only {
            return Ok(repo.head_target().await?.unwrap_or_default().into_bytes());
        }
        Ok(repo.default_branch().await?.unwrap_or_default())
    }
}

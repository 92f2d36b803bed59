//! FindDefaultBranchName and the branch listings' `Branch` messages.

use gitrpc_git::{Lease, Subcommand};
use gitrpc_proto::gitaly::*;

use super::{for_each_ref, RefLine, RefServiceImpl};
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
        let head = match repo.refs() {
            Some(store) => store.head_target()?,
            None => {
                let mut p = repo.spawn(
                    &repo
                        .cmd(Subcommand::SymbolicRef)
                        .flag("--quiet")
                        .arg("HEAD"),
                )?;
                let stdout = p.read_stdout_to_end().await?;
                let (status, _) = p.wait_status().await?;
                status
                    .success()
                    .then(|| String::from_utf8_lossy(&stdout).trim().to_string())
            }
        };
        if req.head_only {
            return Ok(head.unwrap_or_default().into_bytes());
        }
        // Fast path without listing: HEAD names an existing branch.
        if let Some(h) = &head {
            if h.starts_with("refs/heads/") && repo.ref_exists(h).await? {
                return Ok(h.clone().into_bytes());
            }
        }
        let branches = for_each_ref(&repo, &[b"refs/heads/"], &[]).await?;
        let names: Vec<&[u8]> = branches.iter().map(|b| b.name.as_slice()).collect();
        let pick = match names.len() {
            0 => Vec::new(),
            1 => names[0].to_vec(),
            _ => [&b"refs/heads/main"[..], b"refs/heads/master"]
                .into_iter()
                .find(|n| names.contains(n))
                .unwrap_or(names[0])
                .to_vec(),
        };
        Ok(pick)
    }
}

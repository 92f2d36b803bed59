//! CommitStats: lines added and removed by a commit against its first parent (or the empty
//! tree), from `git diff --numstat -z`.
//! Gitaly: `internal/gitaly/service/commit/stats.go`.

use gitrpc_git::commitlog::NumstatTotals;
use gitrpc_git::validate::gitaly::{self, RevisionRules};
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::{CommitStatsRequest, CommitStatsResponse};
use tokio::io::AsyncReadExt;

use super::CommitServiceImpl;
use crate::error::{Error, Result};

impl CommitServiceImpl {
    pub(super) async fn commit_stats(
        &self,
        req: CommitStatsRequest,
    ) -> Result<CommitStatsResponse> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        gitaly::revision(&req.revision, RevisionRules::PLAIN)?;
        let commit = repo
            .commit(&req.revision)
            .await?
            .ok_or_else(|| Error::internal("object not found"))?;
        let base = commit
            .parents
            .first()
            .map_or_else(|| repo.empty_tree_oid().to_string(), Clone::clone);
        let cmd = repo
            .cmd(Subcommand::Diff)
            .flag("--numstat")
            .flag("-z")
            .flag("--no-ext-diff")
            .rev(&base)
            .rev(&commit.id)
            .no_paths();
        let mut p = repo.spawn(&cmd)?;
        let mut stdout = p
            .take_stdout()
            .ok_or_else(|| Error::internal("diff has no stdout"))?;
        // Field by field: a commit touching many files is counted, not collected.
        let mut totals = NumstatTotals::default();
        let mut field = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdout.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            for part in buf[..n].split_inclusive(|&b| b == 0) {
                match part.strip_suffix(&[0]) {
                    Some(end) => {
                        field.extend_from_slice(end);
                        totals.field(&field)?;
                        field.clear();
                    }
                    None => field.extend_from_slice(part),
                }
            }
        }
        totals.field(&field)?;
        drop(stdout);
        p.wait().await?;
        Ok(CommitStatsResponse {
            oid: commit.id,
            additions: totals.additions,
            deletions: totals.deletions,
            files: totals.files,
        })
    }
}

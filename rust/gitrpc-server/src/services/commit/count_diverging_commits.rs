//! CountDivergingCommits: `git rev-list --left-right --count <from>...<to>`.
//! Gitaly: `internal/gitaly/service/commit/count_diverging_commits.go`.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::{CountDivergingCommitsRequest, CountDivergingCommitsResponse};

use super::CommitServiceImpl;
use crate::error::{Error, Result};

/// `<left>\t<right>\n`.
fn counts(out: &[u8]) -> Option<(i32, i32)> {
    let text = std::str::from_utf8(out).ok()?;
    let mut f = text.split_whitespace();
    let (l, r) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
    f.next().is_none().then_some((l, r))
}

impl CommitServiceImpl {
    pub(super) async fn count_diverging_commits(
        &self,
        req: CountDivergingCommitsRequest,
    ) -> Result<CountDivergingCommitsResponse> {
        // As Gitaly: checked before the repository.
        if req.from.is_empty() || req.to.is_empty() {
            return Err(Error::invalid("from and to are both required"));
        }
        let repo = self.deps.repo(req.repository.as_ref())?;
        // One argument, checked as a revision as a whole (neither side can pass for an
        // option: the range can't start with '-', and it follows --end-of-options).
        let mut range = req.from.clone();
        range.extend_from_slice(b"...");
        range.extend_from_slice(&req.to);
        let mut cmd = repo
            .cmd(Subcommand::RevList)
            .flag("--count")
            .flag("--left-right");
        // As Gitaly: --max-count caps the walk, so capped counts aren't the divergence.
        if req.max_count != 0 {
            cmd = cmd.flag_value("--max-count", req.max_count);
        }
        let mut p = repo.spawn(&cmd.rev(&range))?;
        let out = p.read_stdout_to_end().await?;
        let (status, stderr) = p.wait_status().await?;
        if !status.success() {
            tracing::debug!(%stderr, "rev-list failed");
            // Gitaly's words, typo included.
            return Err(Error::internal(format!(
                "gi rev-list error: exit status {}",
                status.code().unwrap_or(-1)
            )));
        }
        let (left_count, right_count) = counts(&out).ok_or_else(|| {
            Error::internal(format!(
                "invalid output from git rev-list --left-right: {}",
                String::from_utf8_lossy(&out)
            ))
        })?;
        Ok(CountDivergingCommitsResponse {
            left_count,
            right_count,
        })
    }
}

//! CountCommits: `git rev-list --count`.

use gitrpc_git::{validate, Subcommand};
use gitrpc_proto::gitaly::*;

use super::{date, literal_pathspecs, rev_list_input, CommitServiceImpl};
use crate::error::{Error, Result};

impl CommitServiceImpl {
    pub(super) async fn count_commits(&self, req: CountCommitsRequest) -> Result<i32> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        #[allow(deprecated)]
        let (revision, all) = (&req.revision, req.all);
        if !revision.is_empty() {
            validate::revision(revision)?;
        }
        let input = if !req.revisions.is_empty() {
            rev_list_input(&req.revisions)?
        } else if all {
            rev_list_input(&[b"--all"])?
        } else if !revision.is_empty() {
            rev_list_input(std::slice::from_ref(revision))?
        } else {
            return Err(Error::invalid("empty Revision and false All"));
        };
        let mut cmd = repo
            .cmd(Subcommand::RevList)
            .flag("--count")
            .flag("--stdin");
        if let Some(t) = &req.before {
            cmd = cmd.flag_value("--before", date(t));
        }
        if let Some(t) = &req.after {
            cmd = cmd.flag_value("--after", date(t));
        }
        if req.max_count != 0 {
            cmd = cmd.flag_value("--max-count", req.max_count);
        }
        if req.first_parent {
            cmd = cmd.flag("--first-parent");
        }
        if !req.path.is_empty() {
            cmd = cmd.path(&req.path);
        }
        let literal = req
            .global_options
            .as_ref()
            .is_some_and(|o| o.literal_pathspecs);
        let mut p = repo.spawn(&literal_pathspecs(cmd, literal).stdin())?;
        p.write_stdin_and_close(&input).await?;
        let out = p.read_stdout_to_end().await?;
        let (status, stderr) = p.wait_status().await?;
        if !status.success() {
            // As Gitaly: a walk git refuses (say, an unknown revision) counts nothing.
            tracing::debug!(%stderr, "ignoring rev-list failure");
            return Ok(0);
        }
        let count: i64 = std::str::from_utf8(&out)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                Error::internal(format!("parse count: {:?}", String::from_utf8_lossy(&out)))
            })?;
        Ok(count.min(i64::from(i32::MAX)) as i32)
    }
}

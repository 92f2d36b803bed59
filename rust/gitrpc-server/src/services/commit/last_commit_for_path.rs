//! LastCommitForPath: `git log -1 <rev> -- <path>`.

use gitrpc_git::{validate, ReadError, Subcommand};
use gitrpc_proto::gitaly::*;

use super::{literal_pathspecs, CommitServiceImpl};
use crate::convert;
use crate::error::{Error, Result};

impl CommitServiceImpl {
    pub(super) async fn last_commit_for_path(
        &self,
        req: LastCommitForPathRequest,
    ) -> Result<Option<GitCommit>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        validate::revision(&req.revision)?;
        let path: &[u8] = if req.path.is_empty() || req.path == b"/" {
            b"."
        } else {
            &req.path
        };
        let literal = req.literal_pathspec
            || req
                .global_options
                .as_ref()
                .is_some_and(|o| o.literal_pathspecs);
        let cmd = repo
            .cmd(Subcommand::Log)
            .flag("--format=%H")
            .flag("--max-count=1")
            .rev(&req.revision)
            .path(path);
        let mut p = repo.spawn(&literal_pathspecs(cmd, literal))?;
        let out = p.read_stdout_to_end().await?;
        match p.wait().await {
            Ok(()) => {}
            Err(gitrpc_git::Error::Read {
                error: ReadError::PathOutsideRepository { .. },
                ..
            }) => {
                return Err(Error::invalid(format!(
                    "path escapes the repository: {:?}",
                    String::from_utf8_lossy(path)
                )))
            }
            Err(e) if e.is_failure() => {
                // As Gitaly: an unknown revision or an unusable pathspec finds no commit.
                tracing::debug!(error = %e, "git log found nothing");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let oid = String::from_utf8_lossy(&out).trim().to_string();
        if oid.is_empty() {
            return Ok(None);
        }
        Ok(repo
            .commit(oid.as_bytes())
            .await?
            .map(|c| convert::commit(&c, false)))
    }
}

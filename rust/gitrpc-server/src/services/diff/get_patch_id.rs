//! GetPatchID: `git diff | git patch-id` of two revisions.
//! Gitaly: `internal/gitaly/service/diff/patch_id.go`.
//!
//! `git diff --full-index [-U0]` of the two (possibly path-scoped) revisions, its output fed
//! whole to `git patch-id --verbatim` (a diff of two revisions is what a forge shows, so it
//! is bounded by what the repository holds; patch-id reads it as it comes).

use gitrpc_git::diff::exit_error;
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::{GetPatchIdRequest, GetPatchIdResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::DiffServiceImpl;
use crate::error::{Error, Result};

impl DiffServiceImpl {
    pub(super) async fn get_patch_id(&self, req: GetPatchIdRequest) -> Result<GetPatchIdResponse> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.old_revision.is_empty() {
            return Err(Error::invalid("empty OldRevision"));
        }
        if req.new_revision.is_empty() {
            return Err(Error::invalid("empty NewRevision"));
        }
        let mut diff = repo
            .cmd(Subcommand::Diff)
            .flag("--full-index")
            .flag("--no-ext-diff")
            .flag("--no-color");
        if req.context_free {
            diff = diff.flag("-U0");
        }
        let diff = diff
            .rev_scoped(&req.old_revision)
            .rev_scoped(&req.new_revision);
        let patch_id = repo.cmd(Subcommand::PatchId).flag("--verbatim").stdin();
        // Both checked before either starts.
        diff.args(&[])?;
        patch_id.args(&[])?;
        let mut d = repo.spawn(&diff)?;
        let mut p = repo.spawn(&patch_id)?;
        let mut from = d
            .take_stdout()
            .ok_or_else(|| Error::internal("git diff has no stdout"))?;
        let mut to = p
            .take_stdin()
            .ok_or_else(|| Error::internal("git patch-id has no stdin"))?;
        let mut out = p
            .take_stdout()
            .ok_or_else(|| Error::internal("git patch-id has no stdout"))?;
        let copy = async move {
            let r = tokio::io::copy(&mut from, &mut to).await;
            let _ = to.shutdown().await;
            drop(to);
            r
        };
        let read = async move {
            let mut v = Vec::new();
            let r = out.read_to_end(&mut v).await;
            r.map(|_| v)
        };
        let (copied, output) = tokio::join!(copy, read);
        let output = output.map_err(|e| Error::internal(format!("reading git-patch-id: {e}")))?;
        let (p_status, _) = p.wait_status().await?;
        let (d_status, _) = d.wait_status().await?;
        if !d_status.success() {
            return Err(Error::internal(format!(
                "waiting for git-diff: {}",
                exit_error(&d_status)
            )));
        }
        copied.map_err(|e| Error::internal(format!("feeding git-patch-id: {e}")))?;
        if !p_status.success() {
            return Err(Error::internal(format!(
                "waiting for git-patch-id: {}",
                exit_error(&p_status)
            )));
        }
        if output.is_empty() {
            return Err(Error::FailedPrecondition(
                "no difference between old and new revision".into(),
            ));
        }
        let text = String::from_utf8_lossy(&output);
        match text.split_once(' ') {
            Some((id, _)) => Ok(GetPatchIdResponse {
                patch_id: id.to_string(),
            }),
            None => Err(Error::FailedPrecondition(
                "unexpected patch ID format".into(),
            )),
        }
    }
}

//! CommitsByMessage: commits whose message matches a pattern (`git log --grep`, case
//! insensitive). git failing (an unknown revision) is no error: nothing is found.
//! Gitaly: `internal/gitaly/service/commit/commits_by_message.go`.

use gitrpc_git::validate::gitaly::{self, RevisionRules};
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::{CommitsByMessageRequest, CommitsByMessageResponse};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Response;

use super::{default_revision, literal_pathspecs, CommitServiceImpl};
use crate::batch::{Batcher, Limits};
use crate::convert;
use crate::error::{Error, Result};
use crate::services::reads::{check_pattern, with_regex_timeout};
use crate::stream::{spawn_stream, RpcStream};

impl CommitServiceImpl {
    pub(super) async fn commits_by_message(
        &self,
        req: CommitsByMessageRequest,
    ) -> Result<Response<RpcStream<CommitsByMessageResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let rules = RevisionRules {
            allow_empty: true,
            ..RevisionRules::PLAIN
        };
        gitaly::revision(&req.revision, rules)?;
        if req.query.is_empty() {
            return Err(Error::invalid("empty Query"));
        }
        check_pattern("query", req.query.as_bytes())?;
        let revision = match req.revision.is_empty() {
            true => default_revision(&repo).await?,
            false => req.revision.clone(),
        };
        let mut cmd = repo
            .cmd(Subcommand::Log)
            .flag("--pretty=%H")
            .flag_value_bytes("--grep", &req.query)
            .flag("--regexp-ignore-case");
        if req.offset > 0 {
            cmd = cmd.flag_value("--skip", req.offset);
        }
        if req.limit > 0 {
            cmd = cmd.flag_value("--max-count", req.limit);
        }
        cmd = cmd.rev(&revision).no_paths();
        if !req.path.is_empty() {
            cmd = cmd.path(&req.path);
        }
        let literal = req
            .global_options
            .as_ref()
            .is_some_and(|o| o.literal_pathspecs);
        let mut process = repo.spawn(&literal_pathspecs(cmd, literal))?;
        let mut cat = repo.catfile()?;
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            let work = async move {
                let stdout = process
                    .take_stdout()
                    .ok_or_else(|| Error::internal("log has no stdout"))?;
                let mut lines = BufReader::new(stdout);
                let mut line = Vec::new();
                let mut batcher = Batcher::new(Limits::GITALY);
                loop {
                    line.clear();
                    if lines.read_until(b'\n', &mut line).await? == 0 {
                        break;
                    }
                    let oid = String::from_utf8_lossy(line.trim_ascii()).into_owned();
                    if oid.is_empty() {
                        continue;
                    }
                    let commit = cat.read_commit(&oid).await?.ok_or_else(|| {
                        Error::internal(format!("log printed {oid}, which is not a commit"))
                    })?;
                    if let Some(commits) = batcher.push(convert::commit(&commit, false)) {
                        sink.send(CommitsByMessageResponse { commits }).await?;
                    }
                }
                drop(lines);
                if let Some(commits) = batcher.finish() {
                    sink.send(CommitsByMessageResponse { commits }).await?;
                }
                let (status, stderr) = process.wait_status().await?;
                if !status.success() {
                    // As Gitaly: a revision that doesn't resolve finds nothing.
                    tracing::info!(%stderr, "CommitsByMessage: ignoring git log failure");
                }
                Ok(())
            };
            with_regex_timeout(&deps, "CommitsByMessage", work).await
        }))
    }
}

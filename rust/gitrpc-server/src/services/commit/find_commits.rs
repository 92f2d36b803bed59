//! FindCommits: `git log` with the request's filters, commits read through cat-file.
//! Gitaly: `internal/gitaly/service/commit/find_commits.go`.

use gitrpc_git::commitlog::LogFormat;
use gitrpc_git::validate::gitaly::{self, RevisionRules};
use gitrpc_git::{log_revision_missing, Subcommand};
use gitrpc_proto::gitaly::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::{Code, Response};

use super::{date, default_revision, literal_pathspecs, CommitServiceImpl};
use crate::batch::{Batcher, Limits};
use crate::convert;
use crate::error::{Error, Result};
use crate::services::reads::{check_pattern, with_regex_timeout};
use crate::stream::{spawn_stream, RpcStream};

/// `NOT_FOUND "commits not found"` with an empty `FindCommitsError`, as Gitaly answers a
/// revision git can't resolve (and an empty repository).
fn commits_not_found() -> Error {
    Error::detailed(
        Code::NotFound,
        "commits not found",
        "FindCommitsError",
        &FindCommitsError::default(),
    )
}

impl CommitServiceImpl {
    pub(super) async fn find_commits(
        &self,
        req: FindCommitsRequest,
    ) -> Result<Response<RpcStream<FindCommitsResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let rules = RevisionRules {
            allow_empty: true,
            ..RevisionRules::PLAIN
        };
        gitaly::revision(&req.revision, rules)?;
        check_pattern("author", &req.author)?;
        check_pattern("message_regex", req.message_regex.as_bytes())?;
        let mut revision = req.revision.clone();
        if revision.is_empty() && !req.all {
            revision = default_revision(&repo).await?;
        }
        if req.paths.iter().any(|p| p.is_empty()) {
            return Err(Error::invalid("path is empty string"));
        }
        let format = LogFormat {
            shortstat: req.include_shortstat,
            trailers: req.trailers,
            refs: !req.include_referenced_by.is_empty(),
        };
        // git's --follow and --skip don't combine: the offset is skipped here then.
        let manual_offset = req.follow && req.offset > 0;
        let mut cmd = repo
            .cmd(Subcommand::Log)
            .flag_value("--format", format.format());
        if req.offset > 0 && !manual_offset {
            cmd = cmd.flag_value("--skip", req.offset);
        }
        let max = if manual_offset {
            req.limit.saturating_add(req.offset)
        } else {
            req.limit
        };
        cmd = cmd.flag_value("--max-count", max);
        if req.follow && !req.paths.is_empty() {
            cmd = cmd.flag("--follow");
        }
        if !req.author.is_empty() {
            cmd = cmd.flag_value_bytes("--author", &req.author);
        }
        if req.skip_merges {
            cmd = cmd.flag("--no-merges");
        }
        if let Some(t) = &req.before {
            cmd = cmd.flag_value("--before", date(t));
        }
        if let Some(t) = &req.after {
            cmd = cmd.flag_value("--after", date(t));
        }
        if req.all {
            cmd = cmd.flag("--all").flag("--reverse");
        }
        if req.first_parent {
            cmd = cmd.flag("--first-parent");
        }
        if req.order == find_commits_request::Order::Topo as i32 {
            cmd = cmd.flag("--topo-order");
        }
        if req.include_shortstat {
            cmd = cmd.flag("--shortstat");
        }
        if format.refs {
            cmd = cmd.flag("--decorate=full");
            for p in &req.include_referenced_by {
                cmd = cmd.flag_value_bytes("--decorate-refs", p);
            }
        }
        if !req.message_regex.is_empty() {
            cmd = cmd
                .flag_value_bytes("--grep", &req.message_regex)
                .flag("--regexp-ignore-case");
        }
        if !revision.is_empty() {
            cmd = cmd.rev(&revision);
        }
        cmd = cmd.no_paths();
        for p in &req.paths {
            cmd = cmd.path(p);
        }
        let literal = req
            .global_options
            .as_ref()
            .is_some_and(|o| o.literal_pathspecs);
        let mut process = repo.spawn(&literal_pathspecs(cmd, literal))?;
        let mut cat = repo.catfile()?;
        let regex = !req.author.is_empty() || !req.message_regex.is_empty();
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            let work = async move {
                let stdout = process
                    .take_stdout()
                    .ok_or_else(|| Error::internal("log has no stdout"))?;
                let mut records = BufReader::new(stdout);
                let mut raw = Vec::new();
                let mut skip = if manual_offset { req.offset } else { 0 };
                let mut batcher = Batcher::new(Limits::GITALY);
                loop {
                    raw.clear();
                    if records.read_until(format.separator(), &mut raw).await? == 0 {
                        break;
                    }
                    let rec = raw.strip_suffix(&[format.separator()]).unwrap_or(&raw);
                    let Some(rec) = format.parse(rec)? else {
                        continue;
                    };
                    if skip > 0 {
                        skip -= 1;
                        continue;
                    }
                    let commit = cat.read_commit(&rec.oid).await?.ok_or_else(|| {
                        Error::internal(format!("log printed {}, which is not a commit", rec.oid))
                    })?;
                    let mut c = convert::commit(&commit, false);
                    c.trailers = rec
                        .trailers
                        .into_iter()
                        .map(|(key, value)| CommitTrailer { key, value })
                        .collect();
                    c.referenced_by = rec.refs;
                    c.short_stats = rec.stats.map(|s| CommitStatInfo {
                        additions: s.additions,
                        deletions: s.deletions,
                        changed_files: s.files,
                    });
                    if let Some(commits) = batcher.push(c) {
                        sink.send(FindCommitsResponse { commits }).await?;
                    }
                }
                drop(records);
                // As Gitaly: what was found is sent, then git's failure.
                if let Some(commits) = batcher.finish() {
                    sink.send(FindCommitsResponse { commits }).await?;
                }
                let (status, stderr) = process.wait_status().await?;
                if status.success() {
                    return Ok(());
                }
                if log_revision_missing(&stderr) {
                    return Err(commits_not_found());
                }
                tracing::info!(%stderr, "FindCommits: git log failed");
                Err(Error::internal("listing commits failed"))
            };
            if regex {
                with_regex_timeout(&deps, "FindCommits", work).await
            } else {
                work.await
            }
        }))
    }
}

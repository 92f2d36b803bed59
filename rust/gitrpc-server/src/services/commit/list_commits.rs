//! ListCommits (a rev-list walk, commits read through cat-file) and ListCommitsByOid.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Response;

use super::{date, literal_pathspecs, rev_list_input, utf8, CommitServiceImpl};
use crate::batch::{Batcher, Limits};
use crate::convert;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

impl CommitServiceImpl {
    pub(super) async fn list_commits(
        &self,
        req: ListCommitsRequest,
    ) -> Result<Response<RpcStream<ListCommitsResponse>>> {
        use list_commits_request::Order;
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.revisions.is_empty() {
            return Err(Error::invalid("missing revisions"));
        }
        let input = rev_list_input(&req.revisions)?;
        let mut cmd = repo.cmd(Subcommand::RevList).flag("--stdin");
        match Order::try_from(req.order).map_err(|_| Error::invalid("unknown order"))? {
            Order::None => {}
            Order::Topo => cmd = cmd.flag("--topo-order"),
            Order::Date => cmd = cmd.flag("--date-order"),
        }
        if req.reverse {
            cmd = cmd.flag("--reverse");
        }
        if req.max_parents > 0 {
            cmd = cmd.flag_value("--max-parents", req.max_parents);
        }
        if req.disable_walk {
            cmd = cmd.flag("--no-walk");
        }
        if req.first_parent {
            cmd = cmd.flag("--first-parent");
        }
        if let Some(t) = &req.before {
            cmd = cmd.flag_value("--before", date(t));
        }
        if let Some(t) = &req.after {
            cmd = cmd.flag_value("--after", date(t));
        }
        if !req.author.is_empty() {
            cmd = cmd.flag_value("--author", utf8(&req.author, "author")?);
        }
        if req.ignore_case {
            cmd = cmd.flag("--regexp-ignore-case");
        }
        for p in &req.commit_message_patterns {
            cmd = cmd.flag_value("--grep", utf8(p, "commit message pattern")?);
        }
        if req.skip > 0 {
            cmd = cmd.flag_value("--skip", req.skip);
        }
        for p in &req.paths {
            cmd = cmd.path(p);
        }
        let literal = req
            .global_options
            .as_ref()
            .is_some_and(|o| o.literal_pathspecs);
        let mut process = repo.spawn(&literal_pathspecs(cmd, literal).stdin())?;
        let mut cat = repo.catfile()?;
        let (token, limit) = req
            .pagination_params
            .as_ref()
            .map_or((String::new(), 0), |p| (p.page_token.clone(), p.limit));
        Ok(spawn_stream(move |sink| async move {
            process.write_stdin_and_close(&input).await?;
            let stdout = process
                .take_stdout()
                .ok_or_else(|| Error::internal("rev-list has no stdout"))?;
            let mut lines = BufReader::new(stdout);
            let mut line = Vec::new();
            let mut token_seen = token.is_empty();
            let mut count: i64 = 0;
            let mut batcher = Batcher::new(Limits::LISTING);
            let send = |commits| ListCommitsResponse {
                commits,
                pagination_cursor: None,
            };
            let complete = loop {
                line.clear();
                if lines.read_until(b'\n', &mut line).await? == 0 {
                    break true;
                }
                let oid = std::str::from_utf8(line.trim_ascii_end())
                    .map_err(|_| Error::internal("rev-list printed a non-UTF-8 line"))?;
                // With a page token, start after the commit it names.
                if !token_seen {
                    token_seen = oid == token;
                    continue;
                }
                if limit > 0 && count >= i64::from(limit) {
                    break false;
                }
                let commit = cat.read_commit(oid).await?.ok_or_else(|| {
                    Error::internal(format!("rev-list printed {oid}, which is not a commit"))
                })?;
                count += 1;
                if let Some(batch) = batcher.push(convert::commit(&commit, false)) {
                    sink.send(send(batch)).await?;
                }
            };
            // Stopped early at the page limit: dropping the process kills rev-list.
            if complete {
                process.wait().await?;
            }
            if let Some(rest) = batcher.finish() {
                sink.send(send(rest)).await?;
            }
            Ok(())
        }))
    }

    pub(super) async fn list_commits_by_oid(
        &self,
        req: ListCommitsByOidRequest,
    ) -> Result<Response<RpcStream<ListCommitsByOidResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            let mut batcher = Batcher::new(Limits::LISTING);
            for oid in &req.oid {
                // Names cat-file can't take can't name a commit: skipped like unknown ones.
                if oid.is_empty() || oid.contains(['\n', '\0']) {
                    continue;
                }
                let Some(commit) = cat.read_commit(&format!("{oid}^{{commit}}")).await? else {
                    continue;
                };
                if let Some(commits) = batcher.push(convert::commit(&commit, false)) {
                    sink.send(ListCommitsByOidResponse { commits }).await?;
                }
            }
            if let Some(commits) = batcher.finish() {
                sink.send(ListCommitsByOidResponse { commits }).await?;
            }
            Ok(())
        }))
    }
}

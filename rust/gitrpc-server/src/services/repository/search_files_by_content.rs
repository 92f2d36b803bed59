//! SearchFilesByContent: `git grep` (PCRE, case-insensitive, two lines of context) of a
//! revision, each match block sent in 128 KiB pieces followed by a message with
//! `end_of_match`, as Gitaly frames them, but without holding a block whole. git's exit
//! status is ignored (no match, or a ref that doesn't resolve: nothing found), as Gitaly; the
//! pattern is bounded in length and git's run by `[reads] regex_timeout`.
//! Gitaly: `internal/gitaly/service/repository/search_files.go`.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::{SearchFilesByContentRequest, SearchFilesByContentResponse};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Response;

use super::search_files_by_name::check_query_and_ref;
use super::RepositoryServiceImpl;
use crate::error::{Error, Result};
use crate::services::reads::{check_pattern, with_regex_timeout};
use crate::stream::{spawn_stream, RpcStream, Sink, WRITE_BUFFER};

/// A match block being sent: full 128 KiB pieces go as soon as they are full.
struct Block {
    buf: Vec<u8>,
}

impl Block {
    async fn push(&mut self, sink: &Sink<SearchFilesByContentResponse>, line: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(line);
        while self.buf.len() >= WRITE_BUFFER {
            let rest = self.buf.split_off(WRITE_BUFFER);
            let piece = std::mem::replace(&mut self.buf, rest);
            sink.send(data(piece)).await?;
        }
        Ok(())
    }

    /// The block's last piece, then its end.
    async fn end(&mut self, sink: &Sink<SearchFilesByContentResponse>) -> Result<()> {
        if !self.buf.is_empty() {
            sink.send(data(std::mem::take(&mut self.buf))).await?;
        }
        sink.send(SearchFilesByContentResponse {
            match_data: Vec::new(),
            end_of_match: true,
        })
        .await
    }
}

fn data(match_data: Vec<u8>) -> SearchFilesByContentResponse {
    SearchFilesByContentResponse {
        match_data,
        end_of_match: false,
    }
}

impl RepositoryServiceImpl {
    pub(super) async fn search_files_by_content(
        &self,
        req: SearchFilesByContentRequest,
    ) -> Result<Response<RpcStream<SearchFilesByContentResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        check_query_and_ref(&req.query, &req.r#ref)?;
        check_pattern("query", req.query.as_bytes())?;
        let cmd = repo
            .cmd(Subcommand::Grep)
            .flag("--ignore-case")
            .flag("-I")
            .flag("--line-number")
            .flag("--null")
            .flag("--before-context=2")
            .flag("--after-context=2")
            .flag("--perl-regexp")
            .short_flag_value("-e", req.query.as_bytes())
            .rev(&req.r#ref)
            .no_paths();
        let mut process = repo.spawn(&cmd)?;
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            let work = async move {
                let stdout = process
                    .take_stdout()
                    .ok_or_else(|| Error::internal("grep has no stdout"))?;
                let mut lines = BufReader::new(stdout);
                let mut block = Block { buf: Vec::new() };
                let mut open = false;
                let mut line = Vec::new();
                loop {
                    line.clear();
                    if lines.read_until(b'\n', &mut line).await? == 0 {
                        break;
                    }
                    if line == b"--\n" {
                        block.end(&sink).await?;
                        open = false;
                        continue;
                    }
                    block.push(&sink, &line).await?;
                    open = true;
                }
                if open {
                    block.end(&sink).await?;
                }
                drop(lines);
                let (status, stderr) = process.wait_status().await?;
                if !status.success() {
                    tracing::debug!(%stderr, "SearchFilesByContent: ignoring git grep's status");
                }
                Ok(())
            };
            with_regex_timeout(&deps, "SearchFilesByContent", work).await
        }))
    }
}

//! SearchFilesByName: paths under a prefix (`git ls-tree -r`), filtered by a bounded regex,
//! with offset and limit. As Gitaly, a ref that doesn't resolve finds nothing (one message
//! with no files); unlike Gitaly, more than 1 MiB of paths goes in several messages.
//! Gitaly: `internal/gitaly/service/repository/search_files.go`.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::{SearchFilesByNameRequest, SearchFilesByNameResponse};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Response;

use super::RepositoryServiceImpl;
use crate::error::{Error, Result};
use crate::services::reads::bounded_regex;
use crate::stream::{spawn_stream, RpcStream};

/// Paths per message stay under this (gRPC's default receive limit is 4 MiB).
const MESSAGE_BYTES: usize = 1024 * 1024;

/// The checks SearchFilesByName and SearchFilesByContent share (Gitaly's words).
pub(super) fn check_query_and_ref(query: &str, r#ref: &[u8]) -> Result<()> {
    if query.is_empty() {
        return Err(Error::invalid("no query given"));
    }
    if r#ref.is_empty() {
        return Err(Error::invalid("no ref given"));
    }
    if r#ref.starts_with(b"-") {
        return Err(Error::invalid("invalid ref argument"));
    }
    Ok(())
}

impl RepositoryServiceImpl {
    pub(super) async fn search_files_by_name(
        &self,
        req: SearchFilesByNameRequest,
    ) -> Result<Response<RpcStream<SearchFilesByNameResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        check_query_and_ref(&req.query, &req.r#ref)?;
        let filter = match req.filter.is_empty() {
            true => None,
            false => Some(bounded_regex("filter", &req.filter)?),
        };
        let cmd = repo
            .cmd(Subcommand::LsTree)
            .flag("--full-tree")
            .flag("--name-status")
            .flag("-r")
            .flag("-z")
            .rev(&req.r#ref)
            .path(req.query.as_bytes());
        let mut process = repo.spawn(&cmd)?;
        let (offset, limit) = (req.offset as usize, req.limit as usize);
        Ok(spawn_stream(move |sink| async move {
            let stdout = process
                .take_stdout()
                .ok_or_else(|| Error::internal("ls-tree has no stdout"))?;
            let mut paths = BufReader::new(stdout);
            let (mut index, mut kept, mut bytes) = (0usize, 0usize, 0usize);
            let mut files: Vec<Vec<u8>> = Vec::new();
            let mut sent = false;
            loop {
                if limit > 0 && kept == limit {
                    break; // git is killed with the process below
                }
                let mut path = Vec::new();
                if paths.read_until(0, &mut path).await? == 0 {
                    break;
                }
                if path.last() == Some(&0) {
                    path.pop();
                }
                if filter.as_ref().is_some_and(|f| !f.is_match(&path)) {
                    continue;
                }
                index += 1;
                if index <= offset {
                    continue;
                }
                kept += 1;
                if !files.is_empty() && bytes + path.len() + 4 >= MESSAGE_BYTES {
                    let files = std::mem::take(&mut files);
                    sink.send(SearchFilesByNameResponse { files }).await?;
                    bytes = 0;
                    sent = true;
                }
                bytes += path.len() + 4;
                files.push(path);
            }
            drop(paths);
            drop(process);
            if !files.is_empty() || !sent {
                sink.send(SearchFilesByNameResponse { files }).await?;
            }
            Ok(())
        }))
    }
}

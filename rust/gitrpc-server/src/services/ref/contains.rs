//! What ListBranchNamesContainingCommit and ListTagNamesContainingCommit share: one
//! `git for-each-ref --contains`, names cut into Gitaly's 1 MiB messages.

use gitrpc_git::validate::gitaly;
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::Repository;
use tonic::Response;

use super::RefServiceImpl;
use crate::error::{Error, Result};
use crate::stream::RpcStream;

/// Gitaly's chunker: a message is sent before the name that would bring it to 1 MiB.
const MESSAGE_BYTES: usize = 1024 * 1024;

impl RefServiceImpl {
    /// Short names (without `prefix`) of the refs under `prefix` whose history contains
    /// `commit_id`, a full object id; at most `limit` (0: all).
    pub(super) async fn names_containing(
        &self,
        repository: Option<&Repository>,
        commit_id: &str,
        limit: u32,
        prefix: &'static str,
    ) -> Result<Vec<Vec<u8>>> {
        let repo = self.deps.repo(repository)?;
        gitaly::object_id(commit_id, repo.hash_len())?;
        let mut cmd = repo
            .cmd(Subcommand::ForEachRef)
            .flag("--format=%(refname)")
            .rev_flag("--contains", commit_id);
        if limit != 0 {
            cmd = cmd.flag_value("--count", limit);
        }
        let mut p = repo.spawn(&cmd.arg(prefix.trim_end_matches('/')))?;
        let out = p.read_stdout_to_end().await?;
        let (status, stderr) = p.wait_status().await?;
        if !status.success() {
            // A well-formed id that names no commit: `error: no such commit`, 129.
            tracing::info!(%stderr, "for-each-ref --contains failed");
            return Err(Error::internal(format!(
                "exit status {}",
                status.code().unwrap_or(-1)
            )));
        }
        Ok(out
            .split(|&b| b == b'\n')
            .filter_map(|l| l.strip_prefix(prefix.as_bytes()))
            .map(<[u8]>::to_vec)
            .collect())
    }
}

/// `names` in messages of under 1 MiB each (none for no names).
pub(super) fn stream_names<T: Send + 'static>(
    names: Vec<Vec<u8>>,
    wrap: impl Fn(Vec<Vec<u8>>) -> T,
) -> Response<RpcStream<T>> {
    let mut messages = Vec::new();
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for n in names {
        // As a `BytesValue`: tag, length, bytes.
        let size = n.len() + 2 + prost::length_delimiter_len(n.len());
        if !batch.is_empty() && bytes + size >= MESSAGE_BYTES {
            messages.push(Ok(wrap(std::mem::take(&mut batch))));
            bytes = 0;
        }
        bytes += size;
        batch.push(n);
    }
    if !batch.is_empty() {
        messages.push(Ok(wrap(batch)));
    }
    Response::new(Box::pin(tokio_stream::iter(messages)))
}

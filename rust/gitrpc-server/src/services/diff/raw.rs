//! RawDiff, RawPatch, CommitDelta and DiffStats between two commits.
//!
//! Both sides are resolved through cat-file first (an unknown one is FAILED_PRECONDITION,
//! as Gitaly reports git's failure), then git runs on the resolved object ids. Its stdout is
//! read piecewise and streamed (raw output) or parsed incrementally (deltas, numstat), so no
//! output is held whole in memory; a non-zero exit after the output ends the stream with an
//! error. A cancelled call drops the process, which kills git's process group.

use gitrpc_git::{validate, Process, Subcommand};
use gitrpc_proto::gitaly::{
    CommitDelta, CommitDeltaRequest, CommitDeltaResponse, DiffStats, DiffStatsRequest,
    DiffStatsResponse, RawDiffRequest, RawDiffResponse, RawPatchRequest, RawPatchResponse,
};
use tokio::io::AsyncReadExt;
use tokio::process::ChildStdout;
use tonic::Response;

use super::DiffServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream, Sink};

/// Stats per DiffStats message (Gitaly's batch size).
const STATS_BATCH: Limits = Limits::items(1000);
/// Bytes of deltas per CommitDelta message.
const DELTA_BATCH: Limits = Limits::bytes(16 * 1024);

/// Validate and resolve the two sides of a comparison to object ids.
async fn resolve_sides(repo: &Repo<'_>, left: &str, right: &str) -> Result<(String, String)> {
    if left.is_empty() {
        return Err(Error::invalid("empty LeftCommitId"));
    }
    if right.is_empty() {
        return Err(Error::invalid("empty RightCommitId"));
    }
    validate::revision(left.as_bytes())?;
    validate::revision(right.as_bytes())?;
    let mut cat = repo.catfile()?;
    let mut oids = Vec::with_capacity(2);
    for (rev, side) in [(left, "left"), (right, "right")] {
        match cat.info(rev).await? {
            Some(info) => oids.push(info.oid),
            None => {
                return Err(Error::FailedPrecondition(format!(
                    "{side} commit not found: {rev:?}"
                )))
            }
        }
    }
    let r = oids.pop().unwrap_or_default();
    let l = oids.pop().unwrap_or_default();
    Ok((l, r))
}

/// Take the stdout of a freshly spawned git.
fn stdout_of(p: &mut Process) -> Result<ChildStdout> {
    p.take_stdout()
        .ok_or_else(|| Error::internal("git stdout not captured"))
}

/// Wait for git after its output was consumed; a failure is FAILED_PRECONDITION with git's
/// message (as Gitaly's diff RPCs report it).
async fn finish(p: Process) -> Result<()> {
    match p.wait().await {
        Ok(()) => Ok(()),
        Err(e) if e.is_failure() => Err(Error::FailedPrecondition(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Stream git's stdout unchanged in 128 KiB messages built by `wrap`.
async fn stream_raw<T, W>(sink: Sink<T>, mut p: Process, wrap: W) -> Result<()>
where
    W: Fn(Vec<u8>) -> T,
{
    let mut out = stdout_of(&mut p)?;
    sink.send_reader(&mut out, wrap).await?;
    drop(out);
    finish(p).await
}

/// Reads NUL-terminated fields from git's stdout, holding only the unparsed tail.
struct ZReader {
    out: ChildStdout,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl ZReader {
    fn new(out: ChildStdout) -> Self {
        ZReader {
            out,
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    /// The next field without its NUL; `None` at the end of the output. A trailing field
    /// without NUL is returned as is.
    async fn field(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|&b| b == 0) {
                let f = self.buf[self.pos..self.pos + i].to_vec();
                self.pos += i + 1;
                return Ok(Some(f));
            }
            if self.eof {
                if self.pos < self.buf.len() {
                    let f = self.buf[self.pos..].to_vec();
                    self.pos = self.buf.len();
                    return Ok(Some(f));
                }
                return Ok(None);
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            let mut chunk = [0u8; 64 * 1024];
            let n = self.out.read(&mut chunk).await?;
            if n == 0 {
                self.eof = true;
            } else {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }

    async fn required(&mut self, what: &str) -> Result<Vec<u8>> {
        self.field()
            .await?
            .ok_or_else(|| Error::internal(format!("git diff output ended before {what}")))
    }
}

fn parse_mode(m: &str) -> Result<i32> {
    i32::from_str_radix(m, 8)
        .map_err(|_| Error::internal(format!("bad mode {m:?} in git diff output")))
}

/// One record of `git diff --raw -z`:
/// `:<old mode> <new mode> <old oid> <new oid> <status>\0<path>\0[<new path>\0]`.
async fn next_delta(z: &mut ZReader) -> Result<Option<(CommitDelta, u8)>> {
    let Some(header) = z.field().await? else {
        return Ok(None);
    };
    let header =
        String::from_utf8(header).map_err(|_| Error::internal("bad git diff --raw header"))?;
    let fields: Vec<&str> = header.trim_start_matches(':').split(' ').collect();
    let [old_mode, new_mode, from_id, to_id, status] = fields[..] else {
        return Err(Error::internal(format!(
            "bad git diff --raw header {header:?}"
        )));
    };
    let status = status.bytes().next().unwrap_or(b'M');
    let from_path = z.required("path").await?;
    let to_path = if matches!(status, b'R' | b'C') {
        z.required("new path").await?
    } else {
        from_path.clone()
    };
    Ok(Some((
        CommitDelta {
            from_path,
            to_path,
            from_id: from_id.to_string(),
            to_id: to_id.to_string(),
            old_mode: parse_mode(old_mode)?,
            new_mode: parse_mode(new_mode)?,
        },
        status,
    )))
}

async fn commit_delta(
    sink: Sink<CommitDeltaResponse>,
    mut p: Process,
    zero_oid: String,
) -> Result<()> {
    let mut z = ZReader::new(stdout_of(&mut p)?);
    let mut batcher = Batcher::new(DELTA_BATCH);
    while let Some((delta, status)) = next_delta(&mut z).await? {
        let deltas = if status == b'T' {
            // As Gitaly: a type change is shown as a deletion followed by an addition.
            let deletion = CommitDelta {
                new_mode: 0,
                to_id: zero_oid.clone(),
                ..delta.clone()
            };
            let addition = CommitDelta {
                old_mode: 0,
                from_id: zero_oid.clone(),
                ..delta
            };
            vec![deletion, addition]
        } else {
            vec![delta]
        };
        for d in deltas {
            if let Some(deltas) = batcher.push(d) {
                sink.send(CommitDeltaResponse { deltas }).await?;
            }
        }
    }
    drop(z);
    finish(p).await?;
    if let Some(deltas) = batcher.finish() {
        sink.send(CommitDeltaResponse { deltas }).await?;
    }
    Ok(())
}

fn parse_count(n: &[u8]) -> Result<i32> {
    if n == b"-" {
        // Binary file: Gitaly reports 0 added and 0 removed lines.
        return Ok(0);
    }
    std::str::from_utf8(n)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::internal(format!(
                "bad count {:?} in git diff --numstat",
                String::from_utf8_lossy(n)
            ))
        })
}

/// One record of `git diff --numstat -z`: `<added>\t<removed>\t<path>\0`, or for a rename
/// `<added>\t<removed>\t\0<old path>\0<new path>\0`.
async fn next_stat(z: &mut ZReader) -> Result<Option<DiffStats>> {
    let Some(f) = z.field().await? else {
        return Ok(None);
    };
    let mut parts = f.splitn(3, |&b| b == b'\t');
    let (Some(add), Some(del), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::internal(format!(
            "bad git diff --numstat record {:?}",
            String::from_utf8_lossy(&f)
        )));
    };
    let mut stat = DiffStats {
        additions: parse_count(add)?,
        deletions: parse_count(del)?,
        path: path.to_vec(),
        old_path: Vec::new(),
    };
    if path.is_empty() {
        stat.old_path = z.required("old path").await?;
        stat.path = z.required("new path").await?;
    }
    Ok(Some(stat))
}

async fn diff_stats(sink: Sink<DiffStatsResponse>, mut p: Process) -> Result<()> {
    let mut z = ZReader::new(stdout_of(&mut p)?);
    let mut batcher = Batcher::new(STATS_BATCH);
    while let Some(stat) = next_stat(&mut z).await? {
        if let Some(stats) = batcher.push(stat) {
            sink.send(DiffStatsResponse { stats }).await?;
        }
    }
    drop(z);
    finish(p).await?;
    if let Some(stats) = batcher.finish() {
        sink.send(DiffStatsResponse { stats }).await?;
    }
    Ok(())
}

impl DiffServiceImpl {
    pub(super) async fn commit_delta(
        &self,
        req: CommitDeltaRequest,
    ) -> Result<Response<RpcStream<CommitDeltaResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let (left, right) = resolve_sides(&repo, &req.left_commit_id, &req.right_commit_id).await?;
        let mut cmd = repo
            .cmd(Subcommand::Diff)
            .flag("--raw")
            .flag("-z")
            .flag("--no-abbrev")
            .flag("--full-index")
            .flag("--find-renames")
            .flag("--no-ext-diff")
            .rev(&left)
            .rev(&right)
            .no_paths();
        for path in &req.paths {
            cmd = cmd.path(path);
        }
        let p = repo.spawn(&cmd).map_err(Error::from)?;
        let zero = repo.zero_oid();
        Ok(spawn_stream(move |sink| commit_delta(sink, p, zero)))
    }

    pub(super) async fn raw_diff(
        &self,
        req: RawDiffRequest,
    ) -> Result<Response<RpcStream<RawDiffResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let (left, right) = resolve_sides(&repo, &req.left_commit_id, &req.right_commit_id).await?;
        let cmd = repo
            .cmd(Subcommand::Diff)
            .flag("--full-index")
            .flag("--no-ext-diff")
            .rev(&left)
            .rev(&right)
            .no_paths();
        let p = repo.spawn(&cmd).map_err(Error::from)?;
        Ok(spawn_stream(move |sink| {
            stream_raw(sink, p, |data| RawDiffResponse { data })
        }))
    }

    pub(super) async fn raw_patch(
        &self,
        req: RawPatchRequest,
    ) -> Result<Response<RpcStream<RawPatchResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let (left, right) = resolve_sides(&repo, &req.left_commit_id, &req.right_commit_id).await?;
        // As Gitaly: the signature is "GitLab", not the git version.
        let cmd = repo
            .cmd(Subcommand::FormatPatch)
            .flag("--stdout")
            .flag("--signature=GitLab")
            .flag("--no-ext-diff")
            .rev(format!("{left}..{right}"))
            .no_paths();
        let p = repo.spawn(&cmd).map_err(Error::from)?;
        Ok(spawn_stream(move |sink| {
            stream_raw(sink, p, |data| RawPatchResponse { data })
        }))
    }

    pub(super) async fn diff_stats(
        &self,
        req: DiffStatsRequest,
    ) -> Result<Response<RpcStream<DiffStatsResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let (left, right) = resolve_sides(&repo, &req.left_commit_id, &req.right_commit_id).await?;
        let cmd = repo
            .cmd(Subcommand::Diff)
            .flag("--numstat")
            .flag("-z")
            .flag("--no-ext-diff")
            .rev(&left)
            .rev(&right)
            .no_paths();
        let p = repo.spawn(&cmd).map_err(Error::from)?;
        Ok(spawn_stream(move |sink| diff_stats(sink, p)))
    }
}

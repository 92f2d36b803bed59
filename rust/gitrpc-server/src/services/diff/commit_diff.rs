//! CommitDiff: the patch of every changed file, cut into pieces and bounded by the limits.
//! Gitaly: `internal/gitaly/service/diff/commit_diff.go` (parser: `internal/gitaly/diff`).
//!
//! One `git diff --patch --raw` is read by [`gitrpc_git::diff::Parser`] (Gitaly's limiter,
//! step for step). Memory stays bounded: a patch is stored only while it can still be sent
//! (with `enforce_limits`, never past the file's `max_patch_bytes`), a patch that must be
//! sent whole spills to an unlinked file in the spool directory past 8 MiB, and once the
//! limits end the parse git is stopped instead of read to its end. With a whitespace mode,
//! files `git diff -w` leaves out are sent at the end from a `git diff-tree` manifest
//! ([`super::whitespace`]).

use gitrpc_git::diff::{exit_error, Diff, Limits, Parser, PatchBuf};
use gitrpc_git::{Command, Process, Subcommand};
use gitrpc_proto::gitaly::commit_diff_request::{DiffMode, WhitespaceChanges};
use gitrpc_proto::gitaly::{CommitDiffRequest, CommitDiffResponse};
use tonic::Response;

use super::whitespace::Manifest;
use super::DiffServiceImpl;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream, Sink};

/// Patch bytes per message (Gitaly's `MsgSizeThreshold`).
pub const MSG_SIZE: usize = 5 * 1024;

/// The request's limits, as Gitaly's handler copies them (the parser bounds them).
fn limits(req: &CommitDiffRequest) -> Limits {
    Limits {
        enforce_limits: req.enforce_limits,
        collapse_diffs: req.collapse_diffs,
        collect_all_paths: req.collect_all_paths,
        max_files: req.max_files.into(),
        max_lines: req.max_lines.into(),
        max_bytes: req.max_bytes.into(),
        max_patch_bytes: req.max_patch_bytes.into(),
        max_patch_bytes_for_extension: req
            .max_patch_bytes_for_file_extension
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), i64::from(*v)))
            .collect(),
        safe_max_files: req.safe_max_files.into(),
        safe_max_lines: req.safe_max_lines.into(),
        safe_max_bytes: req.safe_max_bytes.into(),
    }
}

/// The flags the diff and the manifest's diff-tree share (Gitaly's `commonFlags`), then the
/// revisions and paths.
pub(super) fn common(
    cmd: Command,
    req: &CommitDiffRequest,
    hash_len: usize,
    with_paths: bool,
) -> Command {
    let mut cmd = cmd
        .flag("--find-renames=30%")
        .flag_value("--abbrev", hash_len)
        .flag("--full-index");
    if req.diff_mode == DiffMode::Worddiff as i32 {
        cmd = cmd.flag("--word-diff=porcelain");
    }
    cmd = cmd
        .rev(&req.left_commit_id)
        .rev(&req.right_commit_id)
        .no_paths();
    if with_paths {
        for p in &req.paths {
            cmd = cmd.path(p);
        }
    }
    cmd
}

impl DiffServiceImpl {
    pub(super) async fn commit_diff(
        &self,
        req: CommitDiffRequest,
    ) -> Result<Response<RpcStream<CommitDiffResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.left_commit_id.is_empty() {
            return Err(Error::invalid("empty LeftCommitId"));
        }
        if req.right_commit_id.is_empty() {
            return Err(Error::invalid("empty RightCommitId"));
        }
        let hash_len = repo.hash_len();
        let whitespace = WhitespaceChanges::try_from(req.whitespace_changes)
            .unwrap_or(WhitespaceChanges::Unspecified);
        let mut diff = repo
            .cmd(Subcommand::Diff)
            .flag("--patch")
            .flag("--raw")
            .flag("--no-ext-diff")
            .flag("--no-color");
        match whitespace {
            WhitespaceChanges::IgnoreAll => diff = diff.flag("--ignore-all-space"),
            WhitespaceChanges::Ignore => diff = diff.flag("--ignore-space-change"),
            WhitespaceChanges::Unspecified => {}
        }
        let diff = common(diff, &req, hash_len, true);
        // Everything is checked before anything starts.
        diff.args(&[])?;
        let manifest = match whitespace {
            WhitespaceChanges::Unspecified => None,
            _ => Some(Manifest::start(&repo, &req, hash_len)?),
        };
        let process = repo.spawn(&diff)?;
        let spill_dir = Some(repo.deps.spool.dir.clone()).filter(|d| d.is_dir());
        let patch = PatchBuf::new(spill_dir, gitrpc_git::diff::patch::MEMORY);
        let limits = limits(&req);
        Ok(spawn_stream(move |sink| async move {
            let manifest = match manifest {
                Some(m) => Some(m.read().await?),
                None => None,
            };
            run(&sink, process, hash_len, limits, patch, manifest).await
        }))
    }
}

fn parse_failure(e: gitrpc_git::diff::DiffError) -> Error {
    Error::internal(format!("eachDiff: parse failure: {e}"))
}

async fn run(
    sink: &Sink<CommitDiffResponse>,
    mut process: Process,
    hash_len: usize,
    limits: Limits,
    patch: PatchBuf,
    mut manifest: Option<Manifest>,
) -> Result<()> {
    let stdout = process
        .take_stdout()
        .ok_or_else(|| Error::internal("git diff has no stdout"))?;
    let mut parser = Parser::new(stdout, hash_len, limits, patch)
        .await
        .map_err(parse_failure)?;
    while let Some(d) = parser.next().await.map_err(parse_failure)? {
        if let Some(m) = &mut manifest {
            m.remove(&d.to_path, &d.from_id, &d.to_id);
        }
        send(sink, d, parser.patch()).await?;
    }
    if parser.finished() {
        // The limits ended the parse: the rest of git's output is of no use. Stop git (its
        // group is killed) instead of reading up to hundreds of MB.
        drop(parser);
        drop(process);
    } else {
        parser.drain().await.map_err(parse_failure)?;
        drop(parser);
        let (status, _stderr) = process.wait_status().await?;
        if !status.success() {
            return Err(Error::FailedPrecondition(format!(
                "eachDiff: {}",
                exit_error(&status)
            )));
        }
    }
    if let Some(m) = manifest {
        m.send_rest(sink).await?;
    }
    Ok(())
}

/// One file's messages: metadata and the first [`MSG_SIZE`] bytes of its patch, then the rest
/// in pieces of [`MSG_SIZE`]; the last one has `end_of_patch`.
async fn send(sink: &Sink<CommitDiffResponse>, d: Diff, patch: &PatchBuf) -> Result<()> {
    if !patch.is_complete() {
        return Err(Error::internal("eachDiff: a patch to send was not kept"));
    }
    let len = patch.len();
    let mut msg = CommitDiffResponse {
        from_path: d.from_path,
        to_path: d.to_path,
        from_id: d.from_id,
        to_id: d.to_id,
        old_mode: d.old_mode,
        new_mode: d.new_mode,
        binary: d.binary,
        overflow_marker: d.overflow_marker,
        collapsed: d.collapsed,
        too_large: d.too_large,
        lines_added: d.lines_added,
        lines_removed: d.lines_removed,
        ..Default::default()
    };
    let mut offset = 0u64;
    loop {
        let n = (len - offset).min(MSG_SIZE as u64) as usize;
        let mut data = vec![0u8; n];
        let mut filled = 0;
        while filled < n {
            let k = patch.read_at(offset + filled as u64, &mut data[filled..])?;
            if k == 0 {
                return Err(Error::internal("eachDiff: patch shorter than counted"));
            }
            filled += k;
        }
        offset += n as u64;
        msg.raw_patch_data = data;
        msg.end_of_patch = offset == len;
        let last = msg.end_of_patch;
        sink.send(std::mem::take(&mut msg)).await?;
        if last {
            return Ok(());
        }
    }
}

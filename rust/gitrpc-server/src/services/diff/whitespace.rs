//! CommitDiff with a whitespace mode: `git diff -w` leaves files whose changes are only
//! whitespace without a patch section, so, as Gitaly does, a `git diff-tree` without the
//! whitespace flags lists every changed file first (the "manifest"), each file the parser
//! sends is crossed off, and what is left is sent at the end with `git diff --numstat`
//! counts. Gitaly walks a Go map there (random order); we keep diff-tree's order.

use std::collections::HashMap;

use gitrpc_git::diff::{exit_error, ChangedPath, ChangedPaths, NumStats};
use gitrpc_git::{Command, Git, Process, Subcommand};
use gitrpc_proto::gitaly::{CommitDiffRequest, CommitDiffResponse};

use super::commit_diff::common;
use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::stream::Sink;

/// Pathspecs passed to `--numstat` at most (in bytes); more, and it runs on every file (the
/// counts of the files asked for are the same).
const NUMSTAT_PATHS_MAX: usize = 256 * 1024;

type Key = (Vec<u8>, String, String);

/// The manifest's diff-tree, started.
pub struct Started {
    process: Process,
    git: Git,
    numstat: Command,
    left: String,
    right: String,
}

/// Changed files not yet sent, in diff-tree order.
pub struct Manifest {
    entries: Vec<Option<ChangedPath>>,
    index: HashMap<Key, usize>,
    git: Git,
    numstat: Command,
}

impl Manifest {
    /// Start `git diff-tree -r -z` with the diff's revisions, paths and common flags (no
    /// whitespace flags).
    pub fn start(repo: &Repo<'_>, req: &CommitDiffRequest, hash_len: usize) -> Result<Started> {
        let tree = common(
            repo.cmd(Subcommand::DiffTree).flag("-r").flag("-z"),
            req,
            hash_len,
            true,
        );
        Ok(Started {
            process: repo.spawn(&tree)?,
            git: repo.git.clone(),
            numstat: repo
                .cmd(Subcommand::Diff)
                .flag("--numstat")
                .flag("-z")
                .flag("--no-ext-diff"),
            left: req.left_commit_id.clone(),
            right: req.right_commit_id.clone(),
        })
    }

    /// Cross off the file the parser sent.
    pub fn remove(&mut self, path: &[u8], from_id: &str, to_id: &str) {
        let key = (path.to_vec(), from_id.to_string(), to_id.to_string());
        if let Some(i) = self.index.remove(&key) {
            self.entries[i] = None;
        }
    }

    /// Send every file left, with its `--numstat` counts.
    pub async fn send_rest(self, sink: &Sink<CommitDiffResponse>) -> Result<()> {
        let left: Vec<ChangedPath> = self.entries.into_iter().flatten().collect();
        if left.is_empty() {
            return Ok(());
        }
        let stats = numstat(&self.git, &self.numstat, &left).await?;
        for cp in left {
            let (added, removed) = stats.get(&cp.path).copied().unwrap_or_default();
            sink.send(CommitDiffResponse {
                from_path: cp.path.clone(),
                to_path: cp.path,
                from_id: cp.old_blob_id,
                to_id: cp.new_blob_id,
                old_mode: cp.old_mode,
                new_mode: cp.new_mode,
                lines_added: added,
                lines_removed: removed,
                end_of_patch: true,
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }
}

impl Started {
    /// Read diff-tree's output whole (Gitaly does not look at its exit status either: a
    /// failure shows in the diff itself).
    pub async fn read(mut self) -> Result<Manifest> {
        let stdout = self
            .process
            .take_stdout()
            .ok_or_else(|| Error::internal("git diff-tree has no stdout"))?;
        let mut records = ChangedPaths::new(stdout, false);
        let mut m = Manifest {
            entries: Vec::new(),
            index: HashMap::new(),
            git: self.git,
            numstat: self.numstat.rev(&self.left).rev(&self.right).no_paths(),
        };
        while let Some(cp) = records
            .next()
            .await
            .map_err(|e| Error::internal(format!("diff-tree parse: {e}")))?
        {
            let key = (
                cp.path.clone(),
                cp.old_blob_id.clone(),
                cp.new_blob_id.clone(),
            );
            match m.index.get(&key) {
                Some(&i) => m.entries[i] = Some(cp),
                None => {
                    m.index.insert(key, m.entries.len());
                    m.entries.push(Some(cp));
                }
            }
        }
        drop(records);
        let _ = self.process.wait_status().await;
        Ok(m)
    }
}

/// `git diff --numstat -z <left> <right> -- <paths>`: added and removed lines by path.
async fn numstat(
    git: &Git,
    cmd: &Command,
    files: &[ChangedPath],
) -> Result<HashMap<Vec<u8>, (i32, i32)>> {
    let size: usize = files.iter().map(|f| f.path.len() + 1).sum();
    let mut cmd = cmd.clone();
    if size <= NUMSTAT_PATHS_MAX {
        for f in files {
            cmd = cmd.path(&f.path);
        }
    }
    let mut p = git.spawn(&cmd)?;
    let stdout = p
        .take_stdout()
        .ok_or_else(|| Error::internal("git diff has no stdout"))?;
    let mut stats = NumStats::new(stdout);
    let mut out = HashMap::new();
    while let Some(s) = stats
        .next()
        .await
        .map_err(|e| Error::internal(format!("numstat: {e}")))?
    {
        out.insert(s.path, (s.additions, s.deletions));
    }
    drop(stats);
    let (status, _) = p.wait_status().await?;
    if !status.success() {
        return Err(Error::FailedPrecondition(format!(
            "numstat: {}",
            exit_error(&status)
        )));
    }
    Ok(out)
}

//! FindChangedPaths: the paths changed by commits or between trees.
//! Gitaly: `internal/gitaly/service/diff/find_changed_paths.go`.
//!
//! Every revision is resolved first (cat-file; Gitaly's messages), then one
//! `git diff-tree -z --stdin -r --root` reads one line per request and its records are
//! parsed by [`gitrpc_git::diff::ChangedPaths`] and sent in Gitaly's 1 MiB chunks.

use gitrpc_git::diff::{exit_error, ChangeStatus, ChangedPaths};
use gitrpc_git::{ObjectType, Subcommand};
use gitrpc_proto::gitaly::changed_paths::Status;
use gitrpc_proto::gitaly::find_changed_paths_request::request::{CommitRequest, TreeRequest, Type};
use gitrpc_proto::gitaly::find_changed_paths_request::{DiffStatus, MergeCommitDiffMode, Request};
use gitrpc_proto::gitaly::FindChangedPathsResponse;
use gitrpc_proto::gitaly::{ChangedPaths as ChangedPathsMsg, FindChangedPathsRequest};
use tonic::Response;

use super::DiffServiceImpl;
use crate::batch::{Batcher, Limits};
use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

/// `<rev>` resolved to an object id of `kind`, with Gitaly's messages (`what`: "commit",
/// "commit parent", "left tree", "right tree").
async fn resolve(repo: &Repo<'_>, what: &str, rev: &str, kind: ObjectType) -> Result<String> {
    if rev.is_empty() {
        return Err(Error::invalid(format!(
            "resolving {what}: revision cannot be empty"
        )));
    }
    match repo.resolve(rev.as_bytes(), Some(kind)).await? {
        Some(oid) => Ok(oid),
        None => Err(Error::not_found(format!(
            "resolving {what}: revision can not be found: {rev:?}"
        ))),
    }
}

/// The `--diff-filter` letters, in request order without duplicates (default all six).
fn diff_filter(filters: &[i32]) -> Result<String> {
    if filters.is_empty() {
        return Ok("AMDTCR".into());
    }
    let mut out = String::new();
    for f in filters {
        let letter = match DiffStatus::try_from(*f) {
            Ok(DiffStatus::Added) => 'A',
            Ok(DiffStatus::Modified) => 'M',
            Ok(DiffStatus::Deleted) => 'D',
            Ok(DiffStatus::TypeChange) => 'T',
            Ok(DiffStatus::Copied) => 'C',
            Ok(DiffStatus::Renamed) => 'R',
            _ => return Err(Error::invalid("invalid diff filter requested")),
        };
        if !out.contains(letter) {
            out.push(letter);
        }
    }
    Ok(out)
}

fn wire_status(s: ChangeStatus) -> Status {
    match s {
        ChangeStatus::Added => Status::Added,
        ChangeStatus::Modified => Status::Modified,
        ChangeStatus::Deleted => Status::Deleted,
        ChangeStatus::TypeChange => Status::TypeChange,
        ChangeStatus::Copied => Status::Copied,
        ChangeStatus::Renamed => Status::Renamed,
    }
}

impl DiffServiceImpl {
    #[allow(deprecated)] // `commits` is still honoured, as Gitaly does
    pub(super) async fn find_changed_paths(
        &self,
        req: FindChangedPathsRequest,
    ) -> Result<Response<RpcStream<FindChangedPathsResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if !req.commits.is_empty() && !req.requests.is_empty() {
            return Err(Error::invalid("cannot specify both commits and requests"));
        }
        let requests: Vec<Request> = match req.commits.is_empty() {
            true => req.requests,
            false => req
                .commits
                .into_iter()
                .map(|c| Request {
                    r#type: Some(Type::CommitRequest(CommitRequest {
                        commit_revision: c,
                        parent_commit_revisions: Vec::new(),
                    })),
                })
                .collect(),
        };
        let mut input = Vec::new();
        let mut all_commits = true;
        for r in &requests {
            match &r.r#type {
                Some(Type::CommitRequest(c)) => {
                    let oid =
                        resolve(&repo, "commit", &c.commit_revision, ObjectType::Commit).await?;
                    input.extend_from_slice(oid.as_bytes());
                    for p in &c.parent_commit_revisions {
                        let oid = resolve(&repo, "commit parent", p, ObjectType::Commit).await?;
                        input.push(b' ');
                        input.extend_from_slice(oid.as_bytes());
                    }
                }
                Some(Type::TreeRequest(TreeRequest {
                    left_tree_revision,
                    right_tree_revision,
                })) => {
                    all_commits = false;
                    let l =
                        resolve(&repo, "left tree", left_tree_revision, ObjectType::Tree).await?;
                    let r =
                        resolve(&repo, "right tree", right_tree_revision, ObjectType::Tree).await?;
                    input.extend_from_slice(format!("{l} {r}").as_bytes());
                }
                None => return Err(Error::invalid("unknown request type")),
            }
            input.push(b'\n');
        }
        let filter = diff_filter(&req.diff_filters)?;
        let mut cmd = repo
            .cmd(Subcommand::DiffTree)
            .flag("-z")
            .flag("--stdin")
            .flag("-r")
            .flag("--root")
            .flag_value("--diff-filter", &filter);
        if !all_commits {
            cmd = cmd.flag("--no-commit-id");
        }
        cmd = match req.find_renames {
            true => cmd.flag("--find-renames=30%"),
            false => cmd.flag("--no-renames"),
        };
        cmd = match MergeCommitDiffMode::try_from(req.merge_commit_diff_mode) {
            Ok(MergeCommitDiffMode::AllParents) => cmd.flag("-c"),
            _ => cmd.flag("-m"),
        };
        let mut process = repo.spawn(&cmd.stdin())?;
        Ok(spawn_stream(move |sink| async move {
            process.write_stdin_and_close(&input).await?;
            let stdout = process
                .take_stdout()
                .ok_or_else(|| Error::internal("diff-tree has no stdout"))?;
            let mut records = ChangedPaths::new(stdout, all_commits);
            let mut batcher = Batcher::new(Limits::GITALY);
            while let Some(cp) = records
                .next()
                .await
                .map_err(|e| Error::internal(format!("{e}")))?
            {
                let msg = ChangedPathsMsg {
                    path: cp.path,
                    status: wire_status(cp.status) as i32,
                    old_mode: cp.old_mode,
                    new_mode: cp.new_mode,
                    old_blob_id: cp.old_blob_id,
                    new_blob_id: cp.new_blob_id,
                    old_path: cp.old_path,
                    score: 0,
                    commit_id: if all_commits {
                        cp.commit_id
                    } else {
                        String::new()
                    },
                };
                if let Some(paths) = batcher.push(msg) {
                    sink.send(FindChangedPathsResponse { paths }).await?;
                }
            }
            drop(records);
            let (status, _) = process.wait_status().await?;
            if !status.success() {
                return Err(Error::FailedPrecondition(format!(
                    "cmd wait err: {}",
                    exit_error(&status)
                )));
            }
            if let Some(paths) = batcher.finish() {
                sink.send(FindChangedPathsResponse { paths }).await?;
            }
            Ok(())
        }))
    }
}

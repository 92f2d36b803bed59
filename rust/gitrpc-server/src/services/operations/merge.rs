//! UserMergeBranch, Gitaly's two-phase protocol: the first request names the merge, the
//! server answers with the merge commit (written to the quarantine only: not visible in the
//! repository), and moves the branch only when the second request says `apply`. A client
//! that goes away, half-closes or says no leaves nothing behind.

use std::sync::Arc;

use gitrpc_git::merge::{merge_tree_command, run_merge_tree, MergeError, MergeTree};
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::*;
use tonic::{Code, Response, Status, Streaming};

use super::update::{custom_hook, reference_update, update_with_hooks, RefUpdate, UpdateError};
use super::{branch_ref, expected_old, ref_value, resolve_commit, write, ResponseStream};
use crate::deps::{Deps, Repo};
use crate::error::{coded, detailed, Error, Result};
use crate::hooks::User as HookUser;
use crate::quarantine::Quarantine;
use crate::signature::Signature;

/// A merge of `theirs` into `ours`, computed in the quarantine `qrepo`.
pub(super) enum Merged {
    Commit(String),
    Conflict(Vec<Vec<u8>>),
}

/// Merge with `merge-tree` and, if clean, commit the result with `parents`.
pub(super) async fn merge_commit(
    qrepo: &Repo<'_>,
    ours: &str,
    theirs: &str,
    parents: &[&str],
    signature: &Signature,
    message: &[u8],
) -> Result<Merged> {
    let cmd = merge_tree_command(qrepo.cmd(Subcommand::MergeTree), ours, theirs, None, true);
    let tree = match run_merge_tree(&qrepo.deps.git, &cmd).await {
        Ok(MergeTree::Clean { tree }) => tree,
        Ok(MergeTree::Conflict { paths, .. }) => return Ok(Merged::Conflict(paths)),
        Err(MergeError::Git(e)) => return Err(e.into()),
        Err(e) => return Err(Error::internal(e)),
    };
    let commit = write::commit(qrepo, &tree, parents, signature, signature, message).await?;
    Ok(Merged::Commit(commit))
}

/// What the first phase computed.
struct Planned {
    q: Quarantine,
    merge: String,
    update: RefUpdate,
    user: User,
    repository: Option<Repository>,
}

fn check(req: &UserMergeBranchRequest) -> Result<()> {
    let user = req
        .user
        .as_ref()
        .ok_or_else(|| Error::invalid("empty user"))?;
    if user.email.is_empty() {
        return Err(Error::invalid("empty user email"));
    }
    if user.name.is_empty() {
        return Err(Error::invalid("empty user name"));
    }
    if req.branch.is_empty() {
        return Err(Error::invalid("empty branch name"));
    }
    if req.commit_id.is_empty() {
        return Err(Error::invalid("empty commit ID"));
    }
    if req.message.is_empty() {
        return Err(Error::invalid("empty message"));
    }
    Ok(())
}

async fn plan(deps: &Deps, req: UserMergeBranchRequest) -> Result<Planned> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    check(&req)?;
    let user = req.user.clone().unwrap_or_default();
    let reference = branch_ref(&req.branch)?;
    let ours = match expected_old(&repo, &req.expected_old_oid, false).await? {
        Some(o) => o,
        None => ref_value(&repo, &reference)
            .await?
            .ok_or_else(|| coded(Code::NotFound, "reference not found"))?,
    };
    let signature = Signature::from_user(&user, req.timestamp.as_ref())?;
    let theirs = resolve_commit(&repo, req.commit_id.as_bytes())
        .await?
        .ok_or_else(|| Error::invalid(format!("commit not found: {}", req.commit_id)))?;
    let q = Quarantine::new(&repo.path)?;
    let qrepo = repo.quarantined(&q);
    let parents: Vec<&str> = match req.squash {
        true => vec![&ours],
        false => vec![&ours, &theirs],
    };
    let merge =
        match merge_commit(&qrepo, &ours, &theirs, &parents, &signature, &req.message).await? {
            Merged::Commit(c) => c,
            Merged::Conflict(files) => {
                return Err(detailed(
                    Code::FailedPrecondition,
                    "merging commits: merge: there are conflicting files",
                    "UserMergeBranchError",
                    &UserMergeBranchError {
                        error: Some(user_merge_branch_error::Error::MergeConflict(
                            MergeConflictError {
                                conflicting_files: files,
                                conflicting_commit_ids: vec![ours.clone(), theirs.clone()],
                            },
                        )),
                    },
                ))
            }
        };
    Ok(Planned {
        update: RefUpdate {
            reference,
            new_oid: merge.clone(),
            old_oid: ours,
        },
        q,
        merge,
        user,
        repository: req.repository,
    })
}

pub async fn merge_branch(
    deps: Arc<Deps>,
    mut stream: Streaming<UserMergeBranchRequest>,
) -> Result<Response<ResponseStream<UserMergeBranchResponse>>, Status> {
    let first = stream
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("empty request stream"))?;
    let planned = plan(&deps, first).await?;
    Ok(crate::stream::spawn_stream(move |sink| async move {
        let Planned {
            q,
            merge,
            update,
            user,
            repository,
        } = planned;
        sink.send(UserMergeBranchResponse {
            commit_id: merge.clone(),
            ..Default::default()
        })
        .await?;
        let apply = match stream.message().await {
            Ok(Some(m)) => m.apply,
            Ok(None) => false,
            // The client went away: the quarantine goes with this task.
            Err(s) => return Err(Error::Status(Box::new(s))),
        };
        if !apply {
            return Err(coded(Code::FailedPrecondition, "merge aborted by client"));
        }
        let repo = deps.repo_for_write(repository.as_ref())?;
        match update_with_hooks(&repo, &HookUser::from_proto(&user), Some(q), &update).await {
            Ok(()) => {}
            Err(UpdateError::Hook(r)) => {
                return Err(detailed(
                    Code::PermissionDenied,
                    r.message.clone(),
                    "UserMergeBranchError",
                    &UserMergeBranchError {
                        error: Some(user_merge_branch_error::Error::CustomHook(custom_hook(&r))),
                    },
                ))
            }
            Err(UpdateError::Ref(e)) => {
                return Err(detailed(
                    Code::FailedPrecondition,
                    format!("reference update: {e}"),
                    "UserMergeBranchError",
                    &UserMergeBranchError {
                        error: Some(user_merge_branch_error::Error::ReferenceUpdate(
                            reference_update(&update),
                        )),
                    },
                ))
            }
            Err(UpdateError::Other(e)) => return Err(e),
        }
        sink.send(UserMergeBranchResponse {
            branch_update: Some(OperationBranchUpdate {
                commit_id: merge,
                repo_created: false,
                branch_created: false,
            }),
            ..Default::default()
        })
        .await
    }))
}

//! UserCherryPick and UserRevert: apply (or undo) one commit's changes on top of a branch
//! with `merge-tree --merge-base`, as a new commit. They share everything but the merge's
//! sides, the author and Gitaly's wording of each failure.

use gitrpc_git::merge::{merge_tree_command, run_merge_tree, MergeError, MergeTree};
use gitrpc_git::objects::{Commit, ObjectFormat};
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::*;
use tonic::metadata::MetadataMap;
use tonic::Code;

use super::ff::is_ancestor;
use super::update::{custom_hook, update_with_hooks, RefUpdate, UpdateError};
use super::{branch_ref, expected_old, has_branches, ref_value, resolve_commit, start, write};
use crate::deps::Deps;
use crate::error::{coded, detailed, Error, Result};
use crate::hooks::User as HookUser;
use crate::quarantine::Quarantine;
use crate::signature::Signature;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    CherryPick,
    Revert,
}

/// The fields both requests have.
struct Request<'r> {
    repository: Option<&'r Repository>,
    user: Option<&'r User>,
    commit: Option<&'r GitCommit>,
    branch_name: &'r [u8],
    message: &'r [u8],
    start_branch_name: &'r [u8],
    start_repository: Option<&'r Repository>,
    dry_run: bool,
    timestamp: Option<&'r prost_types::Timestamp>,
    expected_old_oid: &'r str,
    /// Cherry-pick: an author for the new commit (both or neither).
    author: Option<(&'r [u8], &'r [u8])>,
}

/// The tree with no entries, which git knows without storing it.
fn empty_tree(f: ObjectFormat) -> &'static str {
    match f {
        ObjectFormat::Sha1 => "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        ObjectFormat::Sha256 => "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
    }
}

fn conflict(op: Op, files: Vec<Vec<u8>>) -> Error {
    let detail = MergeConflictError {
        conflicting_files: files,
        conflicting_commit_ids: Vec::new(),
    };
    match op {
        Op::CherryPick => detailed(
            Code::FailedPrecondition,
            "cherry pick: merge: there are conflicting files",
            "UserCherryPickError",
            &UserCherryPickError {
                error: Some(user_cherry_pick_error::Error::CherryPickConflict(detail)),
            },
        ),
        Op::Revert => detailed(
            Code::FailedPrecondition,
            "revert: there are conflicting files",
            "UserRevertError",
            &UserRevertError {
                error: Some(user_revert_error::Error::MergeConflict(detail)),
            },
        ),
    }
}

fn already_applied(op: Op) -> Error {
    match op {
        Op::CherryPick => detailed(
            Code::FailedPrecondition,
            "cherry-pick: could not apply because the result was empty",
            "UserCherryPickError",
            &UserCherryPickError {
                error: Some(user_cherry_pick_error::Error::ChangesAlreadyApplied(
                    ChangesAlreadyAppliedError {},
                )),
            },
        ),
        Op::Revert => detailed(
            Code::FailedPrecondition,
            "revert: could not apply because the result was empty",
            "UserRevertError",
            &UserRevertError {
                error: Some(user_revert_error::Error::ChangesAlreadyApplied(
                    ChangesAlreadyAppliedError {},
                )),
            },
        ),
    }
}

fn diverged(op: Op, old: &str, new: &str) -> Error {
    let detail = NotAncestorError {
        parent_revision: old.as_bytes().to_vec(),
        child_revision: new.as_bytes().to_vec(),
    };
    match op {
        Op::CherryPick => detailed(
            Code::FailedPrecondition,
            "cherry-pick: branch diverged",
            "UserCherryPickError",
            &UserCherryPickError {
                error: Some(user_cherry_pick_error::Error::TargetBranchDiverged(detail)),
            },
        ),
        Op::Revert => detailed(
            Code::FailedPrecondition,
            "revert: branch diverged",
            "UserRevertError",
            &UserRevertError {
                error: Some(user_revert_error::Error::NotAncestor(detail)),
            },
        ),
    }
}

async fn run(
    deps: &Deps,
    metadata: &MetadataMap,
    op: Op,
    req: Request<'_>,
) -> Result<OperationBranchUpdate> {
    let repo = deps.repo_for_write(req.repository)?;
    let user = req.user.ok_or_else(|| Error::invalid("empty User"))?;
    let commit = req.commit.ok_or_else(|| Error::invalid("empty Commit"))?;
    if req.branch_name.is_empty() {
        return Err(Error::invalid("empty BranchName"));
    }
    if req.message.is_empty() {
        return Err(Error::invalid("empty Message"));
    }
    let reference = branch_ref(req.branch_name)?;
    let format = repo.object_format();
    let signature = Signature::from_user(user, req.timestamp)?;
    let q = Quarantine::new(&repo.path)?;
    let qrepo = repo.quarantined(&q);
    // The start: the start branch (or the branch) here, or in the start repository.
    let start_name = match req.start_branch_name.is_empty() {
        true => req.branch_name,
        false => req.start_branch_name,
    };
    let other = start::start_repository(deps, metadata, &repo, req.start_repository).await?;
    let start = match &other {
        Some(o) => o.resolve_commit(start_name).await?,
        None => resolve_commit(&repo, start_name).await?,
    }
    .ok_or_else(|| Error::invalid("resolve start ref: reference not found"))?;
    let fetched = match &other {
        Some(o) => o.fetch_missing(deps, &qrepo, &start).await?,
        None => false,
    };
    let had_branches = has_branches(&repo).await?;
    let mut cat = match fetched {
        true => qrepo.catfile()?,
        false => repo.catfile()?,
    };
    let read = |c: Option<Commit>, what: &str| -> Result<Commit> {
        c.ok_or_else(|| coded(Code::NotFound, what.to_string()))
    };
    let picked = cat
        .read_commit(&format!("{}^{{commit}}", commit.id))
        .await?;
    let picked = match op {
        Op::CherryPick => read(
            picked,
            &format!(
                "cherry-pick: commit lookup: commit not found: {:?}",
                commit.id
            ),
        )?,
        Op::Revert => read(picked, "revert commit lookup: commit not found")?,
    };
    let ours = read(
        cat.read_commit(&start).await?,
        "ours commit lookup: commit not found",
    )?;
    drop(cat);
    let parent_tree = picked.parents.first().cloned();
    let parent = parent_tree.as_deref().unwrap_or(empty_tree(format));
    let (base, theirs) = match op {
        Op::CherryPick => (parent, picked.id.as_str()),
        Op::Revert => (picked.id.as_str(), parent),
    };
    let cmd = merge_tree_command(
        qrepo.cmd(Subcommand::MergeTree),
        &ours.id,
        theirs,
        Some(base),
        false,
    );
    let tree = match run_merge_tree(&deps.git, &cmd).await {
        Ok(MergeTree::Clean { tree }) => tree,
        Ok(MergeTree::Conflict { paths, .. }) => return Err(conflict(op, paths)),
        Err(MergeError::Git(e)) => return Err(e.into()),
        Err(e) => return Err(Error::internal(e)),
    };
    if tree == ours.tree {
        return Err(already_applied(op));
    }
    let author = match (op, req.author) {
        (Op::CherryPick, Some((name, email))) => {
            let trim = |b: &[u8]| String::from_utf8_lossy(b).trim().as_bytes().to_vec();
            signature.with_identity(&trim(name), &trim(email))
        }
        (Op::CherryPick, None) => Signature::from_parsed(&picked.author),
        (Op::Revert, _) => signature.clone(),
    };
    let new = write::commit(&qrepo, &tree, &[&ours.id], &author, &signature, req.message).await?;
    let old = match expected_old(&repo, req.expected_old_oid, false).await? {
        Some(o) => o,
        None => ref_value(&repo, &reference)
            .await?
            .unwrap_or_else(|| format.zero_oid()),
    };
    let branch_created = old == format.zero_oid();
    // A dry run "moves" the branch to the start: nothing new is kept (but a start fetched
    // from another repository).
    let new = if req.dry_run { start.clone() } else { new };
    if !branch_created && !is_ancestor(&qrepo, &old, &new).await? {
        return Err(diverged(op, &old, &new));
    }
    drop(qrepo);
    let q = (!req.dry_run || fetched).then_some(q);
    let u = RefUpdate {
        reference,
        new_oid: new.clone(),
        old_oid: old,
    };
    match update_with_hooks(&repo, &HookUser::from_proto(user), q, &u).await {
        Ok(()) => Ok(OperationBranchUpdate {
            commit_id: new,
            repo_created: !had_branches,
            branch_created,
        }),
        Err(UpdateError::Hook(r)) => Err(match op {
            Op::CherryPick => detailed(
                Code::FailedPrecondition,
                "access check failed",
                "UserCherryPickError",
                &UserCherryPickError {
                    error: Some(user_cherry_pick_error::Error::AccessCheck(
                        AccessCheckError {
                            error_message: r
                                .message
                                .strip_suffix('\n')
                                .unwrap_or(&r.message)
                                .to_string(),
                            ..Default::default()
                        },
                    )),
                },
            ),
            Op::Revert => detailed(
                Code::PermissionDenied,
                "revert: custom hook error",
                "UserRevertError",
                &UserRevertError {
                    error: Some(user_revert_error::Error::CustomHook(custom_hook(&r))),
                },
            ),
        }),
        Err(UpdateError::Ref(e)) => Err(coded(
            Code::Internal,
            format!("update reference with hooks: reference update: {e}"),
        )),
        Err(UpdateError::Other(e)) => Err(e),
    }
}

pub async fn cherry_pick(
    deps: &Deps,
    metadata: &MetadataMap,
    r: UserCherryPickRequest,
) -> Result<UserCherryPickResponse> {
    let author = match (
        r.commit_author_name.is_empty(),
        r.commit_author_email.is_empty(),
    ) {
        (false, false) => Some((&r.commit_author_name[..], &r.commit_author_email[..])),
        _ => None,
    };
    let req = Request {
        repository: r.repository.as_ref(),
        user: r.user.as_ref(),
        commit: r.commit.as_ref(),
        branch_name: &r.branch_name,
        message: &r.message,
        start_branch_name: &r.start_branch_name,
        start_repository: r.start_repository.as_ref(),
        dry_run: r.dry_run,
        timestamp: r.timestamp.as_ref(),
        expected_old_oid: &r.expected_old_oid,
        author,
    };
    Ok(UserCherryPickResponse {
        branch_update: Some(run(deps, metadata, Op::CherryPick, req).await?),
    })
}

pub async fn revert(
    deps: &Deps,
    metadata: &MetadataMap,
    r: UserRevertRequest,
) -> Result<UserRevertResponse> {
    let req = Request {
        repository: r.repository.as_ref(),
        user: r.user.as_ref(),
        commit: r.commit.as_ref(),
        branch_name: &r.branch_name,
        message: &r.message,
        start_branch_name: &r.start_branch_name,
        start_repository: r.start_repository.as_ref(),
        dry_run: r.dry_run,
        timestamp: r.timestamp.as_ref(),
        expected_old_oid: &r.expected_old_oid,
        author: None,
    };
    Ok(UserRevertResponse {
        branch_update: Some(run(deps, metadata, Op::Revert, req).await?),
        ..Default::default()
    })
}

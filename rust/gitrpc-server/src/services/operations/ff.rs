//! UserFFBranch: move a branch to a descendant of its commit.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::update::{custom_hook, update_with_hooks, RefUpdate, UpdateError};
use super::{branch_ref, expected_old, parse_oid, ref_value, require_user, resolve_commit};
use crate::deps::{Deps, Repo};
use crate::error::{coded, detailed, Error, Result};
use crate::hooks::User as HookUser;

/// Is `ancestor` an ancestor of (or the same as) `descendant`? Both must be commits.
pub(super) async fn is_ancestor(repo: &Repo<'_>, ancestor: &str, descendant: &str) -> Result<bool> {
    let cmd = repo
        .cmd(Subcommand::MergeBase)
        .flag("--is-ancestor")
        .rev(ancestor)
        .rev(descendant);
    let (status, stderr) = repo.spawn(&cmd)?.wait_status().await?;
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(Error::internal(format!("checking for ancestry: {stderr}"))),
    }
}

pub async fn ff_branch(deps: &Deps, req: UserFfBranchRequest) -> Result<UserFfBranchResponse> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    if req.branch.is_empty() {
        return Err(Error::invalid("empty branch name"));
    }
    let user = require_user(&req.user, "empty user")?;
    if req.commit_id.is_empty() {
        return Err(Error::invalid("empty commit id"));
    }
    let reference = branch_ref(&req.branch)?;
    let old = match expected_old(&repo, &req.expected_old_oid, false).await? {
        Some(o) => o,
        None => ref_value(&repo, &reference)
            .await?
            .ok_or_else(|| Error::invalid("reference not found"))?,
    };
    let commit = parse_oid(repo.object_format(), &req.commit_id)
        .map_err(|e| Error::invalid(format!("cannot parse commit ID: {e}")))?;
    if resolve_commit(&repo, commit.as_bytes()).await?.is_none() {
        return Err(coded(
            Code::Internal,
            format!("checking for ancestry: invalid commit: {commit:?}"),
        ));
    }
    if !is_ancestor(&repo, &old, &commit).await? {
        return Err(coded(Code::FailedPrecondition, "not fast forward"));
    }
    let u = RefUpdate {
        reference,
        new_oid: commit.clone(),
        old_oid: old,
    };
    match update_with_hooks(&repo, &HookUser::from_proto(user), None, &u).await {
        Ok(()) => Ok(UserFfBranchResponse {
            branch_update: Some(OperationBranchUpdate {
                commit_id: commit,
                repo_created: false,
                branch_created: false,
            }),
            pre_receive_error: String::new(),
        }),
        Err(UpdateError::Hook(r)) => Err(detailed(
            Code::PermissionDenied,
            r.message.clone(),
            "UserFFBranchError",
            &UserFfBranchError {
                error: Some(user_ff_branch_error::Error::CustomHook(custom_hook(&r))),
            },
        )),
        Err(UpdateError::Ref(e)) => Err(detailed(
            Code::FailedPrecondition,
            format!("update reference with hooks: reference update: {e}"),
            "UserFFBranchError",
            &UserFfBranchError {
                error: Some(user_ff_branch_error::Error::ReferenceUpdate(
                    ReferenceUpdateError {
                        reference_name: Vec::new(),
                        old_oid: u.old_oid.clone(),
                        new_oid: u.new_oid.clone(),
                    },
                )),
            },
        )),
        Err(UpdateError::Other(e)) => Err(e),
    }
}

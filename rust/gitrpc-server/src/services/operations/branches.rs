//! UserCreateBranch, UserUpdateBranch, UserDeleteBranch.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::update::{
    custom_hook, reference_update, running, update_with_hooks, RefUpdate, UpdateError,
};
use super::{branch_ref, expected_old, parse_oid, ref_value, require_user, resolve_commit};
use crate::deps::Deps;
use crate::error::{coded, detailed, Error, Result};
use crate::hooks::User as HookUser;

pub async fn create(deps: &Deps, req: UserCreateBranchRequest) -> Result<UserCreateBranchResponse> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    if req.branch_name.is_empty() {
        return Err(Error::invalid("empty branch name"));
    }
    let user = require_user(&req.user, "empty user")?;
    if req.start_point.is_empty() {
        return Err(Error::invalid("empty start point"));
    }
    let reference = branch_ref(&req.branch_name)?;
    let not_found = || {
        coded(
            Code::FailedPrecondition,
            format!(
                "revspec '{}' not found",
                String::from_utf8_lossy(&req.start_point)
            ),
        )
    };
    let commit_id = resolve_commit(&repo, &req.start_point)
        .await?
        .ok_or_else(not_found)?;
    let commit = repo
        .commit(commit_id.as_bytes())
        .await?
        .ok_or_else(not_found)?;
    let u = RefUpdate {
        reference,
        new_oid: commit_id,
        old_oid: repo.zero_oid(),
    };
    match update_with_hooks(&repo, &HookUser::from_proto(user), None, &u).await {
        Ok(()) => Ok(UserCreateBranchResponse {
            branch: Some(Branch {
                name: req.branch_name,
                target_commit: Some(crate::convert::commit(&commit, false)),
            }),
        }),
        Err(UpdateError::Hook(r)) => Err(detailed(
            Code::PermissionDenied,
            format!("creation denied by custom hooks: {}", running(&r)),
            "UserCreateBranchError",
            &UserCreateBranchError {
                error: Some(user_create_branch_error::Error::CustomHook(custom_hook(&r))),
            },
        )),
        Err(UpdateError::Ref(e)) => Err(coded(
            Code::FailedPrecondition,
            format!("reference update: {e}"),
        )),
        Err(UpdateError::Other(e)) => Err(e),
    }
}

pub async fn update(deps: &Deps, req: UserUpdateBranchRequest) -> Result<UserUpdateBranchResponse> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    let user = require_user(&req.user, "empty user")?;
    if req.branch_name.is_empty() {
        return Err(Error::invalid("empty branch name"));
    }
    if req.oldrev.is_empty() {
        return Err(Error::invalid("empty oldrev"));
    }
    if req.newrev.is_empty() {
        return Err(Error::invalid("empty newrev"));
    }
    let reference = branch_ref(&req.branch_name)?;
    let format = repo.object_format();
    // Gitaly's code for unparseable ids.
    let parse = |what: &str, v: &[u8]| {
        parse_oid(format, &String::from_utf8_lossy(v))
            .map_err(|e| coded(Code::Internal, format!("could not parse {what}: {e}")))
    };
    let u = RefUpdate {
        reference,
        new_oid: parse("newrev", &req.newrev)?,
        old_oid: parse("oldrev", &req.oldrev)?,
    };
    match update_with_hooks(&repo, &HookUser::from_proto(user), None, &u).await {
        Ok(()) => Ok(UserUpdateBranchResponse::default()),
        // Gitaly answers a hook's refusal with a successful response carrying its message.
        Err(UpdateError::Hook(r)) => Ok(UserUpdateBranchResponse {
            pre_receive_error: r.message,
        }),
        Err(UpdateError::Other(e)) if e.code() != Code::Internal => Err(e),
        Err(_) => Err(coded(
            Code::FailedPrecondition,
            format!(
                "Could not update {}. Please refresh and try again.",
                String::from_utf8_lossy(&req.branch_name)
            ),
        )),
    }
}

pub async fn delete(deps: &Deps, req: UserDeleteBranchRequest) -> Result<UserDeleteBranchResponse> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    if req.branch_name.is_empty() {
        return Err(Error::invalid("bad request: empty branch name"));
    }
    let user = require_user(&req.user, "bad request: empty user")?;
    let reference = branch_ref(&req.branch_name)?;
    let old_oid = match expected_old(&repo, &req.expected_old_oid, false).await? {
        Some(o) => o,
        None => ref_value(&repo, &reference).await?.ok_or_else(|| {
            coded(
                Code::FailedPrecondition,
                format!(
                    "branch not found: {:?}",
                    String::from_utf8_lossy(&req.branch_name)
                ),
            )
        })?,
    };
    let u = RefUpdate {
        reference,
        new_oid: repo.zero_oid(),
        old_oid,
    };
    match update_with_hooks(&repo, &HookUser::from_proto(user), None, &u).await {
        Ok(()) => Ok(UserDeleteBranchResponse::default()),
        Err(UpdateError::Hook(r)) => Err(detailed(
            Code::PermissionDenied,
            format!("deletion denied by custom hooks: {}", running(&r)),
            "UserDeleteBranchError",
            &UserDeleteBranchError {
                error: Some(user_delete_branch_error::Error::CustomHook(custom_hook(&r))),
            },
        )),
        Err(UpdateError::Ref(e)) => Err(detailed(
            Code::FailedPrecondition,
            format!("reference update failed: reference update: {e}"),
            "UserDeleteBranchError",
            &UserDeleteBranchError {
                error: Some(user_delete_branch_error::Error::ReferenceUpdate(
                    reference_update(&u),
                )),
            },
        )),
        Err(UpdateError::Other(e)) => Err(e),
    }
}

//! UserMergeToRef: merge a commit into a first parent and write the merge to a ref under
//! `refs/merge-requests` (no hooks: merge-request refs are internal to GitLab).

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::merge::{merge_commit, Merged};
use super::update::{apply, RefUpdate};
use super::{expected_old, ref_value, resolve_commit};
use crate::deps::{Deps, Repo};
use crate::error::{coded, Error, Result};
use crate::quarantine::Quarantine;
use crate::signature::Signature;

/// A target ref under `refs/merge-requests` (Gitaly's rule for both ...ToRef RPCs).
pub(super) fn target_ref(name: &[u8], message: &str) -> Result<String> {
    if !name.starts_with(b"refs/merge-requests") {
        return Err(Error::invalid(message));
    }
    Ok(gitrpc_git::validate::ref_name(name)
        .map_err(|_| Error::invalid(message))?
        .to_string())
}

/// The value the target ref must have: `expected_old_oid` (the zero id: must not exist), or
/// its current value (zero if missing); a symbolic target is refused.
pub(super) async fn old_target(repo: &Repo<'_>, target: &str, expected: &str) -> Result<String> {
    if let Some(o) = expected_old(repo, expected, true).await? {
        return Ok(o);
    }
    if let Some(store) = repo.refs() {
        if let Some(gitrpc_git::refs::RefValue::Symbolic(_)) = store.read_raw(target)? {
            return Err(coded(
                Code::FailedPrecondition,
                format!("target reference is symbolic: {target:?}"),
            ));
        }
    }
    Ok(ref_value(repo, target)
        .await?
        .unwrap_or_else(|| repo.zero_oid()))
}

#[allow(deprecated)]
pub async fn merge_to_ref(
    deps: &Deps,
    req: UserMergeToRefRequest,
) -> Result<UserMergeToRefResponse> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    if req.first_parent_ref.is_empty() && req.branch.is_empty() {
        return Err(Error::invalid("empty first parent ref and branch name"));
    }
    let user = req
        .user
        .as_ref()
        .ok_or_else(|| Error::invalid("empty user"))?;
    if req.source_sha.is_empty() {
        return Err(Error::invalid("empty source SHA"));
    }
    if req.target_ref.is_empty() {
        return Err(Error::invalid("empty target ref"));
    }
    let target = target_ref(&req.target_ref, "invalid target ref")?;
    let first_rev = match req.first_parent_ref.is_empty() {
        true => &req.branch,
        false => &req.first_parent_ref,
    };
    let invalid = || Error::invalid("Invalid merge source");
    let first = resolve_commit(&repo, first_rev)
        .await
        .ok()
        .flatten()
        .ok_or_else(invalid)?;
    let source = resolve_commit(&repo, req.source_sha.as_bytes())
        .await
        .ok()
        .flatten()
        .ok_or_else(invalid)?;
    let signature = Signature::from_user(user, req.timestamp.as_ref())?;
    let old_oid = old_target(&repo, &target, &req.expected_old_oid).await?;
    let q = Quarantine::new(&repo.path)?;
    let qrepo = repo.quarantined(&q);
    let failed = || {
        coded(
            Code::FailedPrecondition,
            format!(
                "Failed to create merge commit for source_sha {source} and target_sha {first} at {target}"
            ),
        )
    };
    let merge = match merge_commit(
        &qrepo,
        &first,
        &source,
        &[&first, &source],
        &signature,
        &req.message,
    )
    .await
    {
        Ok(Merged::Commit(c)) => c,
        Ok(Merged::Conflict(_)) | Err(_) => return Err(failed()),
    };
    let u = RefUpdate {
        reference: target.clone(),
        new_oid: merge.clone(),
        old_oid,
    };
    apply(&repo, Some(q), &u).await.map_err(|_| {
        coded(
            Code::FailedPrecondition,
            format!("Could not update {target}. Please refresh and try again"),
        )
    })?;
    Ok(UserMergeToRefResponse { commit_id: merge })
}

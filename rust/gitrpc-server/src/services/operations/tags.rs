//! UserCreateTag (lightweight and annotated), UserDeleteTag.

use gitrpc_git::ObjectType;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::update::{
    custom_hook, reference_update, running, update_with_hooks, RefUpdate, UpdateError,
};
use super::{expected_old, ref_value, require_user, tag_ref, write};
use crate::deps::Deps;
use crate::error::{coded, detailed, Error, Result};
use crate::hooks::User as HookUser;
use crate::quarantine::Quarantine;
use crate::signature::Signature;

/// Gitaly's `ValidateRevision` wording for a tag name.
fn check_tag_name(name: &[u8]) -> Result<()> {
    let why = if name.starts_with(b"-") {
        Some("revision can't start with '-'")
    } else if name.contains(&0) {
        Some("revision can't contain NUL")
    } else if name.iter().any(|b| b" \t\n\r".contains(b)) {
        Some("revision can't contain whitespace")
    } else if name.contains(&b':') {
        Some("revision can't contain ':'")
    } else if name.contains(&b'\\') {
        Some("revision can't contain '\\'")
    } else {
        None
    };
    match why {
        Some(w) => Err(Error::invalid(format!("invalid tag name: {w}"))),
        None => Ok(()),
    }
}

pub async fn create(deps: &Deps, req: UserCreateTagRequest) -> Result<UserCreateTagResponse> {
    if req.tag_name.is_empty() {
        return Err(Error::invalid("empty tag name"));
    }
    check_tag_name(&req.tag_name)?;
    let user = require_user(&req.user, "empty user")?;
    if req.target_revision.is_empty() {
        return Err(Error::invalid("empty target revision"));
    }
    if req.message.contains(&0) {
        return Err(Error::invalid("tag message contains NUL byte"));
    }
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    let reference = tag_ref(&req.tag_name)?;
    let tagger = Signature::from_user(user, req.timestamp.as_ref())?;
    let rev = gitrpc_git::validate::revision(&req.target_revision)?;
    let mut cat = repo.catfile()?;
    let not_found = || {
        coded(
            Code::FailedPrecondition,
            format!("revspec '{rev}' not found"),
        )
    };
    let target = cat.info(rev).await?.ok_or_else(not_found)?;
    let peeled = match target.kind {
        ObjectType::Tag => cat
            .info(&format!("{}^{{}}", target.oid))
            .await?
            .ok_or_else(not_found)?,
        _ => target.clone(),
    };
    if let Some(oid) = ref_value(&repo, &reference).await? {
        return Err(detailed(
            Code::AlreadyExists,
            "tag reference exists already",
            "UserCreateTagError",
            &UserCreateTagError {
                error: Some(user_create_tag_error::Error::ReferenceExists(
                    ReferenceExistsError {
                        reference_name: reference.into_bytes(),
                        oid,
                    },
                )),
            },
        ));
    }
    let annotated = req.message.iter().any(|b| !b.is_ascii_whitespace());
    let q = Quarantine::new(&repo.path)?;
    let new_oid = if annotated {
        let mut text = format!(
            "object {}\ntype {}\ntag {}\ntagger ",
            target.oid,
            target.kind.as_str(),
            String::from_utf8_lossy(&req.tag_name)
        )
        .into_bytes();
        text.extend_from_slice(&tagger.line());
        text.extend_from_slice(b"\n\n");
        text.extend_from_slice(&req.message);
        write::tag(&repo.quarantined(&q), &text).await.map_err(|_| {
            coded(
                Code::NotFound,
                format!("Gitlab::Git::CommitError: Could not update {reference}. Please refresh and try again."),
            )
        })?
    } else {
        peeled.oid.clone()
    };
    let target_commit = match peeled.kind {
        ObjectType::Commit => cat
            .read_commit(&peeled.oid)
            .await?
            .map(|c| crate::convert::commit(&c, false)),
        _ => None,
    };
    drop(cat);
    let u = RefUpdate {
        reference,
        new_oid: new_oid.clone(),
        old_oid: repo.zero_oid(),
    };
    let q = annotated.then_some(q);
    match update_with_hooks(&repo, &HookUser::from_proto(user), q, &u).await {
        Ok(()) => Ok(UserCreateTagResponse {
            tag: Some(Tag {
                name: req.tag_name,
                id: new_oid,
                message_size: if annotated {
                    req.message.len() as i64
                } else {
                    0
                },
                message: if annotated { req.message } else { Vec::new() },
                target_commit,
                ..Default::default()
            }),
        }),
        Err(UpdateError::Hook(r)) => Err(detailed(
            Code::PermissionDenied,
            format!("reference update denied by custom hooks: {}", running(&r)),
            "UserCreateTagError",
            &UserCreateTagError {
                error: Some(user_create_tag_error::Error::CustomHook(custom_hook(&r))),
            },
        )),
        Err(UpdateError::Ref(e)) => Err(detailed(
            Code::FailedPrecondition,
            format!("reference update failed: reference update: {e}"),
            "UserCreateTagError",
            &UserCreateTagError {
                error: Some(user_create_tag_error::Error::ReferenceUpdate(
                    reference_update(&u),
                )),
            },
        )),
        Err(UpdateError::Other(e)) => Err(e),
    }
}

pub async fn delete(deps: &Deps, req: UserDeleteTagRequest) -> Result<UserDeleteTagResponse> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    if req.tag_name.is_empty() {
        return Err(Error::invalid("empty tag name"));
    }
    let user = require_user(&req.user, "empty user")?;
    let reference = tag_ref(&req.tag_name)?;
    let old_oid = match expected_old(&repo, &req.expected_old_oid, false).await? {
        Some(o) => o,
        None => ref_value(&repo, &reference).await?.ok_or_else(|| {
            coded(
                Code::FailedPrecondition,
                format!("tag not found: {}", String::from_utf8_lossy(&req.tag_name)),
            )
        })?,
    };
    let u = RefUpdate {
        reference,
        new_oid: repo.zero_oid(),
        old_oid,
    };
    match update_with_hooks(&repo, &HookUser::from_proto(user), None, &u).await {
        Ok(()) => Ok(UserDeleteTagResponse::default()),
        Err(UpdateError::Hook(r)) => Ok(UserDeleteTagResponse {
            pre_receive_error: r.message,
        }),
        Err(UpdateError::Ref(e)) => Err(coded(
            Code::FailedPrecondition,
            format!("reference update: {e}"),
        )),
        Err(UpdateError::Other(e)) => Err(e),
    }
}

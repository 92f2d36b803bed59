//! UserSquash: one commit with the changes of `start..end` on top of `start` (no ref is
//! written; the commit's objects are kept).

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::resolve_commit;
use crate::deps::Deps;
use crate::error::{detailed, Error, Result};
use crate::quarantine::Quarantine;
use crate::signature::{offset, Signature};

fn check(req: &UserSquashRequest) -> Result<()> {
    let empty = |m: &str| Err(Error::invalid(m));
    match &req.user {
        None => return empty("empty User"),
        Some(u) if u.name.is_empty() => return empty("empty user name"),
        Some(u) if u.email.is_empty() => return empty("empty user email"),
        _ => {}
    }
    if req.start_sha.is_empty() {
        return empty("empty StartSha");
    }
    if req.end_sha.is_empty() {
        return empty("empty EndSha");
    }
    if req.commit_message.is_empty() {
        return empty("empty CommitMessage");
    }
    match &req.author {
        None => empty("empty Author"),
        Some(a) if a.name.is_empty() => empty("empty author name"),
        Some(a) if a.email.is_empty() => empty("empty author email"),
        _ => Ok(()),
    }
}

fn unresolved(what: &str, revision: &str) -> Error {
    detailed(
        Code::InvalidArgument,
        format!("resolving {what} revision: reference not found"),
        "UserSquashError",
        &UserSquashError {
            error: Some(user_squash_error::Error::ResolveRevision(
                ResolveRevisionError {
                    revision: revision.as_bytes().to_vec(),
                },
            )),
        },
    )
}

pub async fn squash(deps: &Deps, req: UserSquashRequest) -> Result<UserSquashResponse> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    check(&req)?;
    let (user, author) = (
        req.user.clone().unwrap_or_default(),
        req.author.clone().unwrap_or_default(),
    );
    let start = resolve_commit(&repo, req.start_sha.as_bytes())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| unresolved("start", &req.start_sha))?;
    let end = resolve_commit(&repo, req.end_sha.as_bytes())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| unresolved("end", &req.end_sha))?;
    let committer = Signature::from_user(&user, req.timestamp.as_ref())?;
    let author = Signature {
        offset: offset(&author.timezone, committer.seconds)?,
        ..committer.with_identity(&author.name, &author.email)
    };
    let mut message = req.commit_message.clone();
    if !message.ends_with(b"\n") {
        message.push(b'\n');
    }
    let q = Quarantine::new(&repo.path)?;
    let qrepo = repo.quarantined(&q);
    let cmd = gitrpc_git::merge::merge_tree_command(
        qrepo.cmd(gitrpc_git::Subcommand::MergeTree),
        &start,
        &end,
        None,
        true,
    );
    let tree = match gitrpc_git::merge::run_merge_tree(&deps.git, &cmd).await {
        Ok(gitrpc_git::merge::MergeTree::Clean { tree }) => tree,
        Ok(gitrpc_git::merge::MergeTree::Conflict { paths, .. }) => {
            return Err(conflict(paths, &start, &end))
        }
        Err(gitrpc_git::merge::MergeError::Git(e)) => return Err(e.into()),
        Err(e) => return Err(Error::internal(e)),
    };
    let id = super::write::commit(&qrepo, &tree, &[&start], &author, &committer, &message).await?;
    drop(qrepo);
    q.migrate()
        .await
        .map_err(|e| Error::internal(format!("migrating quarantined objects: {e}")))?;
    Ok(UserSquashResponse { squash_sha: id })
}

fn conflict(files: Vec<Vec<u8>>, start: &str, end: &str) -> Error {
    detailed(
        Code::FailedPrecondition,
        "squashing commits: merge: there are conflicting files",
        "UserSquashError",
        &UserSquashError {
            error: Some(user_squash_error::Error::RebaseConflict(
                MergeConflictError {
                    conflicting_files: files,
                    conflicting_commit_ids: vec![start.to_string(), end.to_string()],
                },
            )),
        },
    )
}

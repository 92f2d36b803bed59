//! UserCommitFiles: a header, then file actions with their content, committed to a branch.
//!
//! Everything the client sent is read and checked first (paths, base64, action types), so
//! bad input writes nothing. Then, in the operation's quarantine: every blob with one
//! `hash-object`, the trees on the edited paths changed in memory and written with one
//! `mktree` ([`gitrpc_git::tree_edit`]), the commit with `commit-tree`; the branch moves
//! through the hook chain with the expected old value.

use gitrpc_git::objects::ObjectFormat;
use gitrpc_git::tree_edit::{Mktree, TreeEditor};
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::user_commit_files_action::UserCommitFilesActionPayload as ActionPayload;
use gitrpc_proto::gitaly::user_commit_files_request::UserCommitFilesRequestPayload as Payload;
use gitrpc_proto::gitaly::*;
use tonic::{Code, Streaming};

use super::files::{self, Action};
use super::update::{custom_hook, running, update_with_hooks, RefUpdate, UpdateError};
use super::{branch_ref, expected_old, has_branches, parse_oid, ref_value, start, write};
use crate::deps::{Deps, Repo};
use crate::error::{coded, detailed, Error, Result};
use crate::hooks::User as HookUser;
use crate::quarantine::Quarantine;
use crate::signature::Signature;

/// Content bytes of all actions of one request together.
pub const MAX_CONTENT: usize = 100 * 1024 * 1024;

/// Read the actions after the header: each `header` starts one, each `content` appends to
/// the last.
async fn read_actions(stream: &mut Streaming<UserCommitFilesRequest>) -> Result<Vec<Action>> {
    let mut raw: Vec<(UserCommitFilesActionHeader, Vec<u8>)> = Vec::new();
    let mut total = 0usize;
    while let Some(msg) = stream
        .message()
        .await
        .map_err(|s| Error::Status(Box::new(s)))?
    {
        match msg.user_commit_files_request_payload {
            Some(Payload::Header(_)) => {
                return Err(Error::invalid("unexpected header after the first message"))
            }
            Some(Payload::Action(a)) => match a.user_commit_files_action_payload {
                Some(ActionPayload::Header(h)) => raw.push((h, Vec::new())),
                Some(ActionPayload::Content(c)) => {
                    total += c.len();
                    if total > MAX_CONTENT {
                        return Err(Error::invalid(format!(
                            "content too large: more than {MAX_CONTENT} bytes"
                        )));
                    }
                    match raw.last_mut() {
                        Some((_, content)) => content.extend_from_slice(&c),
                        None => return Err(Error::invalid("content sent before action")),
                    }
                }
                None => {}
            },
            None => {}
        }
    }
    raw.into_iter()
        .map(|(h, content)| files::check(&h, content))
        .collect()
}

fn check_header(h: &UserCommitFilesRequestHeader, format: ObjectFormat) -> Result<()> {
    if h.user.is_none() {
        return Err(Error::invalid("empty User"));
    }
    if h.commit_message.is_empty() {
        return Err(Error::invalid("empty CommitMessage"));
    }
    if h.branch_name.is_empty() {
        return Err(Error::invalid("empty BranchName"));
    }
    if !h.start_sha.is_empty() {
        parse_oid(format, &h.start_sha).map_err(Error::invalid)?;
    }
    Ok(())
}

pub async fn commit_files(
    deps: &Deps,
    mut stream: Streaming<UserCommitFilesRequest>,
) -> Result<UserCommitFilesResponse> {
    let first = stream
        .message()
        .await
        .map_err(|s| Error::Status(Box::new(s)))?;
    let Some(Payload::Header(header)) = first.and_then(|m| m.user_commit_files_request_payload)
    else {
        return Err(Error::invalid("empty UserCommitFilesRequestHeader"));
    };
    let repo = deps.repo_for_write(header.repository.as_ref())?;
    let format = repo.object_format();
    check_header(&header, format)?;
    let user = header.user.clone().unwrap_or_default();
    let reference = branch_ref(&header.branch_name)?;
    let committer = Signature::from_user(&user, header.timestamp.as_ref())?;
    let trim = |b: &[u8]| String::from_utf8_lossy(b).trim().as_bytes().to_vec();
    let (name, email) = (
        trim(&header.commit_author_name),
        trim(&header.commit_author_email),
    );
    let author = committer.with_identity(
        if name.is_empty() {
            &committer.name
        } else {
            &name
        },
        if email.is_empty() {
            &committer.email
        } else {
            &email
        },
    );
    if author.is_empty() || committer.is_empty() {
        return Err(Error::invalid(
            "commit: failed to parse signature - Signature cannot have an empty name or email",
        ));
    }
    let expected = expected_old(&repo, &header.expected_old_oid, true).await?;
    let other = start::other_repository(deps, &repo, header.start_repository.as_ref())?;
    let actions = read_actions(&mut stream).await?;

    let target = ref_value(&repo, &reference).await?;
    let parent = match (
        header.start_sha.as_str(),
        &other,
        header.start_branch_name.is_empty(),
    ) {
        ("", None, true) => target.clone(),
        ("", from, _) => {
            let from = from.as_ref().unwrap_or(&repo);
            let branch = match header.start_branch_name.is_empty() {
                true => &header.branch_name,
                false => &header.start_branch_name,
            };
            match start::branch_commit(from, branch).await? {
                None => target.clone(),
                Some(Some(c)) => Some(c),
                Some(None) => {
                    return Err(coded(
                        Code::Internal,
                        format!(
                            "resolve parent commit: resolving refish \"refs/heads/{}^{{commit}}\": reference not found",
                            String::from_utf8_lossy(branch)
                        ),
                    ))
                }
            }
        }
        (sha, _, _) => Some(sha.to_ascii_lowercase()),
    };
    let q = Quarantine::new(&repo.path)?;
    let qrepo = repo.quarantined(&q);
    let mut fetched = false;
    if let Some(p) = parent.as_deref().filter(|p| Some(*p) != target.as_deref()) {
        fetched = match &other {
            Some(from) => start::fetch_missing(&qrepo, from, p).await?,
            None => false,
        };
        if !fetched
            && repo
                .resolve(format!("{p}^{{commit}}").as_bytes(), None)
                .await?
                .is_none()
        {
            return Err(Error::invalid(format!("cannot resolve parent commit: {p}")));
        }
    }
    let commit_id = write_commit(
        &repo,
        &qrepo,
        fetched,
        parent.as_deref(),
        &actions,
        &author,
        &committer,
        &header.commit_message,
    )
    .await?;
    let repo_created = !has_branches(&repo).await?;
    let old_oid = match expected {
        Some(o) => o,
        None => match (&target, header.force) {
            (None, _) => format.zero_oid(),
            (Some(t), true) => t.clone(),
            (Some(_), false) => parent.clone().unwrap_or_else(|| format.zero_oid()),
        },
    };
    drop(qrepo);
    let u = RefUpdate {
        reference,
        new_oid: commit_id.clone(),
        old_oid,
    };
    match update_with_hooks(&repo, &HookUser::from_proto(&user), Some(q), &u).await {
        Ok(()) => Ok(UserCommitFilesResponse {
            branch_update: Some(OperationBranchUpdate {
                commit_id,
                repo_created,
                branch_created: u.old_oid == format.zero_oid(),
            }),
            ..Default::default()
        }),
        Err(UpdateError::Hook(r)) => Err(detailed(
            Code::PermissionDenied,
            format!("denied by custom hooks: update reference: {}", running(&r)),
            "UserCommitFilesError",
            &UserCommitFilesError {
                error: Some(user_commit_files_error::Error::CustomHook(custom_hook(&r))),
            },
        )),
        Err(UpdateError::Ref(e)) => Err(coded(
            Code::FailedPrecondition,
            format!("reference update: {e}"),
        )),
        Err(UpdateError::Other(e)) => Err(e),
    }
}

/// Write the blobs, the trees and the commit into the quarantine; the commit's id.
#[allow(clippy::too_many_arguments)]
async fn write_commit(
    repo: &Repo<'_>,
    qrepo: &Repo<'_>,
    parent_in_quarantine: bool,
    parent: Option<&str>,
    actions: &[Action],
    author: &Signature,
    committer: &Signature,
    message: &[u8],
) -> Result<String> {
    let contents: Vec<&[u8]> = actions
        .iter()
        .filter(|a| files::needs_blob(a))
        .map(|a| a.content.as_slice())
        .collect();
    let mut blob_ids = write::blobs(qrepo, &contents).await?.into_iter();
    // The parent's trees are read from the repository (pooled cat-file) unless the parent
    // came from another repository into the quarantine.
    let mut cat = match parent_in_quarantine {
        true => qrepo.catfile()?,
        false => repo.catfile()?,
    };
    let tree = match parent {
        Some(p) => Some(
            cat.read_commit(p)
                .await?
                .ok_or_else(|| Error::invalid(format!("cannot resolve parent commit: {p}")))?
                .tree,
        ),
        None => None,
    };
    let mut editor = TreeEditor::new(tree, repo.object_format());
    for a in actions {
        let blob = if files::needs_blob(a) {
            blob_ids.next()
        } else {
            None
        };
        files::apply(&mut editor, &mut cat, a, blob.as_deref()).await?;
    }
    drop(cat);
    let mut mktree = Mktree::start(&repo.deps.git, qrepo.cmd(Subcommand::Mktree))?;
    let tree = editor.write(&mut mktree).await?;
    mktree.finish().await?;
    let parents: Vec<&str> = parent.into_iter().collect();
    write::commit(qrepo, &tree, &parents, author, committer, message).await
}

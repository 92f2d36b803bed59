//! UserRebaseToRef: rebase the commits of a source onto a first parent, one `merge-tree
//! --merge-base` per commit (no work tree), and write the result to a ref under
//! `refs/merge-requests` (no hooks). Gitaly's `localrepo.Rebase`: authors keep their
//! name, email, date and zone; the committer is the user.

use gitrpc_git::merge::{merge_tree_command, run_merge_tree, MergeError, MergeTree};
use gitrpc_git::objects::parse_commit;
use gitrpc_git::{Revisions, Subcommand};
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::merge_to_ref::{old_target, target_ref};
use super::update::{apply, RefUpdate};
use super::{resolve_commit, write};
use crate::deps::{Deps, Repo};
use crate::error::{coded, Error, Result};
use crate::quarantine::Quarantine;
use crate::signature::Signature;

/// A commit's full message (the parsed one is truncated for responses).
fn raw_message(raw: &[u8]) -> &[u8] {
    match raw.windows(2).position(|w| w == b"\n\n") {
        Some(i) => &raw[i + 2..],
        None => b"",
    }
}

fn empty_tree(repo: &Repo<'_>) -> &'static str {
    match repo.object_format() {
        gitrpc_git::objects::ObjectFormat::Sha1 => "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        gitrpc_git::objects::ObjectFormat::Sha256 => {
            "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
        }
    }
}

/// `git merge-base a b`, if they have one.
async fn merge_base(repo: &Repo<'_>, a: &str, b: &str) -> Result<Option<String>> {
    let mut p = repo.spawn(&repo.cmd(Subcommand::MergeBase).rev(a).rev(b))?;
    let out = p.read_stdout_to_end().await?;
    let (status, stderr) = p.wait_status().await?;
    match status.code() {
        Some(0) => Ok(Some(String::from_utf8_lossy(&out).trim().to_string())),
        Some(1) => Ok(None),
        _ => Err(Error::internal(format!("merge-base: {stderr}"))),
    }
}

/// Rebase `branch` onto `upstream` in the quarantined `qrepo`; the new tip, or `None` on a
/// conflict.
async fn rebase(
    qrepo: &Repo<'_>,
    upstream: &str,
    branch: &str,
    committer: &Signature,
) -> Result<Option<String>> {
    match merge_base(qrepo, upstream, branch).await? {
        Some(b) if b == upstream => return Ok(Some(branch.to_string())),
        Some(b) if b == branch => return Ok(Some(upstream.to_string())),
        _ => {}
    }
    let range = format!("{upstream}...{branch}");
    let cmd = qrepo
        .cmd(Subcommand::RevList)
        .flag("--cherry-pick")
        .flag("--right-only")
        .flag("--no-merges")
        .flag("--topo-order")
        .flag("--reverse")
        .flag("--stdin");
    let input = Revisions::AllowPseudo.stdin(&[range.as_str()])?;
    let out = qrepo.output_with_input(&cmd, &input).await?;
    let todo: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut cat = qrepo.catfile()?;
    let mut ours = upstream.to_string();
    let mut ours_tree = cat
        .read_commit(upstream)
        .await?
        .ok_or_else(|| Error::internal("upstream commit missing"))?
        .tree;
    for c in todo {
        let (info, raw) = cat
            .read_object(&c)
            .await?
            .ok_or_else(|| Error::internal(format!("commit {c} missing")))?;
        let commit = parse_commit(&info.oid, &raw);
        let parent_tree = match commit.parents.first() {
            Some(p) => cat.read_commit(p).await?.map(|p| p.tree),
            None => Some(empty_tree(qrepo).to_string()),
        };
        let base = commit
            .parents
            .first()
            .cloned()
            .unwrap_or_else(|| empty_tree(qrepo).to_string());
        let cmd = merge_tree_command(
            qrepo.cmd(Subcommand::MergeTree),
            &ours,
            &c,
            Some(&base),
            true,
        );
        let tree = match run_merge_tree(&qrepo.deps.git, &cmd).await {
            Ok(MergeTree::Clean { tree }) => tree,
            Ok(MergeTree::Conflict { .. }) => return Ok(None),
            Err(MergeError::Git(e)) => return Err(e.into()),
            Err(e) => return Err(Error::internal(e)),
        };
        let was_empty = parent_tree.as_deref() == Some(commit.tree.as_str());
        if tree == ours_tree && !was_empty {
            continue; // already applied upstream
        }
        let author = Signature::from_parsed(&commit.author);
        ours = write::commit(
            qrepo,
            &tree,
            &[&ours],
            &author,
            committer,
            raw_message(&raw),
        )
        .await?;
        ours_tree = tree;
    }
    Ok(Some(ours))
}

pub async fn rebase_to_ref(
    deps: &Deps,
    req: UserRebaseToRefRequest,
) -> Result<UserRebaseToRefResponse> {
    let repo = deps.repo_for_write(req.repository.as_ref())?;
    if req.first_parent_ref.is_empty() {
        return Err(Error::invalid("empty FirstParentRef"));
    }
    let user = req
        .user
        .as_ref()
        .ok_or_else(|| Error::invalid("empty User"))?;
    if req.source_sha.is_empty() {
        return Err(Error::invalid("empty SourceSha"));
    }
    if req.target_ref.is_empty() {
        return Err(Error::invalid("empty TargetRef"));
    }
    let target = target_ref(&req.target_ref, "invalid TargetRef")?;
    let first = resolve_commit(&repo, &req.first_parent_ref)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| Error::invalid("invalid FirstParentRef"))?;
    let source = resolve_commit(&repo, req.source_sha.as_bytes())
        .await
        .ok()
        .flatten()
        .ok_or_else(|| Error::invalid("invalid SourceSha"))?;
    let committer = Signature::from_user(user, req.timestamp.as_ref())?;
    let old_oid = old_target(&repo, &target, &req.expected_old_oid).await?;
    let q = Quarantine::new(&repo.path)?;
    let qrepo = repo.quarantined(&q);
    let Some(tip) = rebase(&qrepo, &first, &source, &committer).await? else {
        return Err(coded(
            Code::FailedPrecondition,
            format!(
                "failed to rebase {source} on {first} while preparing {target} due to conflict"
            ),
        ));
    };
    drop(qrepo);
    let u = RefUpdate {
        reference: target.clone(),
        new_oid: tip.clone(),
        old_oid,
    };
    apply(&repo, Some(q), &u).await.map_err(|_| {
        coded(
            Code::FailedPrecondition,
            format!("could not update {target}. Please refresh and try again"),
        )
    })?;
    Ok(UserRebaseToRefResponse { commit_id: tip })
}

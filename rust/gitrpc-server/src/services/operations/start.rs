//! Where a new commit starts: a branch of this repository or of `start_repository` (another
//! repository of this server's storages; another server is not dialled), fetched into the
//! operation's quarantine when its objects are not here.

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::Repository;

use super::{has_branches, ref_value};
use crate::deps::{Deps, Repo};
use crate::error::Result;

/// `start_repository` as a repository to read from: `None` when unset or the same
/// repository as `repo` (Gitaly's `sameRepository`).
pub fn other_repository<'d>(
    deps: &'d Deps,
    repo: &Repo<'_>,
    start: Option<&Repository>,
) -> Result<Option<Repo<'d>>> {
    match start {
        None => Ok(None),
        Some(s)
            if s.storage_name == repo.repository.storage_name
                && s.relative_path == repo.repository.relative_path =>
        {
            Ok(None)
        }
        Some(s) => Ok(Some(deps.repo_for_write(Some(s))?)),
    }
}

/// The commit `refs/heads/<branch>` points to in `from`; `Ok(None)` if it has no branches
/// at all (GitLab's empty-repository case: the caller falls back to its own branch), and
/// `Err(missing)` if that branch doesn't exist.
pub async fn branch_commit(from: &Repo<'_>, branch: &[u8]) -> Result<Option<Option<String>>> {
    if !has_branches(from).await? {
        return Ok(None);
    }
    let name = super::branch_ref(branch)?;
    Ok(Some(ref_value(from, &name).await?))
}

/// Make `oid` (a commit of `from`) readable in the quarantined repository `qrepo`: fetched
/// into the quarantine unless the repository has it. Returns whether it was fetched.
pub async fn fetch_missing(qrepo: &Repo<'_>, from: &Repo<'_>, oid: &str) -> Result<bool> {
    if qrepo
        .resolve(format!("{oid}^{{commit}}").as_bytes(), None)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let cmd = qrepo
        .cmd(Subcommand::Fetch)
        // The start commit need not be a branch tip (a `start_sha`).
        .config("uploadpack.allowAnySHA1InWant", "true")
        .flag("--no-tags")
        .flag("--no-write-fetch-head")
        .flag("--no-recurse-submodules")
        .flag("--quiet")
        .arg(from.path())
        .arg(oid);
    qrepo.output(&cmd).await?;
    Ok(true)
}

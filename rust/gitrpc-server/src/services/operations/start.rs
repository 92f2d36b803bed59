//! Where a new commit starts: a branch of this repository or of `start_repository` (another
//! repository of this server's storages or of another server named in the call's
//! `gitaly-servers`), fetched into the operation's quarantine when its objects are not here.
//! UserCommitFiles, UserCherryPick and UserRevert all go through [`start_repository`].

use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::Repository;
use tonic::metadata::MetadataMap;

use super::{has_branches, ref_value};
use crate::deps::{Deps, Repo};
use crate::error::{Error, Result};
use crate::remote::RemoteServer;
use crate::second::SecondRepository;

/// A `start_repository` other than the call's repository.
pub enum Start<'d> {
    /// On a storage of this server.
    Local(Repo<'d>),
    /// On another server (its storage is not ours): asked over gRPC, fetched from through
    /// its upload-pack.
    Remote(SecondRepository),
}

/// `start_repository` as a repository to read from, which may be on another server (then
/// the call's `gitaly-servers` says where): `None` when unset or the same repository as
/// `repo`.
pub async fn start_repository<'d>(
    deps: &'d Deps,
    metadata: &MetadataMap,
    repo: &Repo<'_>,
    start: Option<&Repository>,
) -> Result<Option<Start<'d>>> {
    let Some(s) = start else { return Ok(None) };
    if deps.locator.storage(&s.storage_name).is_ok() {
        return Ok(other_repository(deps, repo, Some(s))?.map(Start::Local));
    }
    let second = SecondRepository::resolve(deps, metadata, s).await?;
    if !second.exists().await? {
        return Err(Error::not_found(format!(
            "start repository {:?} on storage {:?} not found",
            s.relative_path, s.storage_name
        )));
    }
    Ok(Some(Start::Remote(second)))
}

impl Start<'_> {
    /// [`branch_commit`] of the start repository.
    pub async fn branch_commit(&self, branch: &[u8]) -> Result<Option<Option<String>>> {
        match self {
            Start::Local(from) => branch_commit(from, branch).await,
            Start::Remote(second) => {
                let server = server(second)?;
                super::branch_ref(branch)?;
                if !server.has_branches(&second.repository).await? {
                    return Ok(None);
                }
                Ok(Some(
                    server.branch_commit(&second.repository, branch).await?,
                ))
            }
        }
    }

    /// The commit `rev` (a start branch name, any revision) resolves to in the start
    /// repository; `None` if none.
    pub async fn resolve_commit(&self, rev: &[u8]) -> Result<Option<String>> {
        match self {
            Start::Local(from) => super::resolve_commit(from, rev).await,
            Start::Remote(second) => server(second)?.find_commit(&second.repository, rev).await,
        }
    }

    /// [`fetch_missing`] from the start repository (through its server's upload-pack if
    /// it is on another one).
    pub async fn fetch_missing(&self, deps: &Deps, qrepo: &Repo<'_>, oid: &str) -> Result<bool> {
        match self {
            Start::Local(from) => fetch_missing(qrepo, from, oid).await,
            Start::Remote(second) => {
                if has_commit(qrepo, oid).await? {
                    return Ok(false);
                }
                let cmd = qrepo.cmd(Subcommand::Fetch);
                second
                    .fetch_with(deps, &qrepo.git, cmd, |c| {
                        c.flag("--no-tags")
                            .flag("--no-write-fetch-head")
                            .flag("--no-recurse-submodules")
                            .flag("--quiet")
                            .arg(oid)
                    })
                    .await?;
                Ok(true)
            }
        }
    }
}

fn server(second: &SecondRepository) -> Result<&RemoteServer> {
    second
        .remote()
        .ok_or_else(|| Error::internal("start repository: not on another server"))
}

async fn has_commit(repo: &Repo<'_>, oid: &str) -> Result<bool> {
    Ok(repo
        .resolve(format!("{oid}^{{commit}}").as_bytes(), None)
        .await?
        .is_some())
}

/// `start_repository` as a repository to read from: `None` when unset or the same
/// repository as `repo` (Gitaly's `sameRepository`).
fn other_repository<'d>(
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
    if has_commit(qrepo, oid).await? {
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

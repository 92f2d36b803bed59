//! ReplicateRepository: make the target's references and objects those of the source, a
//! repository on another storage (usually another server, named in `gitaly-servers`), so an
//! operator can move repositories between storages. As Gitaly: a missing target is created
//! (with the source's object format), then `git fetch --prune` of `+refs/*:refs/*` from the
//! source's upload-pack (through [`crate::relay`]), then HEAD is pointed where the source's
//! points. Unlike Gitaly, the source's `config` and custom hooks are not copied: a server a
//! client names must not be able to plant config (`core.fsmonitor`, ...) that our git would
//! run; objects and refs can't run anything.

use gitrpc_git::objects::ObjectFormat;
use gitrpc_git::{Command, Git, Subcommand};
use gitrpc_proto::gitaly::{ReplicateRepositoryRequest, Repository};
use tonic::metadata::MetadataMap;

use crate::accounting::Call;
use crate::deps::Deps;
use crate::error::{Error, Result};
use crate::locator::is_git_dir;
use crate::second::SecondRepository;
use crate::tempdir::TempDir;

/// The mirror refspec: every ref of the source, forced.
const MIRROR: &str = "+refs/*:refs/*";

pub(super) async fn replicate(
    deps: &Deps,
    metadata: &MetadataMap,
    req: ReplicateRepositoryRequest,
) -> Result<()> {
    let target = req
        .repository
        .ok_or_else(|| Error::invalid("empty Repository"))?;
    let source = req
        .source
        .filter(|s| *s != Repository::default())
        .ok_or_else(|| Error::invalid("source repository cannot be empty"))?;
    if source.storage_name == target.storage_name {
        return Err(Error::invalid(
            "repository and source have the same storage",
        ));
    }
    let path = deps.locator.repo_path(Some(&target))?;
    let source = SecondRepository::resolve(deps, metadata, &source).await?;
    if !source.exists().await? {
        return Err(Error::not_found("invalid source repository"));
    }
    let git = match Call::current() {
        Some(call) => call.git(&deps.git),
        None => deps.git.clone(),
    };
    if !is_git_dir(&path) {
        create(deps, &git, &target, &path, &source).await?;
    } else {
        fetch(deps, &git, &path, &source).await?;
    }
    let repo = deps.repo(Some(&target))?;
    if let Some(head) = source.head().await? {
        let ours = std::fs::read_to_string(path.join("HEAD")).unwrap_or_default();
        if ours.trim() != format!("ref: {head}") {
            let name = gitrpc_git::validate::ref_name(head.as_bytes())?;
            let cmd = repo.cmd(Subcommand::SymbolicRef).arg("HEAD").arg(name);
            repo.writing_refs(|| repo.output(&cmd)).await?;
        }
    }
    Ok(())
}

async fn fetch(
    deps: &Deps,
    git: &Git,
    path: &std::path::Path,
    source: &SecondRepository,
) -> Result<()> {
    let flags = |cmd: Command| {
        cmd.flag("--no-write-fetch-head")
            .flag("--quiet")
            .flag("--prune")
            .flag("--no-tags")
            .arg(MIRROR)
    };
    source.fetch_into(deps, git, path, flags).await
}

/// A new repository with the source's object format, filled in a temporary directory of
/// the storage and renamed into place (atomic; a repository that appeared there meanwhile
/// wins and this call is `ALREADY_EXISTS`).
async fn create(
    deps: &Deps,
    git: &Git,
    target: &Repository,
    path: &std::path::Path,
    source: &SecondRepository,
) -> Result<()> {
    let format = source.object_format().await?;
    let storage = deps.locator.storage(&target.storage_name)?;
    let tmp = TempDir::new_in_storage(storage, "replicate")?;
    let init = Command::new(Subcommand::Init)
        .flag("--bare")
        .flag("--quiet")
        .flag_value(
            "--object-format",
            match format {
                ObjectFormat::Sha1 => "sha1",
                ObjectFormat::Sha256 => "sha256",
            },
        )
        .arg(tmp.path());
    git.output(&init).await?;
    fetch(deps, git, tmp.path(), source).await?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(tmp.path(), path) {
        Ok(()) => {
            tmp.disarm();
            Ok(())
        }
        Err(_) if path.exists() => Err(Error::AlreadyExists("repository exists already".into())),
        Err(e) => Err(Error::internal(format!("move repository into place: {e}"))),
    }
}

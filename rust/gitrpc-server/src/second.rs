//! A second repository named by a request (ReplicateRepository's `source`, an operation's
//! `start_repository`, a fork's source), which may live on another server: resolved to a
//! local path when this server has its storage (Gitaly's shortcut), else to the server the
//! call's `gitaly-servers` metadata names for it. Either way it can be asked about
//! (exists, object format, HEAD) and fetched from with `git fetch` into a repository of ours.

use std::path::{Path, PathBuf};

use gitrpc_git::objects::ObjectFormat;
use gitrpc_git::{Command, Git, Subcommand};
use gitrpc_proto::gitaly::Repository;
use tonic::metadata::MetadataMap;

use crate::deps::Deps;
use crate::error::{Error, Result};
use crate::relay::{self, Relay};
use crate::remote::RemoteServer;
use crate::servers::GitalyServers;

/// Where a second repository is.
pub enum Location {
    /// On a storage of this server: its path (the repository may not exist).
    Local(PathBuf),
    /// On another server.
    Remote(RemoteServer),
}

/// A second repository of a request.
pub struct SecondRepository {
    pub repository: Repository,
    pub location: Location,
}

impl SecondRepository {
    /// Resolve `repository` (a request's second repository) with the call's `metadata`.
    pub async fn resolve(
        deps: &Deps,
        metadata: &MetadataMap,
        repository: &Repository,
    ) -> Result<SecondRepository> {
        let location = if deps.locator.storage(&repository.storage_name).is_ok() {
            Location::Local(deps.locator.repo_path(Some(repository))?)
        } else {
            let servers = GitalyServers::from_metadata(metadata)?;
            let info = servers.get(&repository.storage_name)?;
            Location::Remote(deps.remotes.connect(info).await?)
        };
        Ok(SecondRepository {
            repository: repository.clone(),
            location,
        })
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.location, Location::Remote(_))
    }

    /// The server it is on, if it is another one.
    pub fn remote(&self) -> Option<&RemoteServer> {
        match &self.location {
            Location::Remote(r) => Some(r),
            Location::Local(_) => None,
        }
    }

    pub async fn exists(&self) -> Result<bool> {
        match &self.location {
            Location::Local(path) => Ok(crate::locator::is_git_dir(path)),
            Location::Remote(r) => r.repository_exists(&self.repository).await,
        }
    }

    /// Its hash (of an existing repository).
    pub async fn object_format(&self) -> Result<ObjectFormat> {
        use gitrpc_proto::gitaly::ObjectFormat as Wire;
        match &self.location {
            Location::Local(path) => Ok(ObjectFormat::of_repository(path)),
            Location::Remote(r) => match r.object_format(&self.repository).await? {
                Wire::Sha256 => Ok(ObjectFormat::Sha256),
                _ => Ok(ObjectFormat::Sha1),
            },
        }
    }

    /// The ref HEAD points to (`refs/heads/main`), even an unborn one; `None` if HEAD is
    /// detached or unreadable.
    pub async fn head(&self) -> Result<Option<String>> {
        match &self.location {
            Location::Local(path) => Ok(std::fs::read_to_string(path.join("HEAD"))
                .ok()
                .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))),
            Location::Remote(r) => r.head(&self.repository).await,
        }
    }

    /// `git fetch` from it into the repository at `target` (run with `git`, the call's):
    /// `extra` adds the flags and refspecs (after the URL); a remote one goes through a
    /// [`Relay`] to its server's upload-pack.
    pub async fn fetch_into(
        &self,
        deps: &Deps,
        git: &Git,
        target: &Path,
        extra: impl FnOnce(Command) -> Command,
    ) -> Result<()> {
        let cmd = Command::in_repo(target, Subcommand::Fetch);
        self.fetch_with(deps, git, cmd, extra).await
    }

    /// [`Self::fetch_into`] with the `git fetch` command given (`cmd`, e.g. one that writes
    /// into a quarantine).
    pub async fn fetch_with(
        &self,
        deps: &Deps,
        git: &Git,
        cmd: Command,
        extra: impl FnOnce(Command) -> Command,
    ) -> Result<()> {
        let (cmd, _relay) = match &self.location {
            Location::Local(path) => (extra(cmd.arg(path)), None),
            Location::Remote(remote) => {
                let relay = Relay::open(&deps.bridge_dir, remote.clone(), self.repository.clone())
                    .map_err(|e| Error::internal(format!("fetch relay: {e}")))?;
                let cmd = relay.apply(cmd, deps.hooks_dir.path()).arg(relay::URL);
                (extra(cmd), Some(relay))
            }
        };
        deps.hooks_dir
            .ensure()
            .map_err(|e| Error::internal(format!("hooks directory: {e}")))?;
        git.output(&cmd).await?;
        Ok(())
    }
}

//! Creation (atomic), removal, merge bases, WriteRef, and the size of a repository.

use std::path::{Path, PathBuf};

use gitrpc_git::{validate, Command, Subcommand};
use gitrpc_proto::gitaly::*;

use super::RepositoryServiceImpl;
use crate::error::{Error, Result};
use crate::tempdir::TempDir;

impl RepositoryServiceImpl {
    pub(super) async fn create(&self, req: CreateRepositoryRequest) -> Result<()> {
        let target = self.deps.locator.repo_path(req.repository.as_ref())?;
        if target.exists() {
            return Err(Error::AlreadyExists("repository exists already".into()));
        }
        let branch = if req.default_branch.is_empty() {
            "main".to_string()
        } else {
            let b = String::from_utf8(req.default_branch)
                .map_err(|_| Error::invalid("default branch is not UTF-8"))?;
            let b = b.strip_prefix("refs/heads/").unwrap_or(&b).to_string();
            validate::ref_name(format!("refs/heads/{b}").as_bytes())
                .map_err(|_| Error::invalid(format!("invalid default branch: {b:?}")))?;
            b
        };
        let format = match ObjectFormat::try_from(req.object_format) {
            Ok(ObjectFormat::Unspecified) | Ok(ObjectFormat::Sha1) => "sha1",
            Ok(ObjectFormat::Sha256) => "sha256",
            Err(_) => return Err(Error::invalid("unknown object format")),
        };
        let storage = self
            .deps
            .locator
            .storage(&req.repository.unwrap_or_default().storage_name)?;
        let tmp = TempDir::new_in_storage(storage, "create")?;
        let init = Command::new(Subcommand::Init)
            .flag("--bare")
            .flag("--quiet")
            .flag_value("--initial-branch", &branch)
            .flag_value("--object-format", format)
            .arg(tmp.path());
        self.deps.git.output(&init).await?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // rename(2) onto an existing non-empty directory fails, so a concurrent create loses
        // cleanly instead of mixing two repositories.
        match std::fs::rename(tmp.path(), &target) {
            Ok(()) => {
                tmp.disarm();
                Ok(())
            }
            Err(e) if target.exists() => {
                tracing::debug!(error = %e, "create lost a race");
                Err(Error::AlreadyExists("repository exists already".into()))
            }
            Err(e) => Err(Error::internal(format!("move repository into place: {e}"))),
        }
    }

    pub(super) async fn remove(&self, req: RemoveRepositoryRequest) -> Result<()> {
        let path = self.deps.locator.repo(req.repository.as_ref())?;
        let storage = self
            .deps
            .locator
            .storage(&req.repository.unwrap_or_default().storage_name)?;
        // Move out of sight first (atomic), then delete at leisure.
        let tmp = TempDir::new_in_storage(storage, "removed")?;
        let dest = tmp.path().join("repo");
        std::fs::rename(&path, &dest)
            .map_err(|e| Error::internal(format!("move repository away: {e}")))?;
        self.deps.catfile.evict(&path);
        tokio::task::spawn_blocking(move || drop(tmp))
            .await
            .map_err(Error::internal)?;
        Ok(())
    }

    pub(super) async fn merge_base(&self, req: FindMergeBaseRequest) -> Result<String> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.revisions.len() < 2 {
            return Err(Error::invalid("at least 2 revisions are required"));
        }
        let mut p = repo.spawn(&repo.cmd(Subcommand::MergeBase).revs(&req.revisions))?;
        let out = p.read_stdout_to_end().await?;
        // Like Gitaly: no common ancestor, or a revision that doesn't resolve, is an empty base.
        match p.wait().await {
            Ok(()) => Ok(String::from_utf8_lossy(&out).trim().to_string()),
            Err(e) if e.is_failure() => Ok(String::new()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn write_ref(&self, req: WriteRefRequest) -> Result<()> {
        let repo = self.deps.repo_for_write(req.repository.as_ref())?;
        if req.r#ref.is_empty() {
            return Err(Error::invalid("empty ref"));
        }
        if req.revision.is_empty() {
            return Err(Error::invalid("empty revision"));
        }
        validate::size("revision", &req.revision, validate::MAX_REVISION)?;
        validate::size("old revision", &req.old_revision, validate::MAX_REVISION)?;
        let name = validate::ref_name(&req.r#ref)?;
        if name == "HEAD" {
            let target = validate::ref_name(&req.revision)?;
            if !target.starts_with("refs/") {
                return Err(Error::invalid("HEAD must point to a reference under refs/"));
            }
            let cmd = repo.cmd(Subcommand::SymbolicRef).arg("HEAD").arg(target);
            repo.writing_refs(|| repo.output(&cmd)).await?;
            return Ok(());
        }
        if !name.starts_with("refs/") {
            return Err(Error::invalid(format!(
                "ref must start with refs/: {name:?}"
            )));
        }
        let new = repo
            .resolve(&req.revision, None)
            .await?
            .ok_or_else(|| Error::not_found("reference not found: revision does not exist"))?;
        let old = if req.old_revision.is_empty() {
            None
        } else {
            let zero = repo.zero_oid();
            Some(if req.old_revision == zero.as_bytes() {
                zero
            } else {
                repo.resolve(&req.old_revision, None)
                    .await?
                    .ok_or_else(|| {
                        Error::not_found("reference not found: old revision does not exist")
                    })?
            })
        };
        let update = || async {
            let mut tx = repo.ref_transaction().await?;
            tx.update(name, &new, old.as_deref())?;
            tx.commit().await
        };
        match repo.writing_refs(update).await {
            Ok(()) => Ok(()),
            // Whatever git refused (a moved or existing ref, a lock), as Gitaly's WriteRef.
            Err(e) if e.is_failure() => Err(Error::FailedPrecondition(format!(
                "update reference: {}",
                e.stderr().unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

pub(super) fn dir_size(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

//! CreateBundle and CreateRepositoryFromBundle: a repository as one file (`git bundle`),
//! out and back in, so an operator can move one between storages by hand.
//!
//! - CreateBundle streams `git bundle create - --all` (every ref; a full pack, spooled like
//!   upload-pack's output so a slow reader doesn't hold git). An empty repository is
//!   `FAILED_PRECONDITION` (`refusing to create empty bundle`; Gitaly passes git's failure
//!   on untyped here, and documents this code for CreateBundleFromRefList).
//! - CreateRepositoryFromBundle writes the streamed bundle to a temporary file in the
//!   target's storage, `git clone --mirror`s it into a temporary directory there, removes
//!   the `origin` remote the clone made, and renames the result into place, as Gitaly does.
//!   A target that exists is `ALREADY_EXISTS`; a bundle git can't read is
//!   `INVALID_ARGUMENT` (Gitaly: `INTERNAL`): it is the client's input. Nothing is left
//!   behind on any failure.

use std::io::Write;

use futures::StreamExt;
use gitrpc_git::spool::spool;
use gitrpc_git::{Command, Subcommand};
use gitrpc_proto::gitaly::*;
use tonic::{Response, Streaming};

use crate::accounting::Call;
use crate::deps::Deps;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};
use crate::tempdir::TempDir;

pub(super) fn create_bundle(
    deps: &std::sync::Arc<Deps>,
    req: CreateBundleRequest,
) -> Result<Response<RpcStream<CreateBundleResponse>>> {
    let repo = deps.repo(req.repository.as_ref())?;
    // `bundle create - --all`: constants of ours, given as flags (they come right after
    // `bundle`, and a positional argument of a subcommand without `--end-of-options` may not
    // start with `-`); nothing of the request is among them.
    let cmd = repo
        .cmd(Subcommand::Bundle)
        .flag("create")
        .flag("-")
        .flag("--all");
    let mut process = repo.spawn(&cmd)?;
    let deps = deps.clone();
    Ok(spawn_stream(move |sink| async move {
        let mut out = spool(process.take_stdout().expect("piped stdout"), &deps.spool);
        while let Some(data) = out.next_chunk().await.map_err(Error::from)? {
            sink.send(CreateBundleResponse {
                data: data.to_vec(),
            })
            .await?;
        }
        let (status, stderr) = process.wait_status().await?;
        if status.success() {
            Ok(())
        } else if stderr.contains("Refusing to create empty bundle") {
            Err(Error::FailedPrecondition(
                "refusing to create empty bundle".into(),
            ))
        } else {
            Err(Error::internal(format!(
                "create bundle: {status}: {stderr}"
            )))
        }
    }))
}

pub(super) async fn create_from_bundle(
    deps: &Deps,
    mut stream: Streaming<CreateRepositoryFromBundleRequest>,
) -> Result<()> {
    let first = stream
        .message()
        .await
        .map_err(status)?
        .ok_or_else(|| Error::invalid("empty request stream"))?;
    let target = first
        .repository
        .ok_or_else(|| Error::invalid("empty Repository"))?;
    let path = deps.locator.repo_path(Some(&target))?;
    if path.exists() {
        return Err(Error::AlreadyExists("repository exists already".into()));
    }
    let storage = deps.locator.storage(&target.storage_name)?;
    let tmp = TempDir::new_in_storage(storage, "bundle")?;
    let bundle = tmp.path().join("repo.bundle");
    let mut file = std::fs::File::create(&bundle)?;
    let mut size = first.data.len();
    file.write_all(&first.data)?;
    while let Some(msg) = stream.next().await {
        let data = msg.map_err(status)?.data;
        size += data.len();
        file.write_all(&data)?;
    }
    file.sync_all()?;
    drop(file);
    if size == 0 {
        return Err(Error::invalid("empty bundle"));
    }
    let git = match Call::current() {
        Some(call) => call.git(&deps.git),
        None => deps.git.clone(),
    };
    let repo = tmp.path().join("repo.git");
    let clone = Command::new(Subcommand::Clone)
        .flag("--mirror")
        .flag("--quiet")
        .arg(&bundle)
        .arg(&repo);
    match git.output(&clone).await {
        Ok(_) => {}
        Err(e) if e.is_failure() => {
            return Err(Error::invalid(format!(
                "invalid bundle: {}",
                e.stderr().unwrap_or_default()
            )))
        }
        Err(e) => return Err(e.into()),
    }
    let remove = Command::in_repo(&repo, Subcommand::Remote)
        .arg("remove")
        .arg("origin");
    git.output(&remove).await?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // The temporary directory (with the bundle) goes when `tmp` drops.
    match std::fs::rename(&repo, &path) {
        Ok(()) => Ok(()),
        Err(_) if path.exists() => Err(Error::AlreadyExists("repository exists already".into())),
        Err(e) => Err(Error::internal(format!("move repository into place: {e}"))),
    }
}

fn status(s: tonic::Status) -> Error {
    Error::Status(Box::new(s))
}

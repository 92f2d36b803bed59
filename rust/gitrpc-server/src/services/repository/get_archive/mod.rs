//! GetArchive: tar, tar.gz, tar.bz2 or zip of a commit's tree (or a directory of it), streamed
//! in 128 KiB messages as git writes it; nothing is held whole.
//! Gitaly: `internal/gitaly/service/repository/archive.go`.
//!
//! tar, zip and tar.gz are `git archive`'s own (git gzips in-process since 2.38); tar.bz2 is
//! git's tar compressed here ([`bzip2`]): git would run `sh -c bzip2`, a program outside the
//! one door. LFS objects are archived as their pointers (we have no LFS store), and there is
//! no archive cache.

mod bzip2;
mod paths;

use gitrpc_git::validate::gitaly::{self, RevisionRules};
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::get_archive_request::Format;
use gitrpc_proto::gitaly::{GetArchiveRequest, GetArchiveResponse};
use tonic::Response;

use super::RepositoryServiceImpl;
use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

fn no_path() -> Error {
    Error::FailedPrecondition("path doesn't exist".into())
}

/// `:(literal)<path>` (what a path means: no globbing), `:(exclude,literal)<path>`.
fn pathspec(magic: &str, path: &[u8]) -> Vec<u8> {
    let mut p = format!(":({magic})").into_bytes();
    p.extend_from_slice(path);
    p
}

/// The id of the entry at `path` of `commit`'s tree, if there is one (`ls-tree` takes any
/// bytes, a cat-file line doesn't). One path a call: with several, git lists the contents of
/// a directory that contains another.
async fn entry(repo: &Repo<'_>, commit: &str, path: &[u8]) -> Result<Option<String>> {
    let cmd = repo
        .cmd(Subcommand::LsTree)
        .flag("-z")
        .flag("--full-tree")
        .rev(commit)
        .path(pathspec("literal", path));
    let mut p = repo.spawn(&cmd)?;
    let out = p.read_stdout_to_end().await?;
    let (status, stderr) = p.wait_status().await?;
    if !status.success() {
        tracing::info!(%stderr, "GetArchive: ls-tree failed");
        return Err(no_path());
    }
    // `<mode> <type> <oid>\t<path>` (`--format=%(path)` would quote the path, even with -z).
    Ok(out.split(|&b| b == 0).find_map(|e| {
        let tab = e.iter().position(|&b| b == b'\t')?;
        let oid = e[..tab].rsplit(|&b| b == b' ').next()?;
        (&e[tab + 1..] == path).then(|| String::from_utf8_lossy(oid).into_owned())
    }))
}

impl RepositoryServiceImpl {
    pub(super) async fn get_archive(
        &self,
        req: GetArchiveRequest,
    ) -> Result<Response<RpcStream<GetArchiveResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let path = paths::clean_relative(&req.path)?;
        let mut excludes = req
            .exclude
            .iter()
            .map(|e| paths::clean_relative(e))
            .collect::<Result<Vec<_>>>()?;
        gitaly::revision(req.commit_id.as_bytes(), RevisionRules::PLAIN)
            .map_err(|e| Error::invalid(format!("invalid commitId: {e}")))?;
        let format = Format::try_from(req.format).map_err(|_| Error::invalid("invalid format"))?;
        if req.include_lfs_blobs {
            tracing::debug!("GetArchive: include_lfs_blobs: LFS pointers are archived as they are");
        }

        // Preconditions: the tree, the path and every exclude exist.
        let commit = req.commit_id.as_str();
        let tree = repo
            .catfile()?
            .info(&format!("{commit}^{{tree}}"))
            .await?
            .ok_or_else(no_path)?;
        let whole = path == b".";
        if whole && tree.oid == repo.empty_tree_oid() {
            return Err(no_path());
        }
        let path_oid = match whole {
            true => None,
            false => Some(entry(&repo, commit, &path).await?.ok_or_else(no_path)?),
        };
        for (i, ex) in excludes.iter().enumerate() {
            if entry(&repo, commit, ex).await?.is_none() {
                return Err(Error::FailedPrecondition(format!(
                    "exclude[{i}] doesn't exist"
                )));
            }
        }

        // After the preconditions, as Gitaly (with the whole tree, "./" is no exclude's
        // prefix: elide_path then takes no excludes).
        if req.elide_path {
            let mut dir = path.clone();
            dir.push(b'/');
            for ex in &mut excludes {
                if !ex.starts_with(&dir) {
                    return Err(Error::invalid(format!(
                        "invalid exclude: {} is not a subdirectory of {}",
                        gitaly::go_quote(ex),
                        gitaly::go_quote(&path)
                    )));
                }
            }
        }
        let mut prefix = req.prefix.clone().into_bytes();
        prefix.push(b'/');
        let mut cmd = repo
            .cmd(Subcommand::Archive)
            .flag(match format {
                Format::Zip => "--format=zip",
                Format::Tar | Format::TarBz2 => "--format=tar",
                Format::TarGz => "--format=tar.gz",
            })
            .flag_value_bytes("--prefix", &prefix);
        if req.elide_path && !whole {
            // `<commit>:<path>` as its tree's id (a path may hold spaces no revision may).
            let oid = path_oid.ok_or_else(no_path)?;
            cmd = cmd.rev(oid).no_paths();
            for ex in &excludes {
                cmd = cmd.path(pathspec("exclude,literal", &ex[path.len() + 1..]));
            }
        } else {
            cmd = cmd.rev(commit).no_paths();
            if !req.elide_path {
                cmd = cmd.path(pathspec("literal", &path));
            }
            for ex in &excludes {
                cmd = cmd.path(pathspec("exclude,literal", ex));
            }
        }
        let mut process = repo.spawn(&cmd)?;
        Ok(spawn_stream(move |sink| async move {
            let mut stdout = process
                .take_stdout()
                .ok_or_else(|| Error::internal("archive has no stdout"))?;
            let wrap = |data| GetArchiveResponse { data };
            match format {
                Format::TarBz2 => bzip2::compress(&mut stdout, &sink, wrap).await?,
                _ => {
                    sink.send_reader(&mut stdout, wrap).await?;
                }
            }
            drop(stdout);
            let (status, stderr) = process.wait_status().await?;
            if !status.success() {
                tracing::info!(%stderr, "GetArchive: git archive failed");
                return Err(Error::internal(format!(
                    "archive: exit status {}",
                    status.code().unwrap_or(-1)
                )));
            }
            Ok(())
        }))
    }
}

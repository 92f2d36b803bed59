//! RawBlame: `git blame --porcelain` (`-p`), streamed unchanged in 128 KiB messages.
//! Gitaly: `internal/gitaly/service/commit/raw_blame.go`.

use std::os::unix::ffi::OsStrExt;

use gitrpc_git::validate::gitaly::{self, RevisionRules};
use gitrpc_git::{BlameError, ObjectType, Subcommand};
use gitrpc_proto::gitaly::raw_blame_error::{
    Error as Kind, InvalidIgnoreRevsFormatError, OutOfRangeError, ResolveIgnoreRevsError,
};
use gitrpc_proto::gitaly::{PathNotFoundError, RawBlameError, RawBlameRequest, RawBlameResponse};
use tonic::{Code, Response};

use super::CommitServiceImpl;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};
use crate::tempdir::TempDir;

fn blame_error(code: Code, message: &str, kind: Kind) -> Error {
    Error::detailed(
        code,
        message,
        "RawBlameError",
        &RawBlameError { error: Some(kind) },
    )
}

/// Go's `filepath.IsLocal` on Unix: not empty, not absolute, and not escaping its directory
/// once cleaned (`a/../b` is local, `a/../../b` is not).
fn is_local(path: &[u8]) -> bool {
    if path.is_empty() || path.starts_with(b"/") {
        return false;
    }
    let mut depth = 0usize;
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if depth == 0 => return false,
            b".." => depth -= 1,
            _ => depth += 1,
        }
    }
    true
}

/// `<digits>,<digits>`.
fn valid_range(r: &[u8]) -> bool {
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    match r.iter().position(|&b| b == b',') {
        Some(i) => digits(&r[..i]) && digits(&r[i + 1..]),
        None => false,
    }
}

impl CommitServiceImpl {
    pub(super) async fn raw_blame(
        &self,
        req: RawBlameRequest,
    ) -> Result<Response<RpcStream<RawBlameResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        gitaly::revision(&req.revision, RevisionRules::PLAIN)?;
        if req.path.is_empty() {
            return Err(Error::invalid("empty Path"));
        }
        if !is_local(&req.path) {
            return Err(Error::invalid("path escapes repository root"));
        }
        if !req.range.is_empty() && !valid_range(&req.range) {
            return Err(Error::invalid("invalid Range"));
        }
        let mut cmd = repo.cmd(Subcommand::Blame).flag("-p");
        if !req.range.is_empty() {
            cmd = cmd.short_flag_value("-L", &req.range);
        }
        // The ignore-revs blob goes to a private file for git, removed with the call.
        let mut ignore_revs: Option<TempDir> = None;
        if !req.ignore_revisions_blob.is_empty() {
            let name = &req.ignore_revisions_blob;
            let resolve = |code, message: &str| {
                blame_error(
                    code,
                    message,
                    Kind::ResolveIgnoreRevs(ResolveIgnoreRevsError {
                        ignore_revisions_blob: name.clone(),
                    }),
                )
            };
            // Names cat-file can't take name nothing.
            let object = std::str::from_utf8(name)
                .ok()
                .filter(|n| !n.contains(['\n', '\0']));
            let mut cat = repo.catfile()?;
            let info = match object {
                Some(o) => cat.contents(o).await?,
                None => None,
            };
            let Some(info) = info else {
                return Err(resolve(Code::NotFound, "cannot resolve ignore-revs blob"));
            };
            if info.kind != ObjectType::Blob {
                cat.skip_rest().await?;
                cat.ensure_clean()?;
                return Err(resolve(
                    Code::InvalidArgument,
                    "ignore revision is not a blob",
                ));
            }
            let data = cat.read_rest().await?;
            let storage = self.deps.locator.storage(&repo.repository.storage_name)?;
            let dir = TempDir::new_in_storage(storage, "blame-ignore-revs")?;
            let file = dir.path().join("ignore-revs");
            tokio::fs::write(&file, &data).await?;
            cmd = cmd.flag_value_bytes("--ignore-revs-file", file.as_os_str().as_bytes());
            ignore_revs = Some(dir);
        }
        let cmd = cmd.rev(&req.revision).path(&req.path);
        let mut p = repo.spawn(&cmd)?;
        Ok(spawn_stream(move |sink| async move {
            let _ignore_revs = ignore_revs;
            let mut stdout = p
                .take_stdout()
                .ok_or_else(|| Error::internal("blame has no stdout"))?;
            sink.send_reader(&mut stdout, |data| RawBlameResponse { data })
                .await?;
            drop(stdout);
            let (status, stderr) = p.wait_status().await?;
            if status.success() {
                return Ok(());
            }
            Err(match BlameError::classify(&stderr) {
                Some(BlameError::NoSuchPath) => blame_error(
                    Code::NotFound,
                    "path not found in revision",
                    Kind::PathNotFound(PathNotFoundError { path: req.path }),
                ),
                Some(BlameError::InvalidObjectName { rest }) => blame_error(
                    Code::NotFound,
                    "invalid object name",
                    Kind::InvalidIgnoreRevsFormat(InvalidIgnoreRevsFormatError {
                        content: rest.into_bytes(),
                    }),
                ),
                Some(BlameError::OutOfRange { lines }) => blame_error(
                    Code::InvalidArgument,
                    "range is outside of the file length",
                    Kind::OutOfRange(OutOfRangeError {
                        actual_lines: lines,
                    }),
                ),
                None => {
                    tracing::info!(%stderr, "RawBlame: git blame failed");
                    Error::internal(format!(
                        "blaming file: exit status {}",
                        status.code().unwrap_or(-1)
                    ))
                }
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_ranges() {
        for p in ["a", "a/b", "a/../b", "./a", ".", "a//b"] {
            assert!(is_local(p.as_bytes()), "{p}");
        }
        for p in ["", "/etc/passwd", "..", "../a", "a/../../b", "a/../.."] {
            assert!(!is_local(p.as_bytes()), "{p}");
        }
        for r in ["1,5", "10,2", "0,0"] {
            assert!(valid_range(r.as_bytes()), "{r}");
        }
        for r in ["1", "1,", ",5", "1,5,", "-1,5", "1,+5", "a,b", " 1,5"] {
            assert!(!valid_range(r.as_bytes()), "{r}");
        }
    }
}

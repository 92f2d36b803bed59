//! What the blob listings share: the blobs to list (from `rev-list --objects` or from every
//! object of the repository), each read through the pooled cat-file in 128 KiB pieces, and
//! the LFS pointer test.

use gitrpc_git::lfs::{parse_pointer, POINTER_MAX_SIZE};
use gitrpc_git::{Lease, ObjectType, Process, Subcommand};
use gitrpc_proto::gitaly::LfsPointer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStdout;

use crate::deps::Repo;
use crate::error::{Error, Result};

/// Bytes of blob data per piece (Gitaly's stream writer).
pub const PIECE: usize = 128 * 1024;

/// One blob of a listing: its id and, from rev-list, the path it was seen at.
pub struct Listed {
    pub oid: String,
    pub path: Vec<u8>,
}

/// Where the blobs come from.
pub struct Source {
    lines: BufReader<ChildStdout>,
    /// From cat-file's `--batch-all-objects` (`<oid> <type> <size>`), not rev-list.
    all: bool,
    /// At most this size (all objects only).
    max_size: Option<u64>,
    _process: Process,
}

/// `git rev-list --stdin --objects` over client revisions (pseudo revisions and path-scoped
/// ones allowed), blobs only; `filters` are further `--filter=` values.
pub async fn rev_list(repo: &Repo<'_>, revisions: &[String], filters: &[&str]) -> Result<Source> {
    if revisions.is_empty() {
        return Err(Error::invalid("missing revisions"));
    }
    let mut cmd = repo
        .cmd(Subcommand::RevList)
        .flag("--stdin")
        .flag("--in-commit-order")
        .flag("--objects")
        .flag("--object-names");
    for f in filters {
        cmd = cmd.flag_value("--filter", *f);
    }
    let cmd = cmd
        .flag("--filter=object:type=blob")
        .flag("--filter-provided-objects")
        .stdin();
    let input = cmd
        .stdin_revisions(revisions, true)
        .map_err(|e| Error::invalid(format!("invalid revision: {e}")))?;
    let mut process = repo.spawn(&cmd)?;
    process.write_stdin_and_close(&input).await?;
    source(process, false, None)
}

/// Every blob of the object database (`cat-file --batch-all-objects`), up to `max_size`.
pub fn all_objects(repo: &Repo<'_>, max_size: Option<u64>) -> Result<Source> {
    let cmd = repo
        .cmd(Subcommand::CatFile)
        .flag("--batch-check")
        .flag("--batch-all-objects")
        .flag("--buffer")
        .flag("--unordered");
    source(repo.spawn(&cmd)?, true, max_size)
}

fn source(mut process: Process, all: bool, max_size: Option<u64>) -> Result<Source> {
    let stdout = process
        .take_stdout()
        .ok_or_else(|| Error::internal("git has no stdout"))?;
    Ok(Source {
        lines: BufReader::new(stdout),
        all,
        max_size,
        _process: process,
    })
}

impl Source {
    /// The next blob; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Listed>> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.lines.read_until(b'\n', &mut line).await? == 0 {
                return Ok(None);
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let (oid, rest) = match line.iter().position(|&b| b == b' ') {
                Some(i) => (&line[..i], &line[i + 1..]),
                None => (&line[..], &[][..]),
            };
            let oid = String::from_utf8_lossy(oid).into_owned();
            if !self.all {
                return Ok(Some(Listed {
                    oid,
                    path: rest.to_vec(),
                }));
            }
            let mut f = rest.split(|&b| b == b' ');
            if f.next() != Some(b"blob") {
                continue;
            }
            let size: u64 = f
                .next()
                .and_then(|s| std::str::from_utf8(s).ok()?.parse().ok())
                .unwrap_or(0);
            if self.max_size.is_some_and(|m| size > m) {
                continue;
            }
            return Ok(Some(Listed {
                oid,
                path: Vec::new(),
            }));
        }
    }
}

/// A blob's contents as (oid, size, data) pieces: the first with its id and size, the rest
/// with data only; `bytes_limit` 0: no data, negative: all, else the first bytes.
pub async fn pieces(
    cat: &mut Lease,
    oid: &str,
    bytes_limit: i64,
    mut emit: impl FnMut(Option<(String, i64)>, Vec<u8>),
) -> Result<()> {
    if bytes_limit == 0 {
        let info = cat
            .info(oid)
            .await?
            .ok_or_else(|| Error::internal(format!("object not found: {oid}")))?;
        emit(Some((info.oid, info.size as i64)), Vec::new());
        return Ok(());
    }
    let info = cat
        .contents(oid)
        .await?
        .ok_or_else(|| Error::internal(format!("object not found: {oid}")))?;
    let mut remaining = match bytes_limit {
        n if n < 0 => info.size,
        n => info.size.min(n as u64),
    };
    let mut first = Some((info.oid, info.size as i64));
    loop {
        let want = remaining.min(PIECE as u64) as usize;
        let mut buf = vec![0u8; want];
        let n = gitrpc_git::fill(&mut **cat, &mut buf).await?;
        buf.truncate(n);
        remaining -= n as u64;
        if n == 0 && first.is_none() {
            break;
        }
        emit(first.take(), buf);
        if remaining == 0 || n == 0 {
            break;
        }
    }
    cat.skip_rest().await?;
    Ok(())
}

/// The LFS pointer `oid` is, if it is a blob of at most `max` bytes that reads as one.
pub async fn lfs_pointer(cat: &mut Lease, oid: &str, max: u64) -> Result<Option<LfsPointer>> {
    let info = cat
        .info(oid)
        .await?
        .ok_or_else(|| Error::internal(format!("object not found: {oid}")))?;
    if info.kind != ObjectType::Blob || info.size > max.min(POINTER_MAX_SIZE) {
        return Ok(None);
    }
    let Some((info, data)) = cat.read_object(oid).await? else {
        return Err(Error::internal(format!("object not found: {oid}")));
    };
    Ok(parse_pointer(&data).map(|p| LfsPointer {
        size: data.len() as i64,
        oid: info.oid,
        file_size: p.size,
        file_oid: p.oid,
        data,
    }))
}

//! GetRawChanges: every blob changed between two revisions (`git diff --raw -z`), with its
//! id and size; submodules have no blob.
//! Gitaly: `internal/gitaly/service/repository/raw_changes.go`.

use gitrpc_git::validate::gitaly;
use gitrpc_git::Subcommand;
use gitrpc_proto::gitaly::get_raw_changes_response::raw_change::Operation;
use gitrpc_proto::gitaly::get_raw_changes_response::RawChange;
use gitrpc_proto::gitaly::{GetRawChangesRequest, GetRawChangesResponse};
use tonic::Response;

use super::RepositoryServiceImpl;
use crate::batch::{chunked, Limits};
use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::stream::RpcStream;

/// One record of `git diff --raw -z`.
struct Record<'a> {
    src_mode: &'a [u8],
    dst_mode: &'a [u8],
    src_oid: &'a [u8],
    dst_oid: &'a [u8],
    status: u8,
    src: &'a [u8],
    dst: Option<&'a [u8]>,
}

/// `:<src mode> <dst mode> <src oid> <dst oid> <status>\0<src>\0[<dst>\0 for C and R]`.
fn records(out: &[u8]) -> Result<Vec<Record<'_>>> {
    let bad = || Error::internal("unexpected diff --raw output");
    let mut fields = out.split(|&b| b == 0);
    let mut list = Vec::new();
    while let Some(meta) = fields.next() {
        if meta.is_empty() {
            continue;
        }
        let meta = meta.strip_prefix(b":").ok_or_else(bad)?;
        let parts: Vec<&[u8]> = meta.split(|&b| b == b' ').collect();
        let [src_mode, dst_mode, src_oid, dst_oid, status] = parts[..] else {
            return Err(bad());
        };
        let status = *status.first().ok_or_else(bad)?;
        let src = fields.next().ok_or_else(bad)?;
        let dst = match status {
            b'C' | b'R' => Some(fields.next().ok_or_else(bad)?),
            _ => None,
        };
        list.push(Record {
            src_mode,
            dst_mode,
            src_oid,
            dst_oid,
            status,
            src,
            dst,
        });
    }
    Ok(list)
}

fn mode(m: &[u8]) -> i32 {
    std::str::from_utf8(m)
        .ok()
        .and_then(|m| i32::from_str_radix(m, 8).ok())
        .unwrap_or(0)
}

/// `rev` names an object here (the zero id aside, which the caller handles).
async fn exists(repo: &Repo<'_>, rev: &str) -> Result<bool> {
    if rev.is_empty() || rev.contains(['\n', '\0']) {
        return Ok(false);
    }
    Ok(repo.catfile()?.info(rev).await?.is_some())
}

impl RepositoryServiceImpl {
    pub(super) async fn get_raw_changes(
        &self,
        req: GetRawChangesRequest,
    ) -> Result<Response<RpcStream<GetRawChangesResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let zero = repo.zero_oid();
        for (name, rev) in [("from", &req.from_revision), ("to", &req.to_revision)] {
            if *rev != zero && !exists(&repo, rev).await? {
                return Err(Error::invalid(format!(
                    "invalid '{name}' revision: {}",
                    gitaly::go_quote(rev.as_bytes())
                )));
            }
        }
        let wrap = |raw_changes| GetRawChangesResponse { raw_changes };
        if req.to_revision == zero {
            return Ok(chunked(Vec::new(), Limits::GITALY, wrap));
        }
        let from = match req.from_revision == zero {
            true => repo.empty_tree_oid().to_string(),
            false => req.from_revision.clone(),
        };
        let cmd = repo
            .cmd(Subcommand::Diff)
            .flag("--raw")
            .flag("-z")
            .flag("--no-abbrev")
            .rev(&from)
            .rev(&req.to_revision)
            .no_paths();
        let out = repo.output(&cmd).await?.stdout;
        let mut cat = repo.catfile()?;
        let mut changes = Vec::new();
        for r in records(&out)? {
            let dst_gone = r.dst_oid.iter().all(|&b| b == b'0');
            let (oid, blob_mode) = match dst_gone {
                true => (r.src_oid, r.src_mode),
                false => (r.dst_oid, r.dst_mode),
            };
            let (mut blob_id, mut size) = (String::new(), 0);
            if blob_mode != b"160000" {
                let oid = String::from_utf8_lossy(oid);
                if let Some(info) = cat.info(&oid).await? {
                    blob_id = info.oid;
                    size = info.size as i64;
                }
            }
            let (operation, new_path, old_path) = match (r.status, r.dst) {
                (b'A', _) => (Operation::Added, r.src, &b""[..]),
                (b'C', Some(dst)) => (Operation::Copied, dst, r.src),
                (b'D', _) => (Operation::Deleted, &b""[..], r.src),
                (b'M', _) => (Operation::Modified, r.src, r.src),
                (b'R', Some(dst)) => (Operation::Renamed, dst, r.src),
                (b'T', _) => (Operation::TypeChanged, r.src, r.src),
                _ => (Operation::Unknown, r.src, r.src),
            };
            changes.push(RawChange {
                blob_id,
                size,
                operation: operation as i32,
                old_mode: mode(r.src_mode),
                new_mode: mode(r.dst_mode),
                new_path_bytes: new_path.to_vec(),
                old_path_bytes: old_path.to_vec(),
            });
        }
        Ok(chunked(changes, Limits::GITALY, wrap))
    }
}

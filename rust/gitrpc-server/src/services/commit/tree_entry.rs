//! TreeEntry: one entry of a tree by path, a blob's content streamed.

use gitrpc_git::objects::{EntryKind, TreeWalker};
use gitrpc_git::{validate, ObjectInfo, ObjectType};
use gitrpc_proto::gitaly::*;
use tonic::Response;

use super::{CommitServiceImpl, BLOB_CHUNK};
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

/// A tree entry's blob is a blob, and not over `max_size` (when that is set).
fn check_blob(info: &ObjectInfo, max_size: i64) -> Result<()> {
    if info.kind != ObjectType::Blob {
        return Err(Error::internal(format!(
            "mismatched object type: object-oid={} entry-type=blob object-type={}",
            info.oid,
            info.kind.as_str()
        )));
    }
    let size = info.size as i64;
    if max_size > 0 && size > max_size {
        return Err(Error::FailedPrecondition(format!(
            "object size ({size}) is bigger than the maximum allowed size ({max_size})"
        )));
    }
    Ok(())
}

impl CommitServiceImpl {
    pub(super) async fn tree_entry(
        &self,
        req: TreeEntryRequest,
    ) -> Result<Response<RpcStream<TreeEntryResponse>>> {
        use tree_entry_response::ObjectType as Kind;
        let repo = self.deps.repo(req.repository.as_ref())?;
        let rev = validate::revision(&req.revision)?;
        if req.path.is_empty() {
            return Err(Error::invalid("empty Path"));
        }
        if req.limit < 0 {
            return Err(Error::invalid("negative Limit"));
        }
        if req.max_size < 0 {
            return Err(Error::invalid("negative MaxSize"));
        }
        let mut path = validate::tree_path(&req.path)?;
        if path.len() > 1 {
            path = path.trim_end_matches('/');
        }
        let mut walker = TreeWalker::new(repo.catfile()?);
        let entry = walker
            .entry(rev, path.as_bytes())
            .await?
            .ok_or_else(|| Error::not_found("tree entry not found"))?;
        let mut cat = walker.into_cat();
        let single = |msg: TreeEntryResponse| -> Response<RpcStream<TreeEntryResponse>> {
            Response::new(Box::pin(tokio_stream::once(Ok(msg))))
        };
        let mode = entry.mode as i32;
        match entry.kind {
            EntryKind::Submodule => {
                return Ok(single(TreeEntryResponse {
                    r#type: Kind::Commit as i32,
                    oid: entry.oid,
                    size: 0,
                    mode,
                    data: Vec::new(),
                }))
            }
            EntryKind::Tree => {
                let info = cat
                    .info(&entry.oid)
                    .await?
                    .ok_or_else(|| Error::internal(format!("tree {} is missing", entry.oid)))?;
                return Ok(single(TreeEntryResponse {
                    r#type: Kind::Tree as i32,
                    oid: info.oid,
                    size: info.size as i64,
                    mode,
                    data: Vec::new(),
                }));
            }
            EntryKind::Blob => {}
        }
        // A blob is read with its header: the parent tree and the blob are the only two
        // round trips. With a size bound, its header comes first (an oversized blob is
        // refused without sending it through the pipe).
        let checked = if req.max_size > 0 {
            let info = cat
                .info(&entry.oid)
                .await?
                .ok_or_else(|| Error::internal(format!("blob {} is missing", entry.oid)))?;
            check_blob(&info, req.max_size)?;
            true
        } else {
            false
        };
        let info = cat
            .contents(&entry.oid)
            .await?
            .ok_or_else(|| Error::internal(format!("blob {} is missing", entry.oid)))?;
        if !checked {
            if let Err(e) = check_blob(&info, req.max_size) {
                cat.skip_rest().await?;
                return Err(e);
            }
        }
        let size = info.size as i64;
        let want = if req.limit > 0 {
            size.min(req.limit)
        } else {
            size
        } as usize;
        let first = TreeEntryResponse {
            r#type: Kind::Blob as i32,
            oid: info.oid.clone(),
            size,
            mode,
            data: Vec::new(),
        };
        if want == 0 {
            cat.skip_rest().await?;
            return Ok(single(first));
        }
        let oid = info.oid;
        Ok(spawn_stream(move |sink| async move {
            let mut first = Some(first);
            let mut left = want;
            let mut buf = vec![0u8; BLOB_CHUNK];
            while left > 0 {
                let cap = left.min(BLOB_CHUNK);
                let filled = gitrpc_git::fill(&mut *cat, &mut buf[..cap]).await?;
                if filled == 0 {
                    return Err(Error::internal(format!("blob {oid} truncated")));
                }
                left -= filled;
                // Only the first message carries type, oid, size and mode.
                let mut msg = first.take().unwrap_or_default();
                msg.data = buf[..filled].to_vec();
                sink.send(msg).await?;
            }
            cat.skip_rest().await?;
            Ok(())
        }))
    }
}

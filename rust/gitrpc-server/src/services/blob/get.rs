//! GetBlob and GetBlobs, served through the pooled `cat-file` processes.
//!
//! Blob contents are streamed in [`CHUNK`]-sized messages straight from cat-file; nothing is
//! buffered whole. A cancelled call drops its lease mid-object, so the (dirty) cat-file
//! process is killed instead of going back to the pool.

use std::path::PathBuf;

use gitrpc_git::objects::{EntryKind, TreeWalker};
use gitrpc_git::{validate, CatFilePool, Lease, ObjectType};
use gitrpc_proto::gitaly::get_blobs_request::RevisionPath;
use gitrpc_proto::gitaly::{
    GetBlobRequest, GetBlobResponse, GetBlobsRequest, GetBlobsResponse, ObjectType as PbObjectType,
};
use tonic::Response;

use super::BlobServiceImpl;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream, Sink};

/// Bytes of blob data per message (Gitaly's stream writer uses the same size).
const CHUNK: usize = 128 * 1024;

/// How many content bytes to send of an object of `size` bytes: a negative limit means all.
fn read_limit(limit: i64, size: u64) -> u64 {
    if limit < 0 {
        size
    } else {
        size.min(limit as u64)
    }
}

/// The next piece (at most [`CHUNK`] bytes, at most `*remaining`) of the object being read;
/// empty when `*remaining` is 0 or the object ended.
async fn next_piece(cat: &mut Lease, remaining: &mut u64) -> Result<Vec<u8>> {
    let want = (*remaining).min(CHUNK as u64) as usize;
    let mut buf = vec![0u8; want];
    let filled = gitrpc_git::fill(&mut **cat, &mut buf).await?;
    buf.truncate(filled);
    *remaining -= filled as u64;
    Ok(buf)
}

async fn get_blob(
    sink: Sink<GetBlobResponse>,
    mut cat: Lease,
    object: String,
    limit: i64,
) -> Result<()> {
    let Some(info) = cat.contents(&object).await? else {
        // Gitaly: a missing object is one empty message.
        return sink.send(GetBlobResponse::default()).await;
    };
    if info.kind != ObjectType::Blob {
        cat.skip_rest().await?;
        return sink.send(GetBlobResponse::default()).await;
    }
    let mut remaining = read_limit(limit, info.size);
    let mut msg = GetBlobResponse {
        size: info.size as i64,
        oid: info.oid,
        data: Vec::new(),
    };
    if remaining == 0 {
        cat.skip_rest().await?;
        return sink.send(msg).await;
    }
    while remaining > 0 {
        let data = next_piece(&mut cat, &mut remaining).await?;
        if data.is_empty() {
            break;
        }
        msg.data = data;
        sink.send(std::mem::take(&mut msg)).await?;
    }
    // Drain what the limit cut off (large remainders leave the process dirty: it is killed).
    cat.skip_rest().await?;
    Ok(())
}

async fn get_blobs(
    sink: Sink<GetBlobsResponse>,
    pool: CatFilePool,
    repo: PathBuf,
    revision_paths: Vec<RevisionPath>,
    limit: i64,
) -> Result<()> {
    let mut walker = TreeWalker::new(pool.get(&repo)?);
    for rp in revision_paths {
        let mut path = rp.path;
        if path.len() > 1 {
            while path.last() == Some(&b'/') {
                path.pop();
            }
        }
        let entry = walker.entry(&rp.revision, &path).await?;
        let mut msg = GetBlobsResponse {
            revision: rp.revision,
            path,
            ..Default::default()
        };
        let Some(entry) = entry else {
            sink.send(msg).await?;
            continue;
        };
        msg.mode = entry.mode as i32;
        msg.oid = entry.oid.clone();
        match entry.kind {
            EntryKind::Submodule => {
                msg.is_submodule = true;
                msg.r#type = PbObjectType::Commit as i32;
                sink.send(msg).await?;
            }
            EntryKind::Tree => {
                let info = walker.cat().info(&entry.oid).await?;
                msg.size = info.map_or(0, |i| i.size as i64);
                msg.r#type = PbObjectType::Tree as i32;
                sink.send(msg).await?;
            }
            EntryKind::Blob => {
                msg.r#type = PbObjectType::Blob as i32;
                send_blob_entry(&sink, walker.cat(), msg, limit).await?;
                // A blob cut short by the limit may leave its rest in the pipe.
                walker.cat().ensure_clean()?;
            }
        }
    }
    Ok(())
}

/// Send a blob found in a tree: metadata and the first chunk, then data-only messages.
async fn send_blob_entry(
    sink: &Sink<GetBlobsResponse>,
    cat: &mut Lease,
    mut msg: GetBlobsResponse,
    limit: i64,
) -> Result<()> {
    if limit == 0 {
        let info = cat.info(&msg.oid).await?;
        msg.size = info.map_or(0, |i| i.size as i64);
        return sink.send(msg).await;
    }
    let Some(info) = cat.contents(&msg.oid).await? else {
        return Err(Error::internal(format!(
            "object {} of a tree is missing",
            msg.oid
        )));
    };
    if info.kind != ObjectType::Blob {
        cat.skip_rest().await?;
        return Err(Error::internal(format!(
            "blob got unexpected type {:?}",
            info.kind.as_str()
        )));
    }
    msg.size = info.size as i64;
    let mut remaining = read_limit(limit, info.size);
    let mut first = Some(msg);
    loop {
        let data = next_piece(cat, &mut remaining).await?;
        let mut m = match first.take() {
            Some(m) => m,
            None if data.is_empty() => break,
            None => GetBlobsResponse::default(),
        };
        let last = data.is_empty() || remaining == 0;
        m.data = data;
        sink.send(m).await?;
        if last {
            break;
        }
    }
    cat.skip_rest().await?;
    Ok(())
}

impl BlobServiceImpl {
    pub(super) async fn get_blob(
        &self,
        req: GetBlobRequest,
    ) -> Result<Response<RpcStream<GetBlobResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.oid.is_empty() {
            return Err(Error::invalid("empty Oid"));
        }
        let object = validate::revision(req.oid.as_bytes())
            .map_err(Error::from)?
            .to_string();
        let cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| {
            get_blob(sink, cat, object, req.limit)
        }))
    }

    pub(super) async fn get_blobs(
        &self,
        req: GetBlobsRequest,
    ) -> Result<Response<RpcStream<GetBlobsResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.revision_paths.is_empty() {
            return Err(Error::invalid("empty RevisionPaths"));
        }
        for rp in &req.revision_paths {
            validate::revision(rp.revision.as_bytes()).map_err(Error::from)?;
            validate::size("path", &rp.path, validate::MAX_PATH).map_err(Error::from)?;
            // As Gitaly: a revision names a tree-ish; `rev:path` goes in the path field.
            if rp.revision.contains(':') || rp.revision.contains('\\') {
                return Err(Error::invalid(format!(
                    "revision can't contain ':' or '\\': {:?}",
                    rp.revision
                )));
            }
        }
        let pool = self.deps.catfile.clone();
        let path = repo.path.clone();
        Ok(spawn_stream(move |sink| {
            get_blobs(sink, pool, path, req.revision_paths, req.limit)
        }))
    }
}

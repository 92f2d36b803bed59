//! RepositoryInfo: statistics of references and objects, read from the file system without
//! git ([`stats`]), in Gitaly's shape: `commit_graph`, `bitmap`, `multi_pack_index`,
//! `multi_pack_index_bitmap` and `alternates` only when they exist.
//! A repository linked to an object pool (its first alternate is `<pool>/objects`, a
//! repository in the same storage) reports the pool's loose objects, packs and size added to
//! its own, and the pool's bitmap and multi-pack-index, as Gitaly does.
//! Gitaly: `internal/gitaly/service/repository/repository_info.go`, `internal/git/stats/`.

mod stats;

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gitrpc_proto::gitaly::repository_info_response::references_info::ReferenceBackend;
use gitrpc_proto::gitaly::repository_info_response::{
    AlternatesInfo, BitmapInfo, CommitGraphInfo, MultiPackIndexInfo, ObjectsInfo, ReferencesInfo,
};
use gitrpc_proto::gitaly::{RepositoryInfoRequest, RepositoryInfoResponse};

use super::RepositoryServiceImpl;
use crate::error::{Error, Result};
use stats::Stats;

/// The object pool `s`'s repository (at `repo`) is linked to: the repository whose
/// `objects` directory its first alternate names, if that lies in `storage` and is a
/// repository other than this one. Anything else (an alternate elsewhere) is reported, not
/// read.
fn pool_of(s: &Stats, repo: &Path, storage: &Path) -> Option<PathBuf> {
    let first = s.alternates.as_ref()?.directories.first()?;
    let objects = repo.join("objects").join(first);
    let pool = objects.canonicalize().ok()?.parent()?.to_path_buf();
    let inside = storage
        .canonicalize()
        .ok()
        .is_some_and(|root| pool.starts_with(root));
    let own = repo.canonicalize().ok().is_some_and(|r| r == pool);
    (inside && !own && crate::locator::is_git_dir(&pool)).then_some(pool)
}

impl Stats {
    /// Add the pool's objects (Gitaly's `mergePoolInfo`): its loose objects, packs and size
    /// count too, and its bitmap and multi-pack-index are the ones reported.
    fn merge_pool(&mut self, pool: &Path) -> io::Result<()> {
        let cutoff = SystemTime::now() - stats::STALE_GRACE;
        let (l, p) = (stats::loose(pool, cutoff)?, stats::packs(pool)?);
        self.size += stats::dir_size(pool)?;
        let loose = &mut self.loose;
        loose.count += l.count;
        loose.size += l.size;
        loose.stale_count += l.stale_count;
        loose.stale_size += l.stale_size;
        loose.garbage_count += l.garbage_count;
        let packs = &mut self.packs;
        packs.count += p.count;
        packs.size += p.size;
        packs.reverse_index_count += p.reverse_index_count;
        packs.cruft_count += p.cruft_count;
        packs.cruft_size += p.cruft_size;
        packs.keep_count += p.keep_count;
        packs.keep_size += p.keep_size;
        packs.bitmap = p.bitmap;
        packs.midx = p.midx;
        packs.midx_bitmap = p.midx_bitmap;
        Ok(())
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let seconds = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn bitmap(b: stats::Bitmap) -> BitmapInfo {
    BitmapInfo {
        has_hash_cache: b.has_hash_cache,
        has_lookup_table: b.has_lookup_table,
        version: b.version.into(),
    }
}

fn response(s: Stats, is_object_pool: bool) -> RepositoryInfoResponse {
    let (loose, packs) = (&s.loose, &s.packs);
    RepositoryInfoResponse {
        size: s.size,
        references: Some(ReferencesInfo {
            loose_count: s.references.loose_count,
            packed_size: s.references.packed_size,
            reference_backend: if s.references.reftable {
                ReferenceBackend::Reftable
            } else {
                ReferenceBackend::Files
            } as i32,
        }),
        objects: Some(ObjectsInfo {
            size: loose.size + packs.size,
            // Stale loose objects and cruft packs are what a prune would remove.
            recent_size: (loose.size - loose.stale_size) + (packs.size - packs.cruft_size),
            stale_size: loose.stale_size + packs.cruft_size,
            keep_size: packs.keep_size,
            packfile_count: packs.count,
            reverse_index_count: packs.reverse_index_count,
            cruft_count: packs.cruft_count,
            keep_count: packs.keep_count,
            loose_objects_count: loose.count,
            stale_loose_objects_count: loose.stale_count,
            loose_objects_garbage_count: loose.garbage_count,
        }),
        commit_graph: s.commit_graph.map(|g| CommitGraphInfo {
            commit_graph_chain_length: g.chain_length,
            has_bloom_filters: g.has_bloom_filters,
            has_generation_data: g.has_generation_data,
            has_generation_data_overflow: g.has_generation_data_overflow,
        }),
        bitmap: s.packs.bitmap.map(bitmap),
        multi_pack_index: s.packs.midx.map(|m| MultiPackIndexInfo {
            packfile_count: m.packfile_count,
            version: m.version.into(),
            has_large_offsets: m.has_large_offsets,
            has_bitmapped_packs: m.has_bitmapped_packs,
            has_reverse_index: m.has_reverse_index,
        }),
        multi_pack_index_bitmap: s.packs.midx_bitmap.map(bitmap),
        alternates: s.alternates.map(|a| AlternatesInfo {
            object_directories: a.directories,
            last_modified: a.last_modified.map(timestamp),
        }),
        is_object_pool,
        last_full_repack: s.packs.last_full_repack.map(timestamp),
    }
}

impl RepositoryServiceImpl {
    pub(super) async fn repository_info(
        &self,
        req: RepositoryInfoRequest,
    ) -> Result<RepositoryInfoResponse> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let is_pool = stats::is_object_pool(&repo.repository.relative_path);
        let storage = self
            .deps
            .locator
            .storage(&repo.repository.storage_name)?
            .to_path_buf();
        let path = repo.path.clone();
        let stats = tokio::task::spawn_blocking(move || -> io::Result<Stats> {
            let mut s = Stats::gather(&path)?;
            if let Some(pool) = pool_of(&s, &path, &storage) {
                s.merge_pool(&pool)
                    .map_err(|e| io::Error::new(e.kind(), format!("deriving pool info: {e}")))?;
            }
            Ok(s)
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
        Ok(response(stats, is_pool))
    }
}

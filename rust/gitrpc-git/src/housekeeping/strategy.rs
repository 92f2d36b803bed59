//! What to optimize in a repository, decided from its [`RepositoryInfo`] alone: Gitaly's
//! `HeuristicalOptimizationStrategy` and `EagerOptimizationStrategy`
//! (`internal/git/housekeeping/optimization_strategy.go`) with the same constants. Pure
//! functions; [`super::tasks`] turns a [`Plan`] into commands.
//!
//! The heuristics, in short: repack only when the pack layout is bad (a full repack with
//! cruft at most every 5 days, geometric when packs escape the multi-pack-index, incremental
//! when over 1024 loose objects), prune when over 1024 loose objects are older than 10 days,
//! pack refs when loose refs outgrow `packed-refs` logarithmically, rewrite the commit-graph
//! when it lacks Bloom filters or generation data (or after a prune), else extend it after a
//! repack. The larger the repository, the rarer the expensive work.

use std::time::{Duration, SystemTime};

use super::stats::{RepositoryInfo, STALE_OBJECTS_GRACE};

/// At most one full repack in this period, unless alternates changed (Gitaly's
/// `FullRepackCooldownPeriod`).
pub const FULL_REPACK_COOLDOWN: Duration = Duration::from_secs(5 * 24 * 3600);

/// Loose objects tolerated before an incremental repack, and stale ones before a prune
/// (Gitaly's `LooseObjectLimit`).
pub const LOOSE_OBJECT_LIMIT: u64 = 1024;

/// How objects are repacked (Gitaly's `RepackObjectsStrategy`, with its names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepackStrategy {
    /// Pack all loose objects into a new pack, reachable or not (`pack-objects
    /// --incremental`), then drop the packed loose ones.
    IncrementalWithUnreachable,
    /// Everything reachable into one pack, the unreachable rest into a cruft pack that
    /// expires (`repack --cruft`).
    FullWithCruft,
    /// Everything into one pack, unreachable objects included (object pools: they never
    /// lose an object).
    FullWithUnreachable,
    /// Merge packs so their sizes form a factor-2 geometric sequence (`repack --geometric=2`).
    Geometric,
}

impl RepackStrategy {
    /// Gitaly's name (`packed_objects_<name>` in its metrics and logs).
    pub fn name(self) -> &'static str {
        match self {
            RepackStrategy::IncrementalWithUnreachable => "incremental_with_unreachable",
            RepackStrategy::FullWithCruft => "full_with_cruft",
            RepackStrategy::FullWithUnreachable => "full_with_unreachable",
            RepackStrategy::Geometric => "geometric",
        }
    }

    pub fn is_full(self) -> bool {
        matches!(
            self,
            RepackStrategy::FullWithCruft | RepackStrategy::FullWithUnreachable
        )
    }
}

/// A repack to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repack {
    pub strategy: RepackStrategy,
    /// Write a bitmap (never with alternates: the pack isn't closed under reachability).
    pub write_bitmap: bool,
    pub write_midx: bool,
    /// Unreachable objects older than this leave the cruft pack (full with cruft only).
    pub cruft_expire_before: Option<SystemTime>,
}

/// `git prune --expire=<before>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prune {
    pub expire_before: SystemTime,
}

/// `git commit-graph write --split[=replace]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitGraphWrite {
    /// Rewrite the whole chain (after pruning, or when the graph lacks data we want).
    pub replace_chain: bool,
}

/// What one optimization does, in the order it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub repack: Option<Repack>,
    pub prune: Option<Prune>,
    pub pack_refs: bool,
    pub commit_graph: Option<CommitGraphWrite>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        *self == Plan::default()
    }
}

fn full_repack(info: &RepositoryInfo, now: SystemTime) -> Repack {
    let pool = info.is_object_pool;
    Repack {
        strategy: match pool {
            true => RepackStrategy::FullWithUnreachable,
            false => RepackStrategy::FullWithCruft,
        },
        write_bitmap: info.alternates.directories.is_empty(),
        write_midx: true,
        cruft_expire_before: (!pool).then(|| now - STALE_OBJECTS_GRACE),
    }
}

/// Gitaly's heuristics (`STRATEGY_HEURISTICAL`, also what the background scheduler runs).
pub fn heuristical(info: &RepositoryInfo, now: SystemTime) -> Plan {
    let repack = should_repack(info, now);
    let prune = should_prune(info, now);
    Plan {
        repack,
        prune,
        pack_refs: should_pack_refs(info),
        commit_graph: should_write_commit_graph(info, repack, prune.is_some()),
    }
}

/// Everything, regardless of the state (`STRATEGY_EAGER`): a full repack, a prune (not of
/// pools), packed refs, a new commit-graph chain.
pub fn eager(info: &RepositoryInfo, now: SystemTime) -> Plan {
    Plan {
        repack: Some(full_repack(info, now)),
        prune: (!info.is_object_pool).then(|| Prune {
            expire_before: now - STALE_OBJECTS_GRACE,
        }),
        pack_refs: true,
        commit_graph: Some(CommitGraphWrite {
            replace_chain: true,
        }),
    }
}

fn should_repack(info: &RepositoryInfo, now: SystemTime) -> Option<Repack> {
    let (packs, loose) = (&info.packfiles, &info.loose_objects);
    if packs.count == 0 && loose.count == 0 {
        return None;
    }
    let no_alternates = info.alternates.directories.is_empty();
    let geometric = Repack {
        strategy: RepackStrategy::Geometric,
        write_bitmap: no_alternates,
        write_midx: true,
        cruft_expire_before: None,
    };
    // Alternates changed since the last full repack: the repository joined a pool, so a full
    // repack deduplicates what the pool has.
    if info
        .alternates
        .last_modified
        .is_some_and(|m| m > packs.last_full_repack)
    {
        return Some(full_repack(info, now));
    }
    let since_full = now
        .duration_since(packs.last_full_repack)
        .unwrap_or_default();
    if packs.count.saturating_sub(packs.cruft_count) > 1 && since_full > FULL_REPACK_COOLDOWN {
        return Some(full_repack(info, now));
    }
    let Some(in_midx) = packs.midx else {
        return Some(geometric);
    };
    // Allowed packs outside the multi-pack-index: 2 below 10 MiB, then log base 1.8 of the
    // size in MiB (3 at 10 MiB, 7 at 100 MiB, 11 at 1 GiB, 15 at 10 GiB).
    let mib = (packs.size / 1024 / 1024) as f64;
    let allowed = f64::max(2.0, mib.ln() / 1.8f64.ln());
    if packs.count.saturating_sub(in_midx) > allowed as u64 {
        return Some(geometric);
    }
    if loose.count > LOOSE_OBJECT_LIMIT {
        return Some(Repack {
            strategy: RepackStrategy::IncrementalWithUnreachable,
            write_bitmap: false,
            write_midx: false,
            cruft_expire_before: None,
        });
    }
    None
}

fn should_prune(info: &RepositoryInfo, now: SystemTime) -> Option<Prune> {
    if info.is_object_pool || info.loose_objects.stale_count <= LOOSE_OBJECT_LIMIT {
        return None;
    }
    Some(Prune {
        expire_before: now - STALE_OBJECTS_GRACE,
    })
}

/// Pack when loose refs reach `max(16, log base 1.15 of packed-refs' size / 100)`: 16 at
/// 1 kB, 33 at 10 kB, 49 at 100 kB, 66 at 1 MB, 82 at 10 MB (~16 more per tenfold).
/// Reftable repositories compact themselves.
fn should_pack_refs(info: &RepositoryInfo) -> bool {
    let refs = &info.references;
    if refs.reftable || refs.loose_count == 0 {
        return false;
    }
    let allowed = f64::max(16.0, (refs.packed_size as f64 / 100.0).ln() / 1.15f64.ln());
    allowed as u64 <= refs.loose_count
}

fn should_write_commit_graph(
    info: &RepositoryInfo,
    repack: Option<Repack>,
    prune: bool,
) -> Option<CommitGraphWrite> {
    let refs = &info.references;
    if !refs.reftable && refs.loose_count == 0 && refs.packed_size == 0 {
        return None;
    }
    let graph = &info.commit_graph;
    let needs_rewrite =
        graph.chain_length == 0 || !graph.has_bloom_filters || !graph.has_generation_data;
    if prune || needs_rewrite {
        return Some(CommitGraphWrite {
            replace_chain: true,
        });
    }
    repack.map(|r| CommitGraphWrite {
        replace_chain: r.strategy == RepackStrategy::FullWithCruft
            && r.cruft_expire_before.is_some(),
    })
}

#[cfg(test)]
mod tests;

//! Gitaly's decision table, case by case, on synthetic statistics.

use std::path::PathBuf;

use super::*;
use crate::housekeeping::stats::{CommitGraph, LooseObjects, Packfiles, References};

const MIB: u64 = 1024 * 1024;
const DAY: Duration = Duration::from_secs(24 * 3600);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A well-kept repository: one pack in the multi-pack-index, fully repacked yesterday,
/// packed refs, a chained commit-graph with everything. Nothing to do.
fn tidy() -> RepositoryInfo {
    RepositoryInfo {
        loose_objects: LooseObjects::default(),
        packfiles: Packfiles {
            count: 1,
            size: 50 * MIB,
            midx: Some(1),
            last_full_repack: now() - DAY,
            ..Packfiles::default()
        },
        commit_graph: CommitGraph {
            chain_length: 1,
            has_bloom_filters: true,
            has_generation_data: true,
        },
        references: References {
            loose_count: 0,
            packed_size: 10_000,
            reftable: false,
        },
        ..RepositoryInfo::default()
    }
}

fn strategy(info: &RepositoryInfo) -> Option<RepackStrategy> {
    heuristical(info, now()).repack.map(|r| r.strategy)
}

#[test]
fn a_tidy_repository_needs_nothing() {
    assert!(heuristical(&tidy(), now()).is_empty());
    assert!(heuristical(&RepositoryInfo::default(), now()).is_empty());
}

#[test]
fn repack_decisions() {
    use RepackStrategy::*;
    // Two non-cruft packs and the last full repack over 5 days ago: full, with cruft expiring
    // after 10 days.
    let mut i = tidy();
    i.packfiles.count = 2;
    i.packfiles.midx = Some(2);
    i.packfiles.last_full_repack = now() - 6 * DAY;
    let plan = heuristical(&i, now());
    let r = plan.repack.unwrap();
    assert_eq!(r.strategy, FullWithCruft);
    assert_eq!(r.cruft_expire_before, Some(now() - 10 * DAY));
    assert!(r.write_bitmap && r.write_midx);
    assert_eq!(
        plan.commit_graph,
        Some(CommitGraphWrite {
            replace_chain: true
        })
    );
    // ... a cruft pack doesn't count.
    i.packfiles.cruft_count = 1;
    assert_eq!(strategy(&i), None);
    // Within the cooldown: no full repack.
    let mut i = tidy();
    i.packfiles.count = 2;
    i.packfiles.midx = Some(2);
    i.packfiles.last_full_repack = now() - 4 * DAY;
    assert_eq!(strategy(&i), None);
    // Object pools keep unreachable objects.
    i.packfiles.last_full_repack = SystemTime::UNIX_EPOCH;
    i.is_object_pool = true;
    let r = heuristical(&i, now()).repack.unwrap();
    assert_eq!(r.strategy, FullWithUnreachable);
    assert_eq!(r.cruft_expire_before, None);

    // Alternates changed after the last full repack: full, without a bitmap.
    let mut i = tidy();
    i.alternates.directories = vec![PathBuf::from("/pool/objects")];
    i.alternates.last_modified = Some(now() - Duration::from_secs(60));
    let r = heuristical(&i, now()).repack.unwrap();
    assert_eq!(r.strategy, FullWithCruft);
    assert!(!r.write_bitmap);
    i.alternates.last_modified = Some(now() - 2 * DAY);
    assert_eq!(strategy(&i), None);

    // No multi-pack-index: geometric.
    let mut i = tidy();
    i.packfiles.midx = None;
    assert_eq!(strategy(&i), Some(Geometric));

    // Packs outside the multi-pack-index, against the size-scaled allowance.
    for (size_mib, allowed) in [
        (1, 2),
        (5, 2),
        (6, 3),
        (10, 3),
        (100, 7),
        (1024, 11),
        (10 * 1024, 15),
    ] {
        let mut i = tidy();
        i.packfiles.size = size_mib * MIB;
        i.packfiles.midx = Some(1);
        i.packfiles.count = 1 + allowed;
        assert_eq!(strategy(&i), None, "{size_mib} MiB, {allowed} untracked");
        i.packfiles.count = 2 + allowed;
        assert_eq!(
            strategy(&i),
            Some(Geometric),
            "{size_mib} MiB, {} untracked",
            allowed + 1
        );
    }

    // Loose objects over the limit: incremental, no bitmap or midx; the graph is extended.
    let mut i = tidy();
    i.loose_objects.count = LOOSE_OBJECT_LIMIT;
    assert_eq!(strategy(&i), None);
    i.loose_objects.count = LOOSE_OBJECT_LIMIT + 1;
    let plan = heuristical(&i, now());
    let r = plan.repack.unwrap();
    assert_eq!(r.strategy, IncrementalWithUnreachable);
    assert!(!r.write_bitmap && !r.write_midx);
    assert_eq!(
        plan.commit_graph,
        Some(CommitGraphWrite {
            replace_chain: false
        })
    );
    // Loose objects only, no packs at all: no multi-pack-index either, so geometric.
    let mut i = RepositoryInfo::default();
    i.loose_objects.count = 3;
    assert_eq!(strategy(&i), Some(Geometric));
}

#[test]
fn prune_decisions() {
    let mut i = tidy();
    i.loose_objects.count = 5000;
    i.loose_objects.stale_count = LOOSE_OBJECT_LIMIT;
    assert_eq!(heuristical(&i, now()).prune, None);
    i.loose_objects.stale_count = LOOSE_OBJECT_LIMIT + 1;
    let plan = heuristical(&i, now());
    assert_eq!(
        plan.prune,
        Some(Prune {
            expire_before: now() - 10 * DAY
        })
    );
    // Pruning replaces the commit-graph chain (it may name pruned commits).
    assert_eq!(
        plan.commit_graph,
        Some(CommitGraphWrite {
            replace_chain: true
        })
    );
    i.is_object_pool = true;
    assert_eq!(heuristical(&i, now()).prune, None);
}

#[test]
fn pack_refs_decisions() {
    for (packed_size, allowed) in [
        (0, 16),
        (1_000, 16),
        (10_000, 32),
        (100_000, 49),
        (1_000_000, 65),
        (10_000_000, 82),
    ] {
        let mut i = tidy();
        i.references.packed_size = packed_size;
        i.references.loose_count = allowed - 1;
        assert!(
            !heuristical(&i, now()).pack_refs,
            "{packed_size} bytes, {} loose",
            allowed - 1
        );
        i.references.loose_count = allowed;
        assert!(
            heuristical(&i, now()).pack_refs,
            "{packed_size} bytes, {allowed} loose"
        );
    }
    let mut i = tidy();
    i.references.reftable = true;
    i.references.loose_count = 1000;
    assert!(!heuristical(&i, now()).pack_refs);
}

#[test]
fn commit_graph_decisions() {
    // No refs at all: nothing to put in a graph.
    let mut i = tidy();
    i.references = References::default();
    i.commit_graph = CommitGraph::default();
    assert_eq!(heuristical(&i, now()).commit_graph, None);
    // Missing, monolithic, or lacking Bloom filters or generation data: replace the chain.
    for graph in [
        CommitGraph::default(),
        CommitGraph {
            chain_length: 0,
            has_bloom_filters: true,
            has_generation_data: true,
        },
        CommitGraph {
            chain_length: 3,
            has_bloom_filters: false,
            has_generation_data: true,
        },
        CommitGraph {
            chain_length: 3,
            has_bloom_filters: true,
            has_generation_data: false,
        },
    ] {
        let mut i = tidy();
        i.commit_graph = graph;
        assert_eq!(
            heuristical(&i, now()).commit_graph,
            Some(CommitGraphWrite {
                replace_chain: true
            }),
            "{graph:?}"
        );
    }
    // Reftable repositories get one even without counting refs.
    let mut i = tidy();
    i.references = References {
        reftable: true,
        ..References::default()
    };
    i.commit_graph = CommitGraph::default();
    assert!(heuristical(&i, now()).commit_graph.is_some());
}

#[test]
fn eager_does_everything() {
    let plan = eager(&tidy(), now());
    let r = plan.repack.unwrap();
    assert_eq!(r.strategy, RepackStrategy::FullWithCruft);
    assert_eq!(r.cruft_expire_before, Some(now() - 10 * DAY));
    assert!(r.write_bitmap && r.write_midx);
    assert!(plan.prune.is_some() && plan.pack_refs);
    assert_eq!(
        plan.commit_graph,
        Some(CommitGraphWrite {
            replace_chain: true
        })
    );
    let mut pool = tidy();
    pool.is_object_pool = true;
    let plan = eager(&pool, now());
    assert_eq!(
        plan.repack.unwrap().strategy,
        RepackStrategy::FullWithUnreachable
    );
    assert_eq!(plan.prune, None);
}

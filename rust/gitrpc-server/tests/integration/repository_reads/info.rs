//! RepositoryInfo against what git and the file system say: loose objects (stale, garbage),
//! packs (kept, cruft, reverse indices), bitmaps, the multi-pack-index, commit-graphs,
//! references (loose, packed, reftable), alternates, object pools and their members; bad
//! input.

use std::path::Path;
use std::time::{Duration, SystemTime};

use gitrpc_proto::gitaly::repository_info_response::references_info::ReferenceBackend;
use gitrpc_proto::gitaly::repository_info_response::{BitmapInfo, ReferencesInfo};
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::client;
use crate::commit_history::{bad_repos, failure, Work};
use crate::common::TestServer;

/// Regular files (and symlinks) under `dir`, with their sizes.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len()));
            }
        }
    }
    out
}

/// `git count-objects -v` as (key, number) pairs.
fn count_objects(w: &Work) -> std::collections::HashMap<String, u64> {
    w.git(&["count-objects", "-v"])
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Loose objects: (count, bytes).
fn loose(path: &Path) -> (u64, u64) {
    let objects = files(&path.join("objects"));
    let loose: Vec<_> = objects
        .iter()
        .filter(|(p, _)| {
            let shard = p.parent().unwrap().file_name().unwrap().to_str().unwrap();
            shard.len() == 2 && shard.bytes().all(|b| b.is_ascii_hexdigit()) && shard != "pack"
        })
        .collect();
    (loose.len() as u64, loose.iter().map(|(_, n)| n).sum())
}

/// Files in `objects/pack` ending in `ext`: (count, bytes).
fn pack_files(path: &Path, ext: &str) -> (u64, u64) {
    let f: Vec<_> = files(&path.join("objects/pack"))
        .into_iter()
        .filter(|(p, _)| p.to_str().unwrap().ends_with(ext))
        .collect();
    (f.len() as u64, f.iter().map(|(_, n)| n).sum())
}

async fn info(c: &mut super::Client, w: &Work) -> RepositoryInfoResponse {
    c.repository_info(RepositoryInfoRequest {
        repository: Some(w.repo()),
    })
    .await
    .unwrap()
    .into_inner()
}

fn set_mtime(path: &Path, ago: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - ago).unwrap();
}

#[tokio::test]
async fn repository_info_counts_what_is_on_disk() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    for format in ["sha1", "sha256"] {
        let w = Work::new(&s, &format!("info-{format}.git"), format);
        w.write("a.txt", "a\n");
        w.write("dir/b.txt", "b\n");
        w.commit("one");
        w.git(&["branch", "side"]);
        w.git(&["tag", "-a", "v1", "-m", "v1"]);

        // Loose objects only.
        let got = info(&mut c, &w).await;
        let objects = got.objects.unwrap();
        let counted = count_objects(&w);
        let (n, bytes) = loose(&w.path);
        assert_eq!(objects.loose_objects_count, counted["count"], "{format}");
        assert_eq!(objects.loose_objects_count, n);
        assert_eq!(objects.size, bytes);
        assert_eq!(objects.recent_size, bytes);
        assert_eq!(
            (objects.stale_size, objects.stale_loose_objects_count),
            (0, 0)
        );
        assert_eq!(objects.packfile_count, 0);
        assert_eq!(objects.loose_objects_garbage_count, 0);
        let all: u64 = files(&w.path).iter().map(|(_, n)| n).sum();
        assert_eq!(got.size, all);
        let refs = files(&w.path.join("refs")).len() as u64;
        assert_eq!(
            got.references,
            Some(ReferencesInfo {
                loose_count: refs,
                packed_size: 0,
                reference_backend: ReferenceBackend::Files as i32,
            })
        );
        assert_eq!(refs, 3, "main, side, v1");
        assert_eq!(got.commit_graph, None);
        assert_eq!(got.bitmap, None);
        assert_eq!(got.multi_pack_index, None);
        assert_eq!(got.alternates, None);
        assert!(!got.is_object_pool);
        assert_eq!(got.last_full_repack, None);

        // A stale loose object and garbage in a shard.
        let (stale_path, stale_len) = files(&w.path.join("objects"))
            .into_iter()
            .find(|(p, _)| p.parent().unwrap().file_name().unwrap().len() == 2)
            .unwrap();
        set_mtime(&stale_path, Duration::from_secs(11 * 24 * 3600));
        let shard = stale_path.parent().unwrap();
        std::fs::write(shard.join("tmp_obj_XYZ"), "garbage").unwrap();
        let objects = info(&mut c, &w).await.objects.unwrap();
        assert_eq!(objects.stale_loose_objects_count, 1);
        assert_eq!(objects.stale_size, stale_len);
        assert_eq!(objects.recent_size, bytes - stale_len);
        assert_eq!(objects.loose_objects_garbage_count, 1);
        assert_eq!(objects.loose_objects_count, n);
        std::fs::remove_file(shard.join("tmp_obj_XYZ")).unwrap();

        // Packed objects and references.
        w.git(&["repack", "-a", "-d", "-q"]);
        w.git(&["prune-packed"]);
        w.git(&["pack-refs", "--all"]);
        let got = info(&mut c, &w).await;
        let objects = got.objects.unwrap();
        let counted = count_objects(&w);
        let (packs, pack_bytes) = pack_files(&w.path, ".pack");
        assert_eq!(objects.packfile_count, counted["packs"]);
        assert_eq!(objects.packfile_count, packs);
        assert_eq!(objects.loose_objects_count, counted["count"]);
        assert_eq!(objects.loose_objects_count, 0);
        assert_eq!(objects.size, pack_bytes);
        assert_eq!(objects.recent_size, pack_bytes);
        assert_eq!(objects.reverse_index_count, pack_files(&w.path, ".rev").0);
        assert_eq!((objects.keep_count, objects.cruft_count), (0, 0));
        let packed = std::fs::metadata(w.path.join("packed-refs")).unwrap().len();
        let refs = got.references.unwrap();
        assert_eq!(
            (refs.loose_count, refs.packed_size),
            (files(&w.path.join("refs")).len() as u64, packed)
        );
        assert_eq!(refs.loose_count, 0);

        // A .keep file.
        let pack = files(&w.path.join("objects/pack"))
            .into_iter()
            .find(|(p, _)| p.to_str().unwrap().ends_with(".pack"))
            .unwrap();
        let keep = pack.0.with_extension("keep");
        std::fs::write(&keep, "").unwrap();
        let objects = info(&mut c, &w).await.objects.unwrap();
        assert_eq!((objects.keep_count, objects.keep_size), (1, pack.1));
        std::fs::remove_file(&keep).unwrap();
    }
    s.stop().await;
}

#[tokio::test]
async fn repository_info_reads_cruft_bitmaps_midx_and_commit_graphs() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = Work::new(&s, "graphs.git", "sha1");
    for i in 0..3 {
        w.write("f.txt", format!("{i}\n"));
        w.commit(&format!("c{i}"));
    }
    // An unreachable commit: made on a branch that is then deleted, reflogs expired.
    w.git(&["checkout", "-q", "-b", "gone"]);
    w.write("g.txt", "unreachable\n");
    w.commit("gone");
    w.git(&["checkout", "-q", "main"]);
    w.git(&["branch", "-D", "gone"]);
    w.git(&["reflog", "expire", "--expire=now", "--all"]);

    // Cruft pack: the unreachable objects, counted as stale.
    w.git(&["repack", "--cruft", "-d", "-q"]);
    let got = info(&mut c, &w).await;
    let objects = got.objects.unwrap();
    let (mtimes, _) = pack_files(&w.path, ".mtimes");
    assert_eq!(mtimes, 1);
    let cruft = files(&w.path.join("objects/pack"))
        .into_iter()
        .find(|(p, _)| {
            p.with_extension("mtimes").exists() && p.to_str().unwrap().ends_with(".pack")
        })
        .unwrap();
    assert_eq!(objects.cruft_count, 1);
    assert_eq!(objects.packfile_count, 2);
    assert_eq!(objects.stale_size, cruft.1);
    assert_eq!(objects.recent_size, objects.size - cruft.1);

    // A bitmap (with the name-hash cache git writes by default; a lookup table when asked).
    w.git(&[
        "-c",
        "pack.writeBitmapLookupTable=true",
        "repack",
        "-adb",
        "-q",
    ]);
    let got = info(&mut c, &w).await;
    assert_eq!(
        got.bitmap,
        Some(BitmapInfo {
            has_hash_cache: true,
            has_lookup_table: true,
            version: 1
        })
    );
    assert_eq!(got.multi_pack_index, None);
    w.git(&["repack", "-adb", "-q"]);
    assert!(!info(&mut c, &w).await.bitmap.unwrap().has_lookup_table);

    // A multi-pack-index over two packs, with its bitmap.
    w.write("f.txt", "more\n");
    w.commit("c3");
    w.git(&["repack", "-d", "-q"]);
    let (packs, _) = pack_files(&w.path, ".pack");
    assert!(packs >= 2, "{packs}");
    w.git(&["multi-pack-index", "write", "--bitmap"]);
    let got = info(&mut c, &w).await;
    let midx = got.multi_pack_index.unwrap();
    assert_eq!((midx.packfile_count, midx.version), (packs, 1));
    assert!(!midx.has_large_offsets);
    let midx_bitmap = got.multi_pack_index_bitmap.unwrap();
    assert_eq!(midx_bitmap.version, 1);

    // Commit-graphs: one file, with changed-path filters, a split chain.
    w.git(&["commit-graph", "write", "--reachable"]);
    let g = info(&mut c, &w).await.commit_graph.unwrap();
    assert_eq!(g.commit_graph_chain_length, 0);
    assert!(g.has_generation_data);
    assert!(!g.has_bloom_filters);
    w.git(&["commit-graph", "write", "--reachable", "--changed-paths"]);
    assert!(
        info(&mut c, &w)
            .await
            .commit_graph
            .unwrap()
            .has_bloom_filters
    );
    std::fs::remove_file(w.path.join("objects/info/commit-graph")).unwrap();
    w.git(&["commit-graph", "write", "--reachable", "--split"]);
    w.write("f.txt", "even more\n");
    w.commit("c4");
    w.git(&[
        "commit-graph",
        "write",
        "--reachable",
        "--split=no-merge",
        "--changed-paths",
    ]);
    let chain =
        std::fs::read_to_string(w.path.join("objects/info/commit-graphs/commit-graph-chain"))
            .unwrap();
    let g = info(&mut c, &w).await.commit_graph.unwrap();
    assert_eq!(g.commit_graph_chain_length, chain.lines().count() as u64);
    assert_eq!(g.commit_graph_chain_length, 2);
    assert!(g.has_bloom_filters, "the newer layer has them");
    s.stop().await;
}

#[tokio::test]
async fn repository_info_reftable_alternates_pools_and_bad_input() {
    let s = TestServer::start().await;
    let mut c = client(&s);

    // reftable: no loose refs, no packed-refs.
    let path = s.path("reftable.git");
    std::fs::create_dir_all(&path).unwrap();
    crate::commit_history::run(crate::commit_history::git_cmd(&path).args([
        "init",
        "--bare",
        "--quiet",
        "--ref-format=reftable",
    ]));
    let got = c
        .repository_info(RepositoryInfoRequest {
            repository: Some(s.repo("reftable.git")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.references,
        Some(ReferencesInfo {
            loose_count: 0,
            packed_size: 0,
            reference_backend: ReferenceBackend::Reftable as i32,
        })
    );

    // Alternates as written (comments and empty lines left out), with the file's mtime; the
    // full-repack timestamp Gitaly touches.
    let w = Work::new(&s, "alt.git", "sha1");
    w.write("a", "a\n");
    w.commit("one");
    let alternates = w.path.join("objects/info/alternates");
    std::fs::write(
        &alternates,
        "/srv/pool/objects\n# comment\n\n../../x/objects\n",
    )
    .unwrap();
    let when = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&alternates)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let stamp = w.path.join(".gitaly-full-repack-timestamp");
    std::fs::write(&stamp, "").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stamp)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let secs = when
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let got = info(&mut c, &w).await;
    let alt = got.alternates.unwrap();
    assert_eq!(
        alt.object_directories,
        ["/srv/pool/objects", "../../x/objects"]
    );
    assert_eq!(alt.last_modified.unwrap().seconds, secs);
    assert_eq!(got.last_full_repack.unwrap().seconds, secs);

    // An object pool, by its path.
    let pool = format!("@pools/ab/cd/abcd{}.git", "e".repeat(60));
    let p = Work::new(&s, &pool, "sha1");
    assert!(info(&mut c, &p).await.is_object_pool);

    // A member of that pool: the pool's objects and size count too (as Gitaly merges them).
    p.write("p.txt", "pool\n");
    p.commit("pool");
    let m = Work::new(&s, "member.git", "sha1");
    m.write("m.txt", "m\n");
    m.commit("member");
    let link = format!("../../{pool}/objects");
    std::fs::write(m.path.join("objects/info/alternates"), format!("{link}\n")).unwrap();
    let got = info(&mut c, &m).await;
    let ((ml, mb), (pl, pb)) = (loose(&m.path), loose(&p.path));
    let objects = got.objects.unwrap();
    assert_eq!(
        (objects.loose_objects_count, objects.size),
        (ml + pl, mb + pb)
    );
    let total = |p: &Path| files(p).iter().map(|(_, n)| n).sum::<u64>();
    assert_eq!(got.size, total(&m.path) + total(&p.path));
    assert_eq!(got.alternates.unwrap().object_directories, [link]);
    assert!(!got.is_object_pool);

    // An alternates FIFO nobody writes: answered (an error), never waited on.
    crate::common::hanging_repo(&s.storage, "hang.git");
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        c.repository_info(RepositoryInfoRequest {
            repository: Some(s.repo("hang.git")),
        }),
    )
    .await
    .expect("answered, not blocked on the FIFO");
    assert_eq!(failure(r).0, Code::Internal);

    // A corrupt bitmap: INTERNAL, with what is wrong.
    std::fs::write(
        w.path.join("objects/pack/pack-1234.bitmap"),
        "BITX\0\x01\0\0",
    )
    .unwrap();
    let (code, msg) = failure(
        c.repository_info(RepositoryInfoRequest {
            repository: Some(w.repo()),
        })
        .await,
    );
    assert_eq!(code, Code::Internal);
    assert!(msg.contains("invalid bitmap signature"), "{msg}");

    for (repo, code) in bad_repos(&s) {
        let r = c
            .repository_info(RepositoryInfoRequest { repository: repo })
            .await;
        assert_eq!(failure(r).0, code);
    }
    s.stop().await;
}

//! The pack-objects cache behind the SSH front door: a storm of identical clones through
//! OpenSSH's sshd and gitrpc-shell costs one `pack-objects`, as it does through
//! `gitrpc-ssh` (`tests/packcache/storms.rs`).

use std::path::{Path, PathBuf};

use crate::harness::{git_ok, Daemon};
use crate::support::*;

/// Identical clones in the storm.
const N: usize = 8;

/// One series of the daemon's `/metrics` (0 when absent).
fn sample(daemon: &Daemon, series: &str) -> f64 {
    daemon
        .monitor_get("/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// What the counts are taken from: `pack-objects` started by the daemon's executor and the
/// cache's lookups by result.
#[derive(Debug)]
struct Counts {
    pack_objects: f64,
    miss: f64,
    hit: f64,
    coalesced: f64,
    hit_direct: f64,
    generated: f64,
    served: f64,
}

impl Counts {
    fn of(daemon: &Daemon) -> Counts {
        let lookups = |r: &str| {
            sample(
                daemon,
                &format!("gitrpc_pack_objects_cache_lookups_total{{result=\"{r}\"}}"),
            )
        };
        Counts {
            pack_objects: sample(
                daemon,
                "gitrpc_git_commands_started_total{subcommand=\"pack-objects\"}",
            ),
            miss: lookups("miss"),
            hit: lookups("hit"),
            coalesced: lookups("coalesced"),
            hit_direct: lookups("hit_direct"),
            generated: sample(daemon, "gitrpc_pack_objects_generated_bytes_total"),
            served: ["cache", "generated", "direct"]
                .iter()
                .map(|s| {
                    sample(
                        daemon,
                        &format!("gitrpc_pack_objects_served_bytes_total{{source=\"{s}\"}}"),
                    )
                })
                .sum(),
        }
    }
}

/// A bare repository at `rel` worth caching: a 2 MiB incompressible blob and a few commits
/// on `main`, a second branch and an annotated tag, packed with a bitmap like a served
/// repository.
fn storm_repo(daemon: &Daemon, rel: &str) -> PathBuf {
    let work = daemon.seed(rel);
    let bare = daemon.storage().join(rel);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut data = Vec::with_capacity(2 << 20);
    while data.len() < 2 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(work.path().join("big.bin"), &data).unwrap();
    let w = work.path();
    git_ok(w, &["add", "."]);
    git_ok(w, &["commit", "-qm", "big"]);
    git_ok(w, &["branch", "topic", "HEAD~1"]);
    git_ok(w, &["tag", "-a", "-m", "one", "v1", "HEAD~2"]);
    let to = bare.to_str().unwrap();
    git_ok(w, &["push", "-q", to, "main", "topic", "v1"]);
    git_ok(&bare, &["repack", "-adq", "--write-bitmap-index"]);
    bare
}

/// `refname objectname` of every ref, sorted.
fn refs(repo: &Path) -> String {
    git_ok(repo, &["for-each-ref", "--format=%(refname) %(objectname)"])
}

/// N identical clones (protocol v2, the fast path on: the default) through sshd and
/// gitrpc-shell, held at the access check until all N are there and let go together: one
/// `pack-objects` ran (the executor's count), one miss, the others hit or joined it (all
/// served by the fast path but the one upload-pack that relayed the generated pack), and
/// every clone has the server's refs and passes `git fsck --strict`.
#[test]
fn a_storm_of_identical_clones_runs_one_pack_objects() {
    let door = Door::start_with(
        "[pack_objects_cache]\nenabled = true\nmin_occurrences = 0\n",
        None,
        true,
    );
    let bare = storm_repo(&door.daemon, "g/p.git");
    let want = refs(&bare);
    let head = git_ok(&bare, &["rev-parse", "main"]);
    let url = door.url("g/p.git");
    let before = Counts::of(&door.daemon);
    let t = tempfile::tempdir().unwrap();
    let outs = std::thread::scope(|s| {
        let clones: Vec<_> = (0..N)
            .map(|k| {
                let (door, url, into) = (&door, &url, t.path());
                s.spawn(move || {
                    door.git(
                        &door.alice,
                        into,
                        &["clone", "-q", "--bare", url, &format!("c{k}")],
                        &[],
                    )
                })
            })
            .collect();
        door.release(N);
        clones
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (k, out) in outs.iter().enumerate() {
        assert!(
            out.status.success(),
            "clone {k}: {}\nsshd: {}",
            stderr(out),
            door.sshd.log()
        );
        let c = t.path().join(format!("c{k}"));
        assert_eq!(refs(&c), want, "clone {k}'s refs");
        assert_eq!(git_ok(&c, &["rev-parse", "HEAD"]), head, "clone {k}'s HEAD");
        git_ok(&c, &["fsck", "--no-progress", "--strict"]);
    }
    let after = Counts::of(&door.daemon);
    let d = |f: fn(&Counts) -> f64| f(&after) - f(&before);
    assert_eq!(d(|c| c.pack_objects), 1.0, "pack-objects runs: {after:?}");
    assert_eq!(d(|c| c.miss), 1.0, "misses: {after:?}");
    assert_eq!(
        d(|c| c.hit + c.coalesced + c.hit_direct),
        (N - 1) as f64,
        "hits and joined readers: {after:?}"
    );
    assert_eq!(
        d(|c| c.hit + c.coalesced + c.miss),
        1.0,
        "upload-packs that relayed the pack: {after:?}"
    );
    assert_eq!(
        d(|c| c.hit_direct),
        (N - 1) as f64,
        "served by the fast path: {after:?}"
    );
    assert_eq!(
        d(|c| c.served),
        d(|c| c.generated) * N as f64,
        "generated once, served {N} times: {after:?}"
    );
    // Every session was one access check.
    let asked = door
        .access_log()
        .iter()
        .filter(|l| l.starts_with("key-42 git-upload-pack default g/p.git"))
        .count();
    assert_eq!(asked, N);
}

use std::path::Path;
use std::process::Command;

use crate::cache::*;
use crate::harness::git_ok;
use crate::support::*;

/// Clone (or fetch) through the sidechannel with `args` before the URL; returns whether
/// the cache missed (`true`) or answered from an entry (`false`).
fn missed(s: &Server, cwd: &Path, args: &[&str], url_and_more: &[&str]) -> bool {
    let (miss, joined) = (lookups(s, "miss"), hits(s) + lookups(s, "coalesced"));
    let mut c = git_cmd(cwd);
    c.env("GIT_SSH_COMMAND", s.gitrpc_ssh(&s.unix, ""))
        .args(args)
        .args(url_and_more);
    let out = c.output().unwrap();
    assert_ok(&out, &format!("{args:?} {url_and_more:?}"));
    let (miss, joined) = (
        lookups(s, "miss") - miss,
        hits(s) + lookups(s, "coalesced") - joined,
    );
    assert_eq!(miss + joined, 1.0, "{args:?}: one lookup");
    miss == 1.0
}

const V2: [&str; 4] = ["-c", "ssh.variant=ssh", "-c", "protocol.version=2"];

fn v2(more: &[&str]) -> Vec<String> {
    V2.iter().chain(more).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn copy(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// Protocol versions, shallow and partial clones, progress, and fetches with other haves
/// are distinct entries; the same request again (same wants, same haves) is a hit.
#[test]
fn different_requests_get_different_entries() {
    let s = server("min_occurrences = 0", "");
    let work = s.daemon.seed("k.git");
    let bare = s.storage().join("k.git");
    let url = "ssh://gitrpc.example/default/k.git";
    let t = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        ("v2", v2(&["clone", "-q", "--bare"]), true),
        ("v2-again", v2(&["clone", "-q", "--bare"]), false),
        (
            "v0",
            vec![
                "-c".into(),
                "protocol.version=0".into(),
                "clone".into(),
                "-q".into(),
                "--bare".into(),
            ],
            true,
        ),
        (
            "shallow",
            v2(&["clone", "-q", "--bare", "--depth", "1"]),
            true,
        ),
        (
            "partial",
            v2(&["clone", "-q", "--bare", "--filter=blob:none"]),
            true,
        ),
        ("progress", v2(&["clone", "--progress", "--bare"]), true),
        (
            "progress-again",
            v2(&["clone", "--progress", "--bare"]),
            false,
        ),
    ];
    let mut misses = 0;
    for (name, args, miss) in &cases {
        assert_eq!(
            missed(&s, t.path(), &strs(args), &[url, name]),
            *miss,
            "{name}"
        );
        misses += *miss as usize;
        git_ok(&t.path().join(name), &["fsck", "--no-progress"]);
    }
    assert_eq!(entries_of(&s, "k.git").len(), misses);

    // Haves: two clones in the same state fetch a new commit: one miss, then a hit; a
    // shallow one (other haves, a shallow boundary) misses.
    let v2_clone = t.path().join("v2");
    copy(&v2_clone, &t.path().join("twin"));
    commit_to(work.path(), &bare, "new");
    let new = rev(&bare, "main");
    let fetch = v2(&["fetch", "-q", "--no-tags", url, "main"]);
    assert!(missed(&s, &v2_clone, &strs(&fetch), &[]));
    assert!(!missed(&s, &t.path().join("twin"), &strs(&fetch), &[]));
    assert!(missed(&s, &t.path().join("shallow"), &strs(&fetch), &[]));
    for c in ["v2", "twin", "shallow"] {
        assert_eq!(rev(&t.path().join(c), "FETCH_HEAD"), new, "{c}");
    }
    assert_eq!(entries_of(&s, "k.git").len(), misses + 2);
    assert_clean(&s);
}

/// A push through the daemon makes the repository's entries go: the next identical
/// request is a miss and sees the new objects. So does a new tag (it changes no want) and
/// a ref written by an RPC.
#[test]
fn a_push_makes_the_next_fetch_a_miss() {
    let s = server("min_occurrences = 0", "");
    let work = s.daemon.seed("p.git");
    let bare = s.storage().join("p.git");
    let url = "ssh://gitrpc.example/default/p.git";
    let t = tempfile::tempdir().unwrap();
    let clone = v2(&["clone", "-q", "--bare"]);
    assert!(missed(&s, t.path(), &strs(&clone), &[url, "c1"]));
    assert!(!missed(&s, t.path(), &strs(&clone), &[url, "c2"]));
    let invalidated = "gitrpc_pack_objects_cache_evictions_total{reason=\"invalidated\"}";
    let before = metric(&s, invalidated);

    std::fs::write(work.path().join("pushed.txt"), "pushed").unwrap();
    git_ok(work.path(), &["add", "."]);
    git_ok(work.path(), &["commit", "-qm", "pushed"]);
    let out = s
        .daemon
        .client_git(work.path(), &["push", "-q", url, "main"])
        .output()
        .unwrap();
    assert_ok(&out, "push");
    let pushed = rev(&bare, "main");
    assert_eq!(metric(&s, invalidated) - before, 1.0);
    assert!(entries_of(&s, "p.git").iter().all(|e| e["kept"] == false));
    assert!(missed(&s, t.path(), &strs(&clone), &[url, "c3"]));
    assert_good_clone(&t.path().join("c3"), &pushed);

    // The same fetch (same wants and haves) from copies of c1: a miss, a hit, then after a
    // tag is pushed a miss again; after a WriteRef, a miss again.
    let fetch = v2(&["fetch", "-q", "--no-tags", url, "main"]);
    for d in ["d1", "d2", "d3", "d4"] {
        copy(&t.path().join("c1"), &t.path().join(d));
    }
    assert!(missed(&s, &t.path().join("d1"), &strs(&fetch), &[]));
    assert!(!missed(&s, &t.path().join("d2"), &strs(&fetch), &[]));
    git_ok(work.path(), &["tag", "-a", "-m", "v1", "v1", "HEAD~1"]);
    let out = s
        .daemon
        .client_git(work.path(), &["push", "-q", url, "v1"])
        .output()
        .unwrap();
    assert_ok(&out, "push a tag");
    assert!(missed(&s, &t.path().join("d3"), &strs(&fetch), &[]));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
        let mut c = RepositoryServiceClient::new(s.daemon.channel().await);
        c.write_ref(gitrpc_proto::gitaly::WriteRefRequest {
            repository: Some(s.daemon.repo("p.git")),
            r#ref: b"refs/heads/other".to_vec(),
            revision: pushed.clone().into_bytes(),
            ..Default::default()
        })
        .await
        .unwrap();
    });
    assert!(missed(&s, &t.path().join("d4"), &strs(&fetch), &[]));
    for d in ["d1", "d2", "d3", "d4"] {
        assert_eq!(rev(&t.path().join(d), "FETCH_HEAD"), pushed, "{d}");
    }
    assert_clean(&s);
}

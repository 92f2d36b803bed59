//! Reads stay correct while a repository is optimized: 4 readers (RefExists, FindCommit,
//! TreeEntry, GetBlob, ListRefs) check every answer against what the repository held
//! before, a cloner clones through `gitrpc-ssh` and fscks the clone, 2 pushers push new
//! commits to their own branches (which also makes the scheduler optimize in the
//! background), while OptimizeRepository(EAGER) runs again and again, then heuristically,
//! then PruneUnreachableObjects. Afterwards: no wrong answer, every successful push on its
//! branch, `git fsck` clean, no git left, no lock files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitrpc_proto::gitaly::blob_service_client::BlobServiceClient;
use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::*;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::harness::*;

const REPO: &str = "busy.git";
const BRANCHES: usize = 2000;

/// What the repository held before the load: refs → oid, (commit, path) → blob, blob →
/// content.
struct Known {
    refs: Vec<(String, String)>,
    entries: Vec<(String, String, String)>,
    blobs: BTreeMap<String, Vec<u8>>,
}

/// A repository with 40 commits (a file each, one pushed at a time so each push kept its
/// own pack), loose objects on top, and 2000 loose branches.
fn build(d: &Daemon) -> Known {
    let work = d.seed(REPO);
    let bare = d.storage().join(REPO);
    git_ok(&bare, &["config", "receive.unpackLimit", "1"]);
    let mut entries = Vec::new();
    let mut blobs = BTreeMap::new();
    for i in 0..40 {
        let name = format!("f{i:02}.txt");
        let content = format!("file {i}\n{}\n", "x".repeat(i * 37));
        std::fs::write(work.path().join(&name), &content).unwrap();
        git_ok(work.path(), &["add", "."]);
        git_ok(work.path(), &["commit", "-qm", &format!("commit {i}")]);
        let commit = git_ok(work.path(), &["rev-parse", "HEAD"])
            .trim()
            .to_string();
        let blob = git_ok(work.path(), &["rev-parse", &format!("HEAD:{name}")])
            .trim()
            .to_string();
        entries.push((commit, name, blob.clone()));
        blobs.insert(blob, content.into_bytes());
        // Every fourth commit in its own push (its own pack); the last ones stay loose.
        if i % 4 == 3 && i < 32 {
            git_ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
        }
    }
    git_ok(&bare, &["config", "receive.unpackLimit", "1000"]);
    git_ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    let mut updates = String::new();
    for b in 0..BRANCHES {
        let (commit, _, _) = &entries[b % entries.len()];
        updates.push_str(&format!("create refs/heads/branch/{b:04} {commit}\n"));
    }
    let mut c = std::process::Command::new("git")
        .args(["update-ref", "--stdin"])
        .current_dir(&bare)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(updates.as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success());
    let refs = git_ok(
        &bare,
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    )
    .lines()
    .map(|l| {
        let (r, o) = l.split_once(' ').unwrap();
        (r.to_string(), o.to_string())
    })
    .collect();
    Known {
        refs,
        entries,
        blobs,
    }
}

fn count_files(dir: &Path, pred: &dyn Fn(&str) -> bool) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if pred(&e.file_name().to_string_lossy()) {
                n += 1;
            }
        }
    }
    n
}

/// Lock files anywhere in the repository (none may be left).
fn lock_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().ends_with(".lock") {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_stay_correct_while_repacking() {
    let mut d = Daemon::start(
        "prometheus_listen_addr = \"127.0.0.1:0\"\n[housekeeping]\nafter_writes = 3\n[catfile]\nidle_ttl = \"1s\"\n",
    );
    let known = Arc::new(build(&d));
    let bare = d.storage().join(REPO);
    assert!(count_files(&bare.join("objects/pack"), &|n| n.ends_with(".pack")) >= 8);
    assert!(count_files(&bare.join("refs"), &|_| true) >= BRANCHES);
    let channel = d.channel().await;
    let repo = d.repo(REPO);
    let stop = Arc::new(AtomicBool::new(false));
    let wrong = Arc::new(Mutex::new(Vec::<String>::new()));
    let reads = Arc::new(AtomicU64::new(0));

    let mut readers = Vec::new();
    for r in 0..4u64 {
        let (ch, repo, known, stop, wrong, reads) = (
            channel.clone(),
            repo.clone(),
            known.clone(),
            stop.clone(),
            wrong.clone(),
            reads.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut refs = RefServiceClient::new(ch.clone());
            let mut commits = CommitServiceClient::new(ch.clone());
            let mut blobs = BlobServiceClient::new(ch);
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = (i >> 33) as usize;
                let (name, _) = &known.refs[k % known.refs.len()];
                let (commit, path, blob) = &known.entries[k % known.entries.len()];
                let bad = |what: String| wrong.lock().unwrap().push(what);
                match k % 5 {
                    0 => match refs
                        .ref_exists(RefExistsRequest {
                            repository: Some(repo.clone()),
                            r#ref: name.clone().into_bytes(),
                        })
                        .await
                    {
                        Ok(r) if r.get_ref().value => {}
                        other => bad(format!("RefExists {name}: {other:?}")),
                    },
                    1 => match commits
                        .find_commit(FindCommitRequest {
                            repository: Some(repo.clone()),
                            revision: commit.clone().into_bytes(),
                            ..Default::default()
                        })
                        .await
                    {
                        Ok(r) if r.get_ref().commit.as_ref().map(|c| &c.id) == Some(commit) => {}
                        other => bad(format!("FindCommit {commit}: {other:?}")),
                    },
                    2 => {
                        let got = async {
                            let mut s = commits
                                .tree_entry(TreeEntryRequest {
                                    repository: Some(repo.clone()),
                                    revision: commit.clone().into_bytes(),
                                    path: path.clone().into_bytes(),
                                    ..Default::default()
                                })
                                .await?
                                .into_inner();
                            let first = s.next().await.transpose()?;
                            Ok::<_, tonic::Status>(first.map(|m| m.oid))
                        }
                        .await;
                        if got.as_ref().ok() != Some(&Some(blob.clone())) {
                            bad(format!("TreeEntry {commit}:{path}: {got:?}"));
                        }
                    }
                    3 => {
                        let got = async {
                            let mut s = blobs
                                .get_blob(GetBlobRequest {
                                    repository: Some(repo.clone()),
                                    oid: blob.clone(),
                                    limit: -1,
                                })
                                .await?
                                .into_inner();
                            let mut data = Vec::new();
                            while let Some(m) = s.next().await {
                                data.extend_from_slice(&m?.data);
                            }
                            Ok::<_, tonic::Status>(data)
                        }
                        .await;
                        if got.as_ref().ok() != known.blobs.get(blob) {
                            bad(format!("GetBlob {blob}: {:?}", got.map(|d| d.len())));
                        }
                    }
                    _ => {
                        let got = async {
                            let mut s = refs
                                .list_refs(ListRefsRequest {
                                    repository: Some(repo.clone()),
                                    patterns: vec![b"refs/heads/branch/".to_vec()],
                                    ..Default::default()
                                })
                                .await?
                                .into_inner();
                            let mut n = 0;
                            while let Some(m) = s.next().await {
                                n += m?.references.len();
                            }
                            Ok::<_, tonic::Status>(n)
                        }
                        .await;
                        if got.as_ref().ok() != Some(&BRANCHES) {
                            bad(format!("ListRefs: {got:?}"));
                        }
                    }
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // A cloner: full clones through gitrpc-ssh, each fscked.
    let clones = Arc::new(AtomicU64::new(0));
    let cloner = {
        let (ssh, url, stop, wrong, clones) = (
            d.ssh_command(),
            d.ssh_url(REPO),
            stop.clone(),
            wrong.clone(),
            clones.clone(),
        );
        tokio::task::spawn_blocking(move || {
            while !stop.load(Ordering::Relaxed) {
                let dir = tempfile::tempdir().unwrap();
                let out = std::process::Command::new("git")
                    .args(["clone", "-q", "--bare", &url, "c.git"])
                    .current_dir(dir.path())
                    .env("GIT_SSH_COMMAND", &ssh)
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .output()
                    .unwrap();
                if !out.status.success() {
                    wrong
                        .lock()
                        .unwrap()
                        .push(format!("clone: {}", String::from_utf8_lossy(&out.stderr)));
                    continue;
                }
                let fsck = git(&dir.path().join("c.git"), &["fsck", "--no-progress"]);
                if !fsck.status.success() {
                    wrong.lock().unwrap().push(format!(
                        "fsck of a clone: {}",
                        String::from_utf8_lossy(&fsck.stderr)
                    ));
                }
                clones.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // Two pushers, each to its own branch; (branch, sha) recorded only when git push said so.
    let pushed = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let mut pushers = Vec::new();
    for p in 0..2 {
        let (stop, pushed, wrong) = (stop.clone(), pushed.clone(), wrong.clone());
        let work = tempfile::tempdir().unwrap();
        let url = d.ssh_url(REPO);
        let mut clone = d.client_git(work.path(), &["clone", "-q", &url, "w"]);
        assert!(clone.status().unwrap().success());
        let w = work.path().join("w");
        let ssh = d.ssh_command();
        pushers.push(tokio::task::spawn_blocking(move || {
            let _keep = work;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                std::fs::write(w.join(format!("p{p}.txt")), format!("push {n}\n")).unwrap();
                git_ok(&w, &["add", "."]);
                git_ok(&w, &["commit", "-qm", &format!("pusher {p} #{n}")]);
                let sha = git_ok(&w, &["rev-parse", "HEAD"]).trim().to_string();
                let out = std::process::Command::new("git")
                    .args([
                        "push",
                        "-q",
                        "origin",
                        &format!("HEAD:refs/heads/pusher-{p}"),
                    ])
                    .current_dir(&w)
                    .env("GIT_SSH_COMMAND", &ssh)
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .output()
                    .unwrap();
                if out.status.success() {
                    pushed
                        .lock()
                        .unwrap()
                        .push((format!("refs/heads/pusher-{p}"), sha));
                } else {
                    wrong
                        .lock()
                        .unwrap()
                        .push(format!("push: {}", String::from_utf8_lossy(&out.stderr)));
                }
            }
        }));
    }

    // The maintainer.
    let mut maint = RepositoryServiceClient::new(channel.clone());
    let (mut optimized, mut busy) = (0, 0);
    for round in 0..8 {
        let strategy = if round < 6 { 2 } else { 1 };
        match maint
            .optimize_repository(OptimizeRepositoryRequest {
                repository: Some(repo.clone()),
                strategy,
            })
            .await
        {
            Ok(_) => optimized += 1,
            // The scheduler got there first (pushes count as writes).
            Err(e) if e.code() == Code::AlreadyExists => busy += 1,
            Err(e) => panic!("OptimizeRepository: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let prune = loop {
        match maint
            .prune_unreachable_objects(PruneUnreachableObjectsRequest {
                repository: Some(repo.clone()),
            })
            .await
        {
            Err(e) if e.code() == Code::AlreadyExists => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => break other,
        }
    };
    prune.unwrap();
    // Let readers see the final state a little too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    cloner.await.unwrap();
    for p in pushers {
        p.await.unwrap();
    }

    let wrong = wrong.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "{} wrong answers: {wrong:#?}",
        wrong.len()
    );
    let (reads, clones) = (
        reads.load(Ordering::Relaxed),
        clones.load(Ordering::Relaxed),
    );
    let pushed = pushed.lock().unwrap().clone();
    eprintln!(
        "{reads} reads, {clones} clones, {} pushes, {optimized} optimizations ({busy} found busy)",
        pushed.len()
    );
    assert!(reads > 100 && clones >= 1 && !pushed.is_empty() && optimized >= 1);
    // Every successful push is on its branch.
    for (branch, sha) in &pushed {
        let ok = git(&bare, &["merge-base", "--is-ancestor", sha, branch]);
        assert!(ok.status.success(), "{sha} not on {branch}");
    }
    git_ok(&bare, &["fsck", "--no-progress", "--no-dangling"]);
    // It was repacked and its refs packed; the scheduler ran after pushes.
    assert!(bare.join("objects/pack/multi-pack-index").exists());
    assert!(count_files(&bare.join("refs/heads/branch"), &|_| true) == 0);
    if pushed.len() >= 3 {
        let scheduled = d.metric("gitrpc_housekeeping_scheduled_total{reason=\"writes\"}");
        assert!(
            scheduled >= 1.0,
            "no background optimization after {} pushes",
            pushed.len()
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !d.git_processes().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "git left: {:#?}",
            d.git_processes()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(lock_files(&bare), Vec::<PathBuf>::new());
    assert!(d.alive());
    d.kill();
}

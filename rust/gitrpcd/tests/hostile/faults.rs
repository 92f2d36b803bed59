//! See main.rs. Faults: a git killed under the daemon, locks left by a killed git, the
//! daemon itself killed mid-push, and what such crashes leave on disk.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gitrpc_proto::gitaly::blob_service_client::BlobServiceClient;
use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use crate::harness::*;

const LONG_AGO: Duration = Duration::from_secs(4 * 24 * 3600);

/// SIGKILL the daemon's idle `git cat-file` processes (as the OOM killer would); how many.
fn kill_idle_catfiles(d: &Daemon) -> usize {
    let pids = d.gits_running("cat-file");
    for p in &pids {
        signal(*p, libc::SIGKILL);
    }
    wait_for("killed cat-file gone", Duration::from_secs(10), || {
        pids.iter().all(|p| !pid_alive(*p))
    });
    pids.len()
}

/// Make a call that pools a cat-file, then kill that cat-file while it is idle. Retried if
/// the pool's idle timeout (`idle_ttl`) was faster than us on a loaded machine.
async fn pool_then_kill<F, Fut>(d: &Daemon, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..3 {
        call().await;
        if kill_idle_catfiles(d) > 0 {
            return;
        }
    }
    panic!("no idle cat-file to kill");
}

/// Issue item 11: an idle pooled cat-file killed behind the pool's back used to fail the next
/// read with `INTERNAL: Broken pipe`.
#[tokio::test]
async fn killed_idle_catfile_is_replaced() {
    let mut d = Daemon::start("[catfile]\nidle_ttl = 4\n");
    let _w = d.seed("a.git");
    let bare = d.storage().join("a.git");
    let head = git_ok(&bare, &["rev-parse", "main"]).trim().to_string();
    let blob = git_ok(&bare, &["rev-parse", "main:README.md"])
        .trim()
        .to_string();
    let ch = d.channel().await;
    let repo = d.repo("a.git");

    let commits = CommitServiceClient::new(ch.clone());
    let find_commit = || {
        let mut c = commits.clone();
        let repo = repo.clone();
        async move {
            c.find_commit(FindCommitRequest {
                repository: Some(repo),
                revision: b"main".to_vec(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().commit.map(|c| c.id))
        }
    };
    let tree_entry = || {
        let mut c = commits.clone();
        let repo = repo.clone();
        async move {
            let mut s = c
                .tree_entry(TreeEntryRequest {
                    repository: Some(repo),
                    revision: b"main".to_vec(),
                    path: b"README.md".to_vec(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut data = Vec::new();
            while let Some(m) = s.message().await? {
                data.extend(m.data);
            }
            Ok::<_, tonic::Status>(data)
        }
    };
    let blobs = BlobServiceClient::new(ch.clone());
    let get_blob = || {
        let mut c = blobs.clone();
        let repo = repo.clone();
        let oid = blob.clone();
        async move {
            let mut s = c
                .get_blob(GetBlobRequest {
                    repository: Some(repo),
                    oid,
                    limit: -1,
                })
                .await?
                .into_inner();
            let mut data = Vec::new();
            while let Some(m) = s.message().await? {
                data.extend(m.data);
            }
            Ok::<_, tonic::Status>(data)
        }
    };

    let base = d.baseline();
    pool_then_kill(&d, || async {
        find_commit().await.unwrap();
    })
    .await;
    assert_eq!(find_commit().await.unwrap(), Some(head.clone()));
    pool_then_kill(&d, || async {
        tree_entry().await.unwrap();
    })
    .await;
    assert_eq!(tree_entry().await.unwrap(), b"one\ntwo\n");
    pool_then_kill(&d, || async {
        get_blob().await.unwrap();
    })
    .await;
    assert_eq!(get_blob().await.unwrap(), b"one\ntwo\n");
    d.assert_healthy(&base, 64 * 1024);
}

/// A commit in `bare` that no ref points at yet (pushed to a scratch branch, then returned).
fn new_commit(work: &Path, bare: &Path, branch: &str) -> String {
    git_ok(work, &["commit", "-q", "--allow-empty", "-m", branch]);
    git_ok(
        work,
        &[
            "push",
            "-q",
            bare.to_str().unwrap(),
            &format!("HEAD:{branch}"),
        ],
    );
    git_ok(work, &["rev-parse", "HEAD"]).trim().to_string()
}

/// Lock files in a repository (`HEAD.lock`, `refs/**/*.lock`, ...).
fn lock_files(bare: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![bare.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "lock") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The real fault of item 12: `git update-ref --stdin` holding a prepared transaction (its
/// locks taken), killed with SIGKILL. Returns the lock files it leaves (the ref's, and
/// `HEAD.lock` too when HEAD points at the ref: git locks it for HEAD's reflog).
fn killed_update_ref(bare: &Path, reference: &str, new: &str, old: &str) -> Vec<PathBuf> {
    let mut ur = Command::new("git")
        .args(["--git-dir", bare.to_str().unwrap(), "update-ref", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = ur.stdin.take().unwrap();
    write!(stdin, "start\nupdate {reference} {new} {old}\nprepare\n").unwrap();
    stdin.flush().unwrap();
    let mut out = BufReader::new(ur.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "prepare: ok" {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "update-ref ended");
    }
    ur.kill().unwrap();
    ur.wait().unwrap();
    let locks = lock_files(bare);
    assert!(
        locks.contains(&bare.join(format!("{reference}.lock"))),
        "update-ref left no lock: {locks:?}"
    );
    locks
}

async fn update_reference(
    c: &mut RefServiceClient<tonic::transport::Channel>,
    repo: &Repository,
    reference: &str,
    new: &str,
) -> Result<(), tonic::Status> {
    let req = UpdateReferencesRequest {
        repository: Some(repo.clone()),
        updates: vec![update_references_request::Update {
            reference: reference.as_bytes().to_vec(),
            new_object_id: new.as_bytes().to_vec(),
            old_object_id: Vec::new(),
        }],
    };
    c.update_references(tokio_stream::iter([req]))
        .await
        .map(|_| ())
}

/// Issue item 12: a ref lock left by a killed `update-ref` made the ref unwritable forever.
/// A stale one (older than the grace period, no git of ours working there) is removed and
/// the update retried; a fresh one may belong to a live git and still refuses.
#[tokio::test]
async fn stale_ref_locks_of_killed_gits_are_removed() {
    let mut d = Daemon::start("[catfile]\nidle_ttl = 2\n");
    let w = d.seed("a.git");
    let bare = d.storage().join("a.git");
    let old = git_ok(&bare, &["rev-parse", "main"]).trim().to_string();
    let new = new_commit(w.path(), &bare, "scratch");
    let ch = d.channel().await;
    let repo = d.repo("a.git");
    let mut refs = RefServiceClient::new(ch.clone());
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let base = d.baseline();

    // UpdateReferences.
    let locks = killed_update_ref(&bare, "refs/heads/main", &new, &old);
    let err = update_reference(&mut refs, &repo, "refs/heads/main", &new)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(lock_files(&bare), locks, "fresh locks are left alone");
    for l in &locks {
        backdate(l, LONG_AGO);
    }
    update_reference(&mut refs, &repo, "refs/heads/main", &new)
        .await
        .unwrap();
    assert_eq!(git_ok(&bare, &["rev-parse", "main"]).trim(), new);
    assert!(lock_files(&bare).is_empty());

    // WriteRef of a branch, and of HEAD (symbolic-ref takes HEAD.lock).
    for l in killed_update_ref(&bare, "refs/heads/w", &new, "") {
        backdate(&l, LONG_AGO);
    }
    repos
        .write_ref(WriteRefRequest {
            repository: Some(repo.clone()),
            r#ref: b"refs/heads/w".to_vec(),
            revision: new.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(git_ok(&bare, &["rev-parse", "w"]).trim(), new);
    let head_lock = bare.join("HEAD.lock");
    std::fs::write(&head_lock, "ref: refs/heads/main\n").unwrap();
    backdate(&head_lock, LONG_AGO);
    repos
        .write_ref(WriteRefRequest {
            repository: Some(repo.clone()),
            r#ref: b"HEAD".to_vec(),
            revision: b"refs/heads/w".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        git_ok(&bare, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/w"
    );

    // DeleteRefs of a packed ref needs packed-refs.lock.
    git_ok(&bare, &["pack-refs", "--all"]);
    let packed_lock = bare.join("packed-refs.lock");
    std::fs::copy(bare.join("packed-refs"), &packed_lock).unwrap();
    backdate(&packed_lock, LONG_AGO);
    refs.delete_refs(DeleteRefsRequest {
        repository: Some(repo.clone()),
        refs: vec![b"refs/heads/scratch".to_vec()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(git(&bare, &["rev-parse", "--verify", "-q", "scratch"])
        .stdout
        .is_empty());
    assert!(!packed_lock.exists());
    d.assert_healthy(&base, 64 * 1024);
}

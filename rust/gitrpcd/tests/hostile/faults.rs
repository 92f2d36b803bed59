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

/// Stale locks are also swept at start-up (in the background), before any update needs them.
#[tokio::test]
async fn stale_ref_locks_are_swept_at_start_up() {
    let mut d = Daemon::start("");
    let w = d.seed("g/a.git");
    let bare = d.storage().join("g/a.git");
    let old = git_ok(&bare, &["rev-parse", "main"]).trim().to_string();
    let new = new_commit(w.path(), &bare, "scratch");
    d.kill();
    let stale = killed_update_ref(&bare, "refs/heads/main", &new, &old);
    for l in &stale {
        backdate(l, LONG_AGO);
    }
    let fresh = bare.join("refs/heads/scratch.lock");
    killed_update_ref(&bare, "refs/heads/scratch", &old, &new);
    d.spawn();
    wait_for("stale locks removed", Duration::from_secs(15), || {
        stale.iter().all(|l| !l.exists())
    });
    assert_eq!(
        lock_files(&bare),
        [fresh],
        "a lock under the grace period is kept"
    );
    assert_eq!(git_ok(&bare, &["rev-parse", "main"]).trim(), old);
    let base = d.baseline();
    d.assert_healthy(&base, 64 * 1024);
}

/// A pre-receive hook that says it started, then waits until `release` exists.
fn stalling_hook(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let hook = dir.join("pre-receive");
    let started = dir.join("started");
    let release = dir.join("release");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >/dev/null\ntouch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.1; done\n",
            started.display(),
            release.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    (hook, started, release)
}

/// `objects/tmp_objdir-incoming-*` directories of a repository.
fn quarantines(bare: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(bare.join("objects"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tmp_objdir-"))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Start a push of a new commit on `main` through the daemon; returns once the hook runs.
fn stalled_push(d: &Daemon, work: &Path, rel: &str, started: &Path) -> std::process::Child {
    std::fs::write(work.join("big.bin"), vec![7u8; 64 * 1024]).unwrap();
    git_ok(work, &["add", "."]);
    git_ok(work, &["commit", "-qm", "pushed"]);
    let push = d
        .client_git(work, &["push", "-q", &d.ssh_url(rel), "HEAD:main"])
        .spawn()
        .unwrap();
    wait_for("pre-receive hook started", Duration::from_secs(30), || {
        started.exists()
    });
    push
}

/// Issue item 13: SIGKILL of gitrpcd mid-push left receive-pack and its hook running. They
/// are killed when a server starts again, before it serves.
#[tokio::test]
async fn gits_of_a_killed_daemon_die() {
    let hooks = tempfile::tempdir().unwrap();
    let (hook, started, _release) = stalling_hook(hooks.path());
    let mut d = Daemon::start(&format!("[hooks]\npre_receive = \"{}\"\n", hook.display()));
    let w = d.seed("a.git");
    let mut push = stalled_push(&d, w.path(), "a.git", &started);
    let gits = d.git_processes();
    assert!(
        gits.iter().any(|(_, cmd)| cmd.contains("receive-pack")),
        "{gits:?}"
    );
    d.kill();
    d.spawn();
    wait_for(
        "orphaned git processes gone",
        Duration::from_secs(10),
        || gits.iter().all(|(p, _)| !pid_alive(*p)),
    );
    assert!(
        !push.wait().unwrap().success(),
        "the push can't have worked"
    );
    let base = d.baseline();
    d.assert_healthy(&base, 64 * 1024);
}

/// Leftovers of crashes: the quarantine of a push killed with SIGKILL, the hooks directory
/// of a killed daemon, its temp directories. Removed when a server starts again.
#[tokio::test]
async fn leftovers_of_crashes_are_removed() {
    let hooks = tempfile::tempdir().unwrap();
    let (hook, started, _release) = stalling_hook(hooks.path());
    let mut d = Daemon::start(&format!("[hooks]\npre_receive = \"{}\"\n", hook.display()));
    let w = d.seed("a.git");
    let bare = d.storage().join("a.git");
    let mut push = stalled_push(&d, w.path(), "a.git", &started);
    let incoming = quarantines(&bare);
    assert_eq!(incoming.len(), 1, "{incoming:?}");
    // The push dies the hard way (OOM killer): its quarantine stays behind.
    for p in d.gits_running("receive-pack") {
        signal(-p, libc::SIGKILL);
    }
    let _ = push.wait();
    let old_hooks = d.hooks_dirs();
    assert_eq!(old_hooks.len(), 1, "{old_hooks:?}");
    d.kill();
    assert_eq!(
        quarantines(&bare),
        incoming,
        "SIGKILL leaves the quarantine"
    );
    backdate(&incoming[0], LONG_AGO);
    // Temp directories and hook bridges of the dead daemon (named after it), and an old one
    // without an owner in its name.
    let owner = old_hooks[0].split('-').nth(1).unwrap().to_string();
    let internal = d.storage().join("+gitrpc");
    let tmp = internal.join("tmp");
    let planted = [
        tmp.join(format!("create-{owner}-0123abcd/objects")),
        tmp.join("create-0123abcd/objects"),
        internal.join(format!("hooks-run/push-{owner}-4567")),
    ];
    for p in &planted {
        std::fs::create_dir_all(p).unwrap();
    }
    backdate(&tmp.join("create-0123abcd"), LONG_AGO);

    d.spawn();
    let now = d.hooks_dirs();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(
        now, old_hooks,
        "the dead daemon's hooks directory is removed"
    );
    for p in &planted {
        assert!(!p.exists(), "{} left", p.display());
    }
    wait_for("stale quarantine removed", Duration::from_secs(15), || {
        quarantines(&bare).is_empty()
    });
    let base = d.baseline();
    d.assert_healthy(&base, 64 * 1024);
}

/// Housekeeping never removes a quarantine that a running push uses, however old it looks.
#[tokio::test]
async fn quarantine_in_use_is_kept() {
    let hooks = tempfile::tempdir().unwrap();
    let (hook, started, release) = stalling_hook(hooks.path());
    let mut d = Daemon::start(&format!(
        "[hooks]\npre_receive = \"{}\"\n[housekeeping]\ninterval = \"1s\"\n",
        hook.display()
    ));
    let w = d.seed("a.git");
    let _other = d.seed("b.git");
    let bare = d.storage().join("a.git");
    let other = d.storage().join("b.git/objects/tmp_objdir-incoming-old");
    let base = d.baseline();
    let push = stalled_push(&d, w.path(), "a.git", &started);
    let incoming = quarantines(&bare);
    assert_eq!(incoming.len(), 1, "{incoming:?}");
    backdate(&incoming[0], LONG_AGO);
    // Two full passes over the storage, seen through a stale quarantine of another repository.
    for _ in 0..2 {
        std::fs::create_dir_all(&other).unwrap();
        backdate(&other, LONG_AGO);
        wait_for("housekeeping pass", Duration::from_secs(15), || {
            !other.exists()
        });
    }
    assert_eq!(quarantines(&bare), incoming, "a quarantine in use is kept");
    std::fs::write(&release, "").unwrap();
    let out = push.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(quarantines(&bare).is_empty());
    d.assert_healthy(&base, 64 * 1024);
}

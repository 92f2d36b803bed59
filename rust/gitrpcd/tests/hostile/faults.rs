//! See main.rs. Faults: a git killed under the daemon, locks left by a killed git, the
//! daemon itself killed mid-push, and what such crashes leave on disk.

use std::time::Duration;

use gitrpc_proto::gitaly::blob_service_client::BlobServiceClient;
use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::*;

use crate::harness::*;

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

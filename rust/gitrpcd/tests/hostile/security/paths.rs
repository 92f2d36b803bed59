//! Which paths a caller can reach: the private directory, path spellings and bounds, a
//! removed storage; and what an unknown method answers.

use std::time::{Duration, Instant};

use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::*;

/// Every spelling of the server's private directory (`+gitrpc`) is refused: nothing can be
/// created, probed or removed there, and pushes keep working.
#[tokio::test]
async fn private_directory_is_reserved() {
    let mut d = json_daemon("");
    let _w = d.seed("a.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let internal = d.storage().join("+gitrpc");
    let hooks = std::fs::read_dir(&internal)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("hooks-") && n != "hooks-run")
        .expect("the server's hooks directory");
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let spellings = [
        "+gitrpc/x.git".to_string(),
        "./+gitrpc/x.git".into(),
        "x/../+gitrpc/x.git".into(),
        "a/./../+gitrpc/x".into(),
        ".//+gitrpc//tmp/y.git".into(),
        "+gitrpc/spool/z.git".into(),
        "+gitrpc/".into(),
        "+gitrpc".into(),
        "+gitrpc/spool/..".into(),
        format!("+gitrpc/{hooks}/update"),
        format!("./+gitrpc/{hooks}/update"),
    ];
    for rel in &spellings {
        let e = repos
            .create_repository(CreateRepositoryRequest {
                repository: Some(d.repo(rel)),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "create {rel}: {e:?}");
        assert!(e.message().contains("reserved"), "create {rel}: {e:?}");
        let e = repos
            .repository_exists(RepositoryExistsRequest {
                repository: Some(d.repo(rel)),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "exists {rel}: {e:?}");
        let e = repos
            .remove_repository(RemoveRepositoryRequest {
                repository: Some(d.repo(rel)),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "remove {rel}: {e:?}");
    }
    assert!(!internal.join(&hooks).join("update").exists());
    assert!(internal.join("spool").is_dir(), "the spool is still there");
    // A push still runs (the hooks directory holds no stray `update` hook).
    let work = tempfile::tempdir().unwrap();
    git_ok(
        work.path(),
        &[
            "clone",
            "-q",
            d.storage().join("a.git").to_str().unwrap(),
            ".",
        ],
    );
    git_ok(
        work.path(),
        &["commit", "-q", "--allow-empty", "-m", "three"],
    );
    let out = ssh_git(
        &d,
        work.path(),
        &["push", "-q", &ssh_url("a.git"), "HEAD:main"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// `[[concurrency]]` budgets are per repository, whatever its spelling: with one slot per
/// repository, `./a.git` and `x/../a.git` wait behind `a.git` (and are refused after
/// `max_queue_wait`), while `b.git` runs.
#[tokio::test]
async fn limits_key_on_the_resolved_repository() {
    let mut d = json_daemon(
        "[[concurrency]]\nrpc = \"/gitaly.SSHService/SSHUploadPack\"\nmax_per_repo = 1\n\
         max_queue_wait = \"10ms\"\n",
    );
    let _a = d.seed("a.git");
    let _b = d.seed("b.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let mut ssh = SshServiceClient::new(ch.clone());
    let first = |rel: &str| SshUploadPackRequest {
        repository: Some(d.repo(rel)),
        ..Default::default()
    };

    // Hold a.git's slot: an upload-pack session that waits for the client's wants.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(first("a.git")).await.unwrap();
    let mut held = ssh
        .ssh_upload_pack(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let adv = held.message().await.unwrap().expect("advertisement");
    assert!(!adv.stdout.is_empty());

    for rel in ["a.git", "./a.git", "x/../a.git", "a.git/", ".//a.git/."] {
        let e = ssh
            .ssh_upload_pack(tokio_stream::iter(vec![first(rel)]))
            .await
            .err()
            .unwrap_or_else(|| panic!("{rel} got its own budget"));
        assert_eq!(e.code(), Code::ResourceExhausted, "{rel}: {e:?}");
    }
    // Another repository has its own budget.
    let mut other = ssh
        .ssh_upload_pack(tokio_stream::iter(vec![first("b.git")]))
        .await
        .unwrap()
        .into_inner();
    while other.message().await.unwrap().is_some() {}

    // Once a.git's session ends, another spelling of it runs.
    drop(tx);
    while held.message().await.unwrap().is_some() {}
    let mut again = ssh
        .ssh_upload_pack(tokio_stream::iter(vec![first("x/../a.git")]))
        .await
        .unwrap()
        .into_inner();
    while again.message().await.unwrap().is_some() {}
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// A relative path is bounded (length, components) before any work, and the work is
/// linear: a 512 KB path of 256,000 components is refused at once, and while several are
/// in flight other calls are answered.
#[tokio::test]
async fn paths_are_bounded_before_any_work() {
    let mut d = json_daemon("");
    let _w = d.seed("a.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let exists = |rel: String| {
        let mut c = RepositoryServiceClient::new(ch.clone());
        let repo = d.repo(&rel);
        async move {
            c.repository_exists(RepositoryExistsRequest {
                repository: Some(repo),
            })
            .await
        }
    };
    let started = Instant::now();
    let huge = "a/".repeat(256_000);
    let hostile: Vec<_> = (0..4).map(|_| tokio::spawn(exists(huge.clone()))).collect();
    let normal = exists("a.git".into()).await.unwrap().into_inner();
    assert!(normal.exists);
    for h in hostile {
        let e = h.await.unwrap().unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert_eq!(
            e.message(),
            "relative path too long: 512000 bytes (max 4096)"
        );
    }
    // Generous: these take milliseconds now; each took ~10 s of a runtime thread before.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    let deep = "d/".repeat(200) + "r.git";
    let e = exists(deep).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("too many components"), "{e:?}");
    let e = exists("a".repeat(5000)).await.unwrap_err();
    assert!(e.message().contains("relative path too long"), "{e:?}");
    // At the bounds, a path is looked up as usual.
    let at_bound = "d/".repeat(127) + "r.git";
    assert!(!exists(at_bound).await.unwrap().into_inner().exists);
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// A storage removed while the server runs is `NOT_FOUND` naming the storage (as Gitaly
/// answers), nothing is recreated by a call, and the server serves it again once it is back,
/// with its pre-receive hook still deciding pushes.
#[tokio::test]
async fn removed_storage_is_not_found_and_recovers() {
    let hook_dir = tempfile::tempdir().unwrap();
    let hook = hook_dir.path().join("pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nif grep -q refs/heads/frozen; then echo frozen >&2; exit 1; fi\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut d = json_daemon(&format!("[hooks]\npre_receive = \"{}\"\n", hook.display()));
    let _w = d.seed("a.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let mut commits = CommitServiceClient::new(ch.clone());

    std::fs::remove_dir_all(d.storage()).unwrap();
    let e = repos
        .repository_exists(RepositoryExistsRequest {
            repository: Some(d.repo("a.git")),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(e.message(), "storage does not exist: \"default\"");
    let e = commits
        .find_commit(FindCommitRequest {
            repository: Some(d.repo("a.git")),
            revision: b"main".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = repos
        .create_repository(CreateRepositoryRequest {
            repository: Some(d.repo("new.git")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(!d.storage().exists(), "a call recreated the storage");

    // Back (empty): served again.
    std::fs::create_dir(d.storage()).unwrap();
    let exists = repos
        .repository_exists(RepositoryExistsRequest {
            repository: Some(d.repo("a.git")),
        })
        .await
        .unwrap()
        .into_inner()
        .exists;
    assert!(!exists);
    repos
        .create_repository(CreateRepositoryRequest {
            repository: Some(d.repo("new.git")),
            ..Default::default()
        })
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    git_ok(work.path(), &["init", "-q", "-b", "main"]);
    git_ok(work.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
    let url = ssh_url("new.git");
    let out = ssh_git(&d, work.path(), &["push", "-q", &url, "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ssh_git(&d, work.path(), &["push", "-q", &url, "main:frozen"]);
    assert!(!out.status.success(), "the pre-receive hook no longer ran");
    assert!(String::from_utf8_lossy(&out.stderr).contains("frozen"));
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// RemoveRepository normalises its path: `x.git/.` removes `x.git`; a path that normalises
/// to the storage root is refused, and the storage stays intact.
#[tokio::test]
async fn remove_repository_normalises() {
    let mut d = json_daemon("");
    let _x = d.seed("x.git");
    let _k = d.seed("keep.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let remove = |rel: &str| RemoveRepositoryRequest {
        repository: Some(d.repo(rel)),
    };
    repos.remove_repository(remove("x.git/.")).await.unwrap();
    assert!(!d.storage().join("x.git").exists());
    for rel in ["keep.git/..", ".", "./", "keep.git/./..//"] {
        let e = repos.remove_repository(remove(rel)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{rel}: {e:?}");
    }
    assert!(d.storage().join("keep.git/HEAD").is_file());
    let e = repos
        .remove_repository(remove("x.git/."))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// A call to a method or service the server doesn't have is `UNIMPLEMENTED` with grpc-go's
/// message, from the server itself (a raw tonic client adds nothing) and through our client.
#[tokio::test]
async fn unknown_methods_say_so() {
    use tonic::codegen::http::uri::PathAndQuery;
    let mut d = json_daemon("");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let cases = [
        (
            "/gitaly.RefService/NoSuch",
            "unknown method NoSuch for service gitaly.RefService",
        ),
        ("/gitaly.NoSuch/Method", "unknown service gitaly.NoSuch"),
        (
            "/grpc.health.v1.Health/NoSuch",
            "unknown method NoSuch for service grpc.health.v1.Health",
        ),
    ];
    for (path, want) in cases {
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.unwrap();
        let e = grpc
            .unary(
                tonic::Request::new(Vec::new()),
                PathAndQuery::from_static(path),
                gitrpc_client::raw::RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented, "{path}");
        assert_eq!(e.message(), want, "{path}");
    }
    let client = gitrpc_client::Client::connect(&d.address(), &Default::default())
        .await
        .unwrap();
    let e = client
        .call_unary("/gitaly.RefService/NoSuch", Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        "unknown method NoSuch for service gitaly.RefService"
    );
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

use std::time::Duration;

use futures::StreamExt;
use gitrpc_client::{client::repository, Client, Options};
use tonic::Code;

use crate::common::*;

/// A started `Serving` on a temp storage and socket.
/// The same typed calls give the same answers over the socket and in-process.
#[tokio::test]
async fn socket_and_in_process_agree() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |_| {}).await;
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let head = fx.git(&["rev-parse", "main"]).trim().to_string();
    let blob_oid = fx.git(&["rev-parse", "main:src/lib.rs"]).trim().to_string();
    let address = server.addresses()[0].clone();
    assert!(address.starts_with("unix:"), "{address}");
    let remote = Client::connect(&address, &Options::default())
        .await
        .unwrap();
    // Every call has a deadline unless the caller opts out, as in C and Ruby.
    assert_eq!(remote.timeout(), Some(gitrpc_client::DEFAULT_TIMEOUT));
    let local = Client::from_service(server.in_process(), None);
    let repo = repository(STORAGE, "r.git");
    for c in [&remote, &local] {
        assert!(c.repository_exists(&repo).await.unwrap());
        assert!(c.ref_exists(&repo, "refs/heads/main").await.unwrap());
        assert_eq!(
            c.find_default_branch_name(&repo).await.unwrap().as_deref(),
            Some(&b"refs/heads/main"[..])
        );
        let commit = c.find_commit(&repo, b"main").await.unwrap().unwrap();
        assert_eq!(commit.id, head);
        assert!(c.find_commit(&repo, b"nope").await.unwrap().is_none());
        let branches = c.branches(&repo).await.unwrap();
        assert!(branches.iter().any(|b| b.name == b"refs/heads/main"));
        let listed: Vec<_> = c
            .list_commits(&repo, vec!["main".into()])
            .await
            .unwrap()
            .collect()
            .await;
        let count = fx.git(&["rev-list", "--count", "main"]);
        assert_eq!(listed.len(), count.trim().parse::<usize>().unwrap());
        assert_eq!(listed[0].as_ref().unwrap().id, head);
        let blob = c.get_blob(&repo, &blob_oid, -1).await.unwrap().unwrap();
        assert_eq!(blob.data, b"pub fn answer() -> u32 {\n    42\n}\n");
        assert!(c
            .get_blob(&repo, &"0".repeat(40), -1)
            .await
            .unwrap()
            .is_none());
        let entry = c
            .tree_entry(&repo, b"main", b"src/lib.rs", 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (entry.kind, entry.oid.as_str()),
            ("blob", blob_oid.as_str())
        );
        let dir_entry = c.tree_entry(&repo, b"main", b"src", 0).await.unwrap();
        assert_eq!(dir_entry.unwrap().kind, "tree");
        assert!(c
            .tree_entry(&repo, b"main", b"missing", 0)
            .await
            .unwrap()
            .is_none());
        let err = c.ref_exists(&repo, "main").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        // Something missing is `None`; a missing repository is still an error.
        assert!(c
            .tree_entry(&repo, b"nope", b"src", 0)
            .await
            .unwrap()
            .is_none());
        let empty = repository(STORAGE, "empty.git");
        c.create_repository(&empty, "main").await.unwrap();
        assert_eq!(c.find_default_branch_name(&empty).await.unwrap(), None);
        c.remove_repository(&empty).await.unwrap();
        let missing = repository(STORAGE, "missing.git");
        for err in [
            c.find_default_branch_name(&missing).await.unwrap_err(),
            c.find_commit(&missing, b"main").await.unwrap_err(),
            c.get_blob(&missing, &blob_oid, -1).await.unwrap_err(),
            c.tree_entry(&missing, b"main", b"src", 0)
                .await
                .unwrap_err(),
        ] {
            assert_eq!(err.code(), Code::NotFound, "{err:?}");
        }
    }
    let socket = dir.path().join("s.sock");
    server.stop(Duration::from_secs(1)).await;
    assert!(!socket.exists(), "socket removed on stop");
    let err = local
        .ref_exists(&repo, "refs/heads/main")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

/// The client's default deadline cuts a long call, on either transport.
#[tokio::test]
async fn default_deadline_applies() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |_| {}).await;
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    // 40 MB of incompressible data: streaming it takes far longer than 1 ms.
    let big: String = (0..40 * 1024 * 1024 / 16)
        .map(|i: u64| format!("{:016x}", i.wrapping_mul(0x9E3779B97F4A7C15)))
        .collect();
    fx.write("big.txt", &big);
    fx.git(&["add", "big.txt"]);
    fx.git(&["commit", "-q", "-m", "big"]);
    let oid = fx.git(&["rev-parse", "main:big.txt"]).trim().to_string();
    let repo = repository(STORAGE, "r.git");
    let remote = Client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    let local = Client::from_service(server.in_process(), None);
    for c in [&remote, &local] {
        c.set_timeout(Some(Duration::from_millis(1)));
        let err = c.get_blob(&repo, &oid, -1).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        c.set_timeout(None);
        let blob = c.get_blob(&repo, &oid, -1).await.unwrap().unwrap();
        assert_eq!(blob.data.len(), big.len());
    }
}

/// Raw calls: bytes in, bytes out; bad method names never reach the server.
#[tokio::test]
async fn raw_calls() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |_| {}).await;
    Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let c = Client::from_service(server.in_process(), None);
    let req = gitrpc_proto::gitaly::RefExistsRequest {
        repository: Some(repository(STORAGE, "r.git")),
        r#ref: b"refs/heads/main".to_vec(),
    };
    let resp = c
        .call_unary("/gitaly.RefService/RefExists", req.encode_to_vec())
        .await
        .unwrap();
    let resp = gitrpc_proto::gitaly::RefExistsResponse::decode(&resp[..]).unwrap();
    assert!(resp.value);
    let err = c.call_unary("nope", vec![]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .call_unary("/gitaly.RefService/Nope", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

/// A caller that gives up on a unary call (drops it) gets its git process killed, over the
/// socket and in-process.
#[tokio::test]
async fn abandoned_unary_call_kills_git() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |_| {}).await;
    hanging_repo(&dir.path().join("storage"), "hang.git");
    let remote = Client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    let local = Client::from_service(server.in_process(), None);
    let repo = repository(STORAGE, "hang.git");
    for (i, c) in [local, remote].iter().enumerate() {
        let ancestor = format!("{}", i + 1).repeat(40);
        let child = "b".repeat(40);
        let call = c.commit_is_ancestor(&repo, &ancestor, &child);
        let r = tokio::time::timeout(Duration::from_millis(300), call).await;
        assert!(r.is_err(), "call returned: {r:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !git_processes(dir.path(), &ancestor).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "git still running: {:?}",
                git_processes(dir.path(), &ancestor)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    server.stop(Duration::from_secs(1)).await;
}

/// Client calls are `Send` futures: embedders can `tokio::spawn` them, on either transport,
/// and many at once share one connection.
#[tokio::test]
async fn calls_can_be_spawned() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |_| {}).await;
    let fx = Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let head = fx.rev_parse("main");
    let remote = Client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    let local = Client::from_service(server.in_process(), None);
    let mut tasks = tokio::task::JoinSet::new();
    for c in [remote, local] {
        for _ in 0..8 {
            let c = c.clone();
            tasks.spawn(async move {
                let repo = repository(STORAGE, "r.git");
                let commit = c.find_commit(&repo, b"main").await?.expect("commit");
                let exists = c.ref_exists(&repo, "refs/heads/main").await?;
                Ok::<_, tonic::Status>((commit.id, exists))
            });
        }
    }
    let mut n = 0;
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap(), (head.clone(), true));
        n += 1;
    }
    assert_eq!(n, 16);
    server.stop(Duration::from_secs(1)).await;
}

use std::path::{Path, PathBuf};
use std::time::Duration;

use gitrpc_client::routing::{Remote, StorageMap};
use gitrpc_client::{client::repository, Client, Options};
use gitrpc_proto::gitaly::*;
use gitrpc_server::config::{Config, Storage};
use gitrpc_server::Serving;
use prost::Message;
use tonic::Code;

use crate::common::*;

const EXISTS: &str = "/gitaly.RepositoryService/RepositoryExists";

/// A server of storage `name` (`<dir>/<name>`), on `<dir>/<name>.sock` if `socket`.
async fn shard(dir: &Path, name: &str, socket: bool) -> Serving {
    Serving::start(Config {
        socket_path: socket.then(|| dir.join(format!("{name}.sock"))),
        storage: vec![Storage {
            name: name.into(),
            path: dir.join(name),
        }],
        ..Default::default()
    })
    .await
    .unwrap()
}

fn calls(s: &Serving, method: &str) -> u64 {
    ["OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION"]
        .iter()
        .map(|code| s.deps().rpcs.count(method, code))
        .sum()
}

fn refs(path: &Path) -> String {
    git(path, &["for-each-ref", "--format=%(objectname) %(refname)"])
}

fn head(path: &Path) -> String {
    git(path, &["symbolic-ref", "HEAD"])
}

fn fsck(path: &Path) {
    let out = git_output(path, &["fsck", "--full", "--strict"]);
    assert!(out.status.success(), "fsck: {out:?}");
}

async fn routed(servers: &[(&str, &Serving)]) -> Client {
    let mut opts = Options::default();
    let mut map = StorageMap::new();
    for (name, s) in servers {
        map.insert(name, Remote::new(s.addresses()[0].clone()))
            .unwrap();
    }
    opts.storages = map;
    Client::connect("", &opts).await.unwrap()
}

/// Three servers, one storage each: typed, generated, raw and streaming calls each reach
/// the server of their repository's storage; an unknown storage is refused by the client.
#[tokio::test]
async fn calls_go_to_their_storages_servers() {
    let dir = tempfile::tempdir().unwrap();
    let (s1, s2, s3) = (
        shard(dir.path(), "s1", true).await,
        shard(dir.path(), "s2", true).await,
        shard(dir.path(), "s3", true).await,
    );
    let client = routed(&[("s1", &s1), ("s2", &s2), ("s3", &s3)]).await;
    for (name, n) in [("s1", 1), ("s2", 2), ("s3", 3)] {
        for i in 0..n {
            let repo = repository(name, &format!("r{i}.git"));
            client.create_repository(&repo, "main").await.unwrap();
            assert!(client.repository_exists(&repo).await.unwrap());
        }
    }
    assert_eq!(
        (calls(&s1, EXISTS), calls(&s2, EXISTS), calls(&s3, EXISTS)),
        (1, 2, 3)
    );
    assert!(dir.path().join("s3/r2.git/HEAD").exists());

    // Generated stubs, raw unary and raw streaming calls go the same way.
    Fixture::create(&dir.path().join("s2/f.git"), "sha1");
    let f = repository("s2", "f.git");
    let found = client
        .ref_service()
        .ref_exists(RefExistsRequest {
            repository: Some(f.clone()),
            r#ref: b"refs/heads/main".to_vec(),
        })
        .await
        .unwrap();
    assert!(found.into_inner().value);
    let raw = RepositoryExistsRequest {
        repository: Some(repository("s3", "r0.git")),
    };
    let answer = client
        .call_unary(EXISTS, raw.encode_to_vec())
        .await
        .unwrap();
    assert!(
        RepositoryExistsResponse::decode(&answer[..])
            .unwrap()
            .exists
    );
    assert_eq!(calls(&s3, EXISTS), 4);
    let commits: Vec<_> = futures::StreamExt::collect::<Vec<_>>(
        client.list_commits(&f, vec!["main".into()]).await.unwrap(),
    )
    .await;
    assert_eq!(commits.len(), 5);
    assert_eq!(
        s2.deps()
            .rpcs
            .count("/gitaly.CommitService/ListCommits", "OK"),
        1
    );

    // Unknown storage: refused at once, naming it; no server saw a call.
    let before: u64 = [&s1, &s2, &s3].iter().map(|s| calls(s, EXISTS)).sum();
    let err = client
        .repository_exists(&repository("s9", "r.git"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "storage not found: \"s9\"");
    let err = client
        .call_unary(
            EXISTS,
            RepositoryExistsRequest { repository: None }.encode_to_vec(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "empty Repository")
    );
    let after: u64 = [&s1, &s2, &s3].iter().map(|s| calls(s, EXISTS)).sum();
    assert_eq!(before, after);

    // No repository and no default route: said so.
    let err = client
        .call_unary("/gitaly.ServerService/ServerInfo", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err
        .message()
        .starts_with("no default server for /gitaly.ServerService/ServerInfo"));
    for s in [s1, s2, s3] {
        s.stop(Duration::from_secs(1)).await;
    }
}

/// ReplicateRepository moves a repository to another server's storage: equal refs and
/// HEAD, `git fsck` clean; again after changes (a new commit, a deleted branch); its bad
/// inputs.
#[tokio::test]
async fn replicate_repository_between_servers() {
    let dir = tempfile::tempdir().unwrap();
    let (s1, s2) = (
        shard(dir.path(), "s1", true).await,
        shard(dir.path(), "s2", true).await,
    );
    let client = routed(&[("s1", &s1), ("s2", &s2)]).await;
    for format in ["sha1", "sha256"] {
        let rel = format!("g/{format}.git");
        let f = Fixture::create(&dir.path().join("s1").join(&rel), format);
        f.git(&["symbolic-ref", "HEAD", "refs/heads/feature"]);
        let (source, target) = (repository("s1", &rel), repository("s2", &rel));
        client.replicate_repository(&target, &source).await.unwrap();
        let (a, b) = (
            dir.path().join("s1").join(&rel),
            dir.path().join("s2").join(&rel),
        );
        assert_eq!(refs(&a), refs(&b));
        assert_eq!(head(&b), "refs/heads/feature\n");
        assert_eq!(
            git(&b, &["rev-parse", "--show-object-format"]).trim(),
            format
        );
        fsck(&b);

        // Changes since: a commit, a deleted branch, HEAD moved.
        f.git(&["checkout", "--quiet", "main"]);
        f.write("new.txt", "new\n");
        f.commit("c5: more");
        f.git(&["branch", "-D", "feature"]);
        f.git(&["symbolic-ref", "HEAD", "refs/heads/main"]);
        client.replicate_repository(&target, &source).await.unwrap();
        assert_eq!(refs(&a), refs(&b));
        assert!(!refs(&b).contains("refs/heads/feature"));
        assert_eq!(head(&b), "refs/heads/main\n");
        fsck(&b);
    }
    assert_eq!(
        s2.deps()
            .rpcs
            .count("/gitaly.RepositoryService/ReplicateRepository", "OK"),
        4
    );
    assert_eq!(
        s1.deps()
            .rpcs
            .count("/gitaly.SSHService/SSHUploadPack", "OK"),
        4
    );

    let source = repository("s1", "g/sha1.git");
    let code = |r: Result<(), tonic::Status>| {
        let e = r.unwrap_err();
        (e.code(), e.message().to_string())
    };
    assert_eq!(
        code(
            client
                .replicate_repository(&repository("s1", "x.git"), &source)
                .await
        ),
        (
            Code::InvalidArgument,
            "repository and source have the same storage".into()
        )
    );
    assert_eq!(
        code(
            client
                .replicate_repository(&repository("s2", "x.git"), &repository("s1", "nope.git"))
                .await
        ),
        (Code::NotFound, "invalid source repository".into())
    );
    assert_eq!(
        code(
            client
                .replicate_repository(&repository("s2", "x.git"), &repository("s7", "a.git"))
                .await
        ),
        (Code::InvalidArgument, "storage not found: \"s7\"".into())
    );
    // Straight to s2 without gitaly-servers: s2 can't know where s1 is.
    let plain = Client::connect(&s2.addresses()[0], &Options::default())
        .await
        .unwrap();
    assert_eq!(
        code(
            plain
                .replicate_repository(&repository("s2", "y.git"), &source)
                .await
        ),
        (
            Code::InvalidArgument,
            "storage \"s1\" is not served here and the call has no gitaly-servers metadata".into()
        )
    );
    assert!(!dir.path().join("s2/y.git").exists());
    assert!(!dir.path().join("s2/x.git").exists());
    assert_no_leftovers(&dir.path().join("s2"));
    for s in [s1, s2] {
        s.stop(Duration::from_secs(1)).await;
    }
}

/// Nothing left in the storage's private directory but what a running server keeps.
fn assert_no_leftovers(storage: &Path) {
    let internal = storage.join("+gitrpc");
    for sub in ["tmp", "hooks-run"] {
        let left: Vec<PathBuf> = std::fs::read_dir(internal.join(sub))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {sub}: {left:?}");
    }
}

/// CreateBundle on one server, CreateRepositoryFromBundle on another: the same refs; both
/// hashes; an empty repository, an existing target and a garbage bundle are refused.
#[tokio::test]
async fn bundles_move_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let (s1, s3) = (
        shard(dir.path(), "s1", true).await,
        shard(dir.path(), "s3", true).await,
    );
    let client = routed(&[("s1", &s1), ("s3", &s3)]).await;
    for format in ["sha1", "sha256"] {
        let rel = format!("{format}.git");
        Fixture::create(&dir.path().join("s1").join(&rel), format);
        let bundle = client.create_bundle(&repository("s1", &rel)).await.unwrap();
        assert!(bundle.starts_with(b"# v"), "a bundle");
        let target = repository("s3", &format!("copy/{rel}"));
        client
            .create_repository_from_bundle(&target, &bundle)
            .await
            .unwrap();
        let (a, b) = (
            dir.path().join("s1").join(&rel),
            dir.path().join("s3/copy").join(&rel),
        );
        assert_eq!(refs(&a), refs(&b));
        assert_eq!(head(&b), "refs/heads/main\n");
        assert_eq!(
            git(&b, &["rev-parse", "--show-object-format"]).trim(),
            format
        );
        assert!(!git(&b, &["config", "--list"]).contains("remote.origin"));
        fsck(&b);
        let e = client
            .create_repository_from_bundle(&target, &bundle)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::AlreadyExists);
    }
    client
        .create_repository(&repository("s1", "empty.git"), "main")
        .await
        .unwrap();
    let e = client
        .create_bundle(&repository("s1", "empty.git"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "refusing to create empty bundle")
    );
    let garbage = repository("s3", "garbage.git");
    let e = client
        .create_repository_from_bundle(&garbage, b"not a bundle")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("invalid bundle"), "{e:?}");
    let e = client
        .create_repository_from_bundle(&garbage, b"")
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "empty bundle")
    );
    assert!(!dir.path().join("s3/garbage.git").exists());
    assert_no_leftovers(&dir.path().join("s3"));
    for s in [s1, s3] {
        s.stop(Duration::from_secs(1)).await;
    }
}

/// One storage served in this process, another over a socket: calls route to each; a
/// replication whose source is in-process (no listener) can't be done by the remote server.
#[tokio::test]
async fn in_process_and_remote_storages() {
    let dir = tempfile::tempdir().unwrap();
    let local = shard(dir.path(), "local", false).await;
    let remote = shard(dir.path(), "s2", true).await;
    let client = Client::builder(&Options::default())
        .in_process("local", local.in_process(), None)
        .storage("s2", &remote.addresses()[0])
        .connect()
        .await
        .unwrap();
    Fixture::create(&dir.path().join("local/a.git"), "sha1");
    Fixture::create(&dir.path().join("s2/b.git"), "sha1");
    assert!(client
        .repository_exists(&repository("local", "a.git"))
        .await
        .unwrap());
    assert!(client
        .repository_exists(&repository("s2", "b.git"))
        .await
        .unwrap());
    assert!(!client
        .repository_exists(&repository("s2", "a.git"))
        .await
        .unwrap());
    assert_eq!((calls(&local, EXISTS), calls(&remote, EXISTS)), (1, 2));
    let e = client
        .replicate_repository(&repository("s2", "a.git"), &repository("local", "a.git"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        "storage \"local\" is served in-process and can't be reached by another server"
    );
    // The other way round the in-process server fetches from the remote one.
    client
        .replicate_repository(&repository("local", "b.git"), &repository("s2", "b.git"))
        .await
        .unwrap();
    assert_eq!(
        refs(&dir.path().join("s2/b.git")),
        refs(&dir.path().join("local/b.git"))
    );
    local.stop(Duration::from_secs(1)).await;
    remote.stop(Duration::from_secs(1)).await;
}

/// Two storages of one in-process server without a listener: a replication between them is
/// done by that server from its own storage (the client has no address to send and needs
/// none); to another in-process server the target's server says it can't reach the source.
#[tokio::test]
async fn replication_between_storages_of_one_in_process_server() {
    let dir = tempfile::tempdir().unwrap();
    let both = Serving::start(Config {
        storage: vec![
            Storage {
                name: "a".into(),
                path: dir.path().join("a"),
            },
            Storage {
                name: "b".into(),
                path: dir.path().join("b"),
            },
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let other = shard(dir.path(), "c", false).await;
    let client = Client::builder(&Options::default())
        .in_process("a", both.in_process(), None)
        .in_process("b", both.in_process(), None)
        .in_process("c", other.in_process(), None)
        .connect()
        .await
        .unwrap();
    Fixture::create(&dir.path().join("a/r.git"), "sha1");
    client
        .replicate_repository(&repository("b", "r.git"), &repository("a", "r.git"))
        .await
        .unwrap();
    assert_eq!(
        refs(&dir.path().join("a/r.git")),
        refs(&dir.path().join("b/r.git"))
    );
    fsck(&dir.path().join("b/r.git"));
    let e = client
        .replicate_repository(&repository("c", "r.git"), &repository("a", "r.git"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::InvalidArgument,
            "storage \"a\" is not served here and the call has no gitaly-servers metadata"
        )
    );
    assert!(!dir.path().join("c/r.git").exists());
    both.stop(Duration::from_secs(1)).await;
    other.stop(Duration::from_secs(1)).await;
}

/// A server stopping after another one took over its socket path (a restart: the new one
/// binds while the old one drains) leaves the new one's socket alone.
#[tokio::test]
async fn a_stopping_server_keeps_its_successors_socket() {
    let dir = tempfile::tempdir().unwrap();
    let old = serving(dir.path(), |_| {}).await;
    let socket = dir.path().join("s.sock");
    // The old server stopped listening (its listener is closed while it drains).
    std::fs::remove_file(&socket).unwrap();
    let new = serving(dir.path(), |c| {
        c.storage[0].path = dir.path().join("storage2");
    })
    .await;
    old.stop(Duration::from_secs(1)).await;
    assert!(socket.exists(), "the new server's socket was removed");
    let client = Client::connect(&new.addresses()[0], &Options::default())
        .await
        .unwrap();
    assert!(!client
        .repository_exists(&repository(STORAGE, "none.git"))
        .await
        .unwrap());
    new.stop(Duration::from_secs(1)).await;
    assert!(!socket.exists());
}

//! Operations on one server whose `start_repository` is on another.

use gitrpc_client::client::repository;
use gitrpc_client::{Client, CommitFiles, FileAction, Options, PickRevert};
use tonic::Code;

use super::{client_of, commit_on, git, seed, user, Daemon};

/// UserCommitFiles on s2 starting from a branch of a repository on s1: the client names s1's
/// server in `gitaly-servers`, s2 asks s1 for the start branch and fetches its commit
/// through s1's upload-pack into the operation's quarantine; the new commit's parent is the
/// start branch's tip and s2's repository is sound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_repository_on_another_server() {
    let root = tempfile::tempdir().unwrap();
    let servers = [
        Daemon::start(root.path(), "s1"),
        Daemon::start(root.path(), "s2"),
    ];
    let client = client_of(&servers).await;
    seed(&servers[0].repos().join("upstream.git"));
    let (upstream, fork) = (
        repository("s1", "upstream.git"),
        repository("s2", "fork.git"),
    );
    client.create_repository(&fork, "main").await.unwrap();
    let topic = git(
        &servers[0].repos().join("upstream.git"),
        &["rev-parse", "topic"],
    );

    let commit = CommitFiles {
        user: user(),
        branch: b"feature".to_vec(),
        message: b"from the upstream's topic".to_vec(),
        actions: vec![FileAction::Create {
            path: b"new.txt".to_vec(),
            content: b"new\n".to_vec(),
            executable: false,
        }],
        start_branch: Some(b"topic".to_vec()),
        start_repository: Some(upstream.clone()),
        ..Default::default()
    };
    let update = client.commit_files(&fork, &commit).await.unwrap();
    assert!(update.repo_created && update.branch_created, "{update:?}");
    let fork_dir = servers[1].repos().join("fork.git");
    assert_eq!(
        git(&fork_dir, &["rev-parse", "feature"]).trim(),
        update.commit_id
    );
    assert_eq!(git(&fork_dir, &["rev-parse", "feature^"]), topic);
    assert_eq!(git(&fork_dir, &["show", "feature:new.txt"]), "new\n");
    assert_eq!(git(&fork_dir, &["show", "feature:f2.txt"]), "2\n");
    git(&fork_dir, &["fsck", "--full", "--no-dangling"]);

    // s2 ran the operation; s1 answered its questions and served the fetch.
    assert_eq!(
        servers[1].count("/gitaly.OperationService/UserCommitFiles", "OK"),
        1.0
    );
    assert_eq!(
        servers[0].count("/gitaly.OperationService/UserCommitFiles", "OK"),
        0.0
    );
    assert_eq!(servers[0].count("/gitaly.RefService/FindBranch", "OK"), 1.0);
    assert_eq!(
        servers[0].count("/gitaly.SSHService/SSHUploadPack", "OK"),
        1.0
    );

    // A start branch the other server doesn't have: the operation fails, nothing is
    // written.
    let missing = CommitFiles {
        branch: b"other".to_vec(),
        start_branch: Some(b"no-such-branch".to_vec()),
        ..commit.clone()
    };
    let err = client.commit_files(&fork, &missing).await.unwrap_err();
    assert!(
        err.message().contains("no-such-branch"),
        "{:?} {}",
        err.code(),
        err.message()
    );
    assert!(!git(&fork_dir, &["branch", "--list", "other"]).contains("other"));

    // A start repository that doesn't exist on the other server: refused, naming it.
    let gone = CommitFiles {
        branch: b"other".to_vec(),
        start_repository: Some(repository("s1", "gone.git")),
        ..commit
    };
    let err = client.commit_files(&fork, &gone).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    assert!(err.message().contains("gone.git"), "{}", err.message());
}

/// UserCherryPick and UserRevert on s2 with `start_repository`/`start_branch_name` on s1: s2
/// resolves the start branch on s1 (FindCommit) and fetches its tip through s1's
/// upload-pack into the operation's quarantine, the same way as UserCommitFiles; the new
/// commit's parent is that tip and its tree the right one. An unknown storage is refused
/// by the client, and by s2 when the call names no server for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_and_revert_start_repository_on_another_server() {
    let root = tempfile::tempdir().unwrap();
    let servers = [
        Daemon::start(root.path(), "s1"),
        Daemon::start(root.path(), "s2"),
    ];
    let client = client_of(&servers).await;
    let upstream_dir = servers[0].repos().join("upstream.git");
    let fork_dir = servers[1].repos().join("fork.git");
    seed(&upstream_dir);
    git(
        &servers[1].dir,
        &[
            "clone",
            "--quiet",
            "--bare",
            upstream_dir.to_str().unwrap(),
            fork_dir.to_str().unwrap(),
        ],
    );
    let (upstream, fork) = (
        repository("s1", "upstream.git"),
        repository("s2", "fork.git"),
    );
    let ls = |rev: &str| git(&fork_dir, &["ls-tree", "--name-only", rev]);

    // Cherry-pick main's last commit (adds f4.txt; the fork has it) onto the upstream's
    // topic, which has moved on since the fork was made.
    let tip = commit_on(&upstream_dir, "topic", "t1.txt");
    let pick = PickRevert {
        user: user(),
        commit_id: git(&fork_dir, &["rev-parse", "main"]).trim().to_string(),
        branch: b"picked".to_vec(),
        message: b"picked onto the upstream's topic".to_vec(),
        start_branch: Some(b"topic".to_vec()),
        start_repository: Some(upstream.clone()),
        ..Default::default()
    };
    let update = client.cherry_pick(&fork, &pick).await.unwrap();
    assert!(update.branch_created && !update.repo_created, "{update:?}");
    assert_eq!(
        git(&fork_dir, &["rev-parse", "picked"]).trim(),
        update.commit_id
    );
    assert_eq!(git(&fork_dir, &["rev-parse", "picked^"]).trim(), tip);
    assert_eq!(ls("picked"), "f0.txt\nf1.txt\nf2.txt\nf4.txt\nt1.txt\n");
    assert_eq!(git(&fork_dir, &["show", "picked:f4.txt"]), "4\n");
    git(&fork_dir, &["fsck", "--full", "--no-dangling"]);

    // Revert commit 1 (adds f1.txt) onto the topic, moved on again.
    let tip = commit_on(&upstream_dir, "topic", "t2.txt");
    let revert = PickRevert {
        commit_id: git(&fork_dir, &["rev-parse", "main~3"]).trim().to_string(),
        branch: b"reverted".to_vec(),
        message: b"reverted on the upstream's topic".to_vec(),
        ..pick.clone()
    };
    let update = client.revert(&fork, &revert).await.unwrap();
    assert!(update.branch_created && !update.repo_created, "{update:?}");
    assert_eq!(
        git(&fork_dir, &["rev-parse", "reverted"]).trim(),
        update.commit_id
    );
    assert_eq!(git(&fork_dir, &["rev-parse", "reverted^"]).trim(), tip);
    assert_eq!(ls("reverted"), "f0.txt\nf2.txt\nt1.txt\nt2.txt\n");
    git(&fork_dir, &["fsck", "--full", "--no-dangling"]);

    // s2 ran the operations; s1 resolved the start branch and served each fetch.
    for (method, s1, s2) in [
        ("/gitaly.OperationService/UserCherryPick", 0.0, 1.0),
        ("/gitaly.OperationService/UserRevert", 0.0, 1.0),
        ("/gitaly.CommitService/FindCommit", 2.0, 0.0),
        ("/gitaly.SSHService/SSHUploadPack", 2.0, 0.0),
    ] {
        assert_eq!(servers[0].count(method, "OK"), s1, "s1 {method}");
        assert_eq!(servers[1].count(method, "OK"), s2, "s2 {method}");
    }

    // A start branch the other server doesn't have, and a start repository it doesn't
    // have: refused, nothing written.
    let branches = || git(&fork_dir, &["for-each-ref", "refs/heads/"]);
    let before = branches();
    let missing = PickRevert {
        branch: b"other".to_vec(),
        start_branch: Some(b"no-such-branch".to_vec()),
        ..pick.clone()
    };
    let err = client.cherry_pick(&fork, &missing).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::InvalidArgument,
            "resolve start ref: reference not found"
        )
    );
    let gone = PickRevert {
        branch: b"other".to_vec(),
        start_repository: Some(repository("s1", "gone.git")),
        ..revert.clone()
    };
    let err = client.revert(&fork, &gone).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    assert!(err.message().contains("gone.git"), "{}", err.message());

    // An unknown storage: the client refuses it before any call; a call straight to s2
    // without `gitaly-servers` is refused by s2, naming the storage.
    let unknown = PickRevert {
        branch: b"other".to_vec(),
        start_repository: Some(repository("s9", "upstream.git")),
        ..pick.clone()
    };
    let err = client.cherry_pick(&fork, &unknown).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "storage not found: \"s9\"")
    );
    let plain = Client::connect(
        &servers[1].remote().address,
        &Options {
            token: servers[1].remote().token,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let no_servers = PickRevert {
        branch: b"other".to_vec(),
        ..pick.clone()
    };
    for err in [
        plain.cherry_pick(&fork, &no_servers).await.unwrap_err(),
        plain.revert(&fork, &no_servers).await.unwrap_err(),
    ] {
        assert_eq!(
            (err.code(), err.message()),
            (
                Code::InvalidArgument,
                "storage \"s1\" is not served here and the call has no gitaly-servers metadata"
            )
        );
    }
    assert_eq!(branches(), before);
    let refused = |m: &str| servers[1].count(m, "INVALID_ARGUMENT");
    assert_eq!(refused("/gitaly.OperationService/UserCherryPick"), 2.0);
    assert_eq!(refused("/gitaly.OperationService/UserRevert"), 1.0);
    assert_eq!(
        servers[0].count("/gitaly.SSHService/SSHUploadPack", "OK"),
        2.0
    );
}

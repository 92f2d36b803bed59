//! UserCommitFiles: every action against git's view of the new tree, signatures, where the
//! commit starts, the expected old value, and the index errors.

use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType as A;
use gitrpc_proto::gitaly::*;
use gitrpc_server::config::Storage;
use tonic::Code;

use super::{
    action, blob, branch_update, commit_files, detail, g, header, ls_tree, show, snapshot, user,
    Ops,
};

#[tokio::test]
async fn every_action_on_a_new_repository() {
    let s = Ops::start().await;
    let repo = s.empty("r.git", "sha1");
    let ops = s.ops();
    let run = |h: UserCommitFilesRequestHeader, acts| {
        let mut ops = ops.clone();
        async move { commit_files(&mut ops, h, acts).await }
    };
    let mut exec = action(A::Create, "bin/run.sh", b"#!/bin/sh\n");
    exec.0.execute_filemode = true;
    let r = run(
        header(s.repo("r.git"), "main", "first\n\nbody"),
        vec![
            action(A::Create, "README.md", b"hello\r\nworld\r\n"),
            exec,
            action(A::CreateDir, "docs", b""),
            action(A::Create, "/a/b/c.txt", b"c"),
            action(A::Create, "empty.txt", b""),
        ],
    )
    .await
    .unwrap();
    let u = branch_update(&r);
    assert!(u.repo_created && u.branch_created, "{u:?}");
    assert_eq!(g(&repo, &["rev-parse", "main"]), u.commit_id);
    let empty = g(&repo, &["hash-object", "-t", "blob", "/dev/null"]);
    let id = |p: &str| g(&repo, &["rev-parse", &format!("main:{p}")]);
    assert_eq!(
        ls_tree(&repo, "main"),
        format!(
            "100644 blob {}\tREADME.md\n100644 blob {}\ta/b/c.txt\n100755 blob {}\tbin/run.sh\n100644 blob {empty}\tdocs/.gitkeep\n100644 blob {empty}\tempty.txt",
            id("README.md"),
            id("a/b/c.txt"),
            id("bin/run.sh")
        )
    );
    assert_eq!(blob(&repo, "main", "README.md"), b"hello\r\nworld\r\n");
    assert_eq!(
        show(&repo, "main"),
        "|Jane Doe|janedoe@gitlab.com|1700000000 +0000|Jane Doe|janedoe@gitlab.com|1700000000 +0000|first\n\nbody"
    );
    let first = u.commit_id.clone();

    let mut b64 = action(A::Create, "b64.txt", b"aGVsbG8g\nd29ybGQ=");
    b64.0.base64_content = true;
    let mut infer = action(A::Move, "x/c.txt", b"ignored");
    infer.0.previous_path = b"a/b/c.txt".to_vec();
    infer.0.infer_content = true;
    let mut moved = action(A::Move, "run2.sh", b"#!/bin/sh\necho 2\n");
    moved.0.previous_path = b"bin/run.sh".to_vec();
    let mut chmod = action(A::Chmod, "README.md", b"");
    chmod.0.execute_filemode = true;
    let r = run(
        header(s.repo("r.git"), "main", "second"),
        vec![
            action(A::Update, "README.md", b"updated\n"),
            infer,
            moved,
            chmod,
            b64,
            action(A::Create, "new/file.txt", b"1"),
            action(A::Update, "new/file.txt", b"2"),
        ],
    )
    .await
    .unwrap();
    let u = branch_update(&r);
    assert!(!u.repo_created && !u.branch_created);
    assert_eq!(g(&repo, &["rev-parse", "main^"]), first);
    let tree = ls_tree(&repo, "main");
    let modes: Vec<(&str, &str)> = tree
        .lines()
        .map(|l| (&l[..6], l.rsplit('\t').next().unwrap()))
        .collect();
    assert_eq!(
        modes,
        [
            ("100755", "README.md"),
            ("100644", "b64.txt"),
            ("100644", "docs/.gitkeep"),
            ("100644", "empty.txt"),
            ("100644", "new/file.txt"),
            ("100755", "run2.sh"),
            ("100644", "x/c.txt"),
        ]
    );
    assert_eq!(blob(&repo, "main", "b64.txt"), b"hello world");
    assert_eq!(blob(&repo, "main", "x/c.txt"), b"c");
    assert_eq!(blob(&repo, "main", "run2.sh"), b"#!/bin/sh\necho 2\n");
    assert_eq!(blob(&repo, "main", "new/file.txt"), b"2");
    assert_eq!(blob(&repo, "main", "README.md"), b"updated\n");

    let mut chmod = action(A::Chmod, "README.md", b"");
    chmod.0.execute_filemode = false;
    run(
        header(s.repo("r.git"), "main", "third"),
        vec![
            action(A::Delete, "docs", b""),
            action(A::Delete, "x/c.txt", b""),
            action(A::Create, "new", b"a file where a directory was"),
            chmod,
        ],
    )
    .await
    .unwrap();
    let paths: Vec<String> = ls_tree(&repo, "main")
        .lines()
        .map(|l| format!("{} {}", &l[..6], l.rsplit('\t').next().unwrap()))
        .collect();
    assert_eq!(
        paths,
        [
            "100644 README.md",
            "100644 b64.txt",
            "100644 empty.txt",
            "100644 new",
            "100755 run2.sh"
        ]
    );
    g(&repo, &["fsck", "--no-dangling"]);
    assert!(super::quarantines(&repo).is_empty());
}

#[tokio::test]
async fn author_committer_and_timezone() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let mut h = header(s.repo("r.git"), "main", "zoned");
    h.user = Some(User {
        timezone: "Asia/Shanghai".into(),
        name: b"Jane <Doe>".to_vec(),
        ..user()
    });
    h.commit_author_name = b"  Ada Lovelace ".to_vec();
    h.commit_author_email = b"ada@example.com".to_vec();
    let c4 = f.rev_parse("main");
    commit_files(&mut ops, h, vec![action(A::Create, "z.txt", b"z")])
        .await
        .unwrap();
    assert_eq!(
        show(&f.path, "main"),
        format!("{c4}|Ada Lovelace|ada@example.com|1700000000 +0800|Jane Doe|janedoe@gitlab.com|1700000000 +0800|zoned")
    );
    // No actions: a commit with the parent's tree.
    commit_files(&mut ops, header(s.repo("r.git"), "main", "empty"), vec![])
        .await
        .unwrap();
    assert_eq!(
        g(&f.path, &["rev-parse", "main^{tree}"]),
        g(&f.path, &["rev-parse", "main~1^{tree}"])
    );
}

#[tokio::test]
async fn start_points_and_expected_old_values() {
    let s = Ops::with(
        |c| {
            let p = c.storage[0].path.parent().unwrap().join("other");
            c.storage.push(Storage {
                name: "other".into(),
                path: p,
            });
        },
        Default::default(),
    )
    .await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let (c4, c3, f1) = (
        f.rev_parse("main"),
        f.rev_parse("main~1"),
        f.rev_parse("feature"),
    );
    let file = || vec![action(A::Create, "n.txt", b"n")];

    // start_branch_name: a new branch from feature.
    let mut h = header(s.repo("r.git"), "topic", "from feature");
    h.start_branch_name = b"feature".to_vec();
    let r = commit_files(&mut ops, h, file()).await.unwrap();
    assert!(branch_update(&r).branch_created && !branch_update(&r).repo_created);
    assert_eq!(g(&f.path, &["rev-parse", "topic^"]), f1);

    // start_sha: a new branch from c3.
    let mut h = header(s.repo("r.git"), "from-sha", "from c3");
    h.start_sha = c3.clone();
    commit_files(&mut ops, h, file()).await.unwrap();
    assert_eq!(g(&f.path, &["rev-parse", "from-sha^"]), c3);

    // expected_old_oid: the zero id creates, a stale value loses, a matching one wins.
    let mut h = header(s.repo("r.git"), "zero", "zero");
    h.expected_old_oid = "0".repeat(40);
    commit_files(&mut ops, h.clone(), file()).await.unwrap();
    let before = snapshot(&f.path);
    let other_file = vec![action(A::Create, "n2.txt", b"n")];
    let e = commit_files(&mut ops, h, other_file).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "reference update: reference already exists"
        )
    );
    let mut h = header(s.repo("r.git"), "main", "stale");
    h.expected_old_oid = c3.clone();
    let e = commit_files(&mut ops, h, file()).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "reference update: reference does not point to expected object"
        )
    );
    assert_eq!(snapshot(&f.path), before, "losers write nothing");
    let mut h = header(s.repo("r.git"), "main", "fresh");
    h.expected_old_oid = c4.clone();
    commit_files(&mut ops, h, file()).await.unwrap();
    assert_eq!(g(&f.path, &["rev-parse", "main^"]), c4);

    // start_branch_name on an existing branch that has moved elsewhere: a mismatch unless
    // forced.
    let mut h = header(s.repo("r.git"), "main", "diverged");
    h.start_branch_name = b"feature".to_vec();
    let e = commit_files(&mut ops, h.clone(), vec![action(A::Create, "d.txt", b"d")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    h.force = true;
    commit_files(&mut ops, h, vec![action(A::Create, "d.txt", b"d")])
        .await
        .unwrap();
    assert_eq!(g(&f.path, &["rev-parse", "main^"]), f1);

    // start_repository: another repository of the same storage, and of another storage; the
    // parent's objects are fetched.
    for (storage, rel) in [("default", "empty1.git"), ("other", "empty2.git")] {
        let root = match storage {
            "default" => s.storage.clone(),
            _ => s.storage.parent().unwrap().join(storage),
        };
        let p = root.join(rel);
        std::fs::create_dir_all(&p).unwrap();
        g(&p, &["init", "--bare", "-q", "-b", "main"]);
        let target = gitrpc_proto::gitaly::Repository {
            storage_name: storage.into(),
            relative_path: rel.into(),
            ..Default::default()
        };
        let mut h = header(target, "main", "from the other repository");
        h.start_repository = Some(s.repo("r.git"));
        h.start_branch_name = b"feature".to_vec();
        let r = commit_files(&mut ops, h, file()).await.unwrap();
        assert!(branch_update(&r).repo_created && branch_update(&r).branch_created);
        assert_eq!(g(&p, &["rev-parse", "main^"]), f1);
        g(&p, &["fsck", "--no-dangling"]);
        assert!(super::quarantines(&p).is_empty());
    }
}

#[tokio::test]
async fn index_errors_write_nothing() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let before = snapshot(&f.path);
    let mut not_found_move = action(A::Move, "to.txt", b"");
    not_found_move.0.previous_path = b"nope.txt".to_vec();
    let mut dir_move = action(A::Move, "to.txt", b"");
    dir_move.0.previous_path = b"src".to_vec();
    use index_error::ErrorType as T;
    for (acts, code, msg, path, kind) in [
        (
            vec![action(A::Create, "README.md", b"x")],
            Code::AlreadyExists,
            "A file with this name already exists",
            "README.md",
            T::FileExists,
        ),
        (
            vec![
                action(A::Create, "dup.txt", b"1"),
                action(A::Create, "dup.txt", b"2"),
            ],
            Code::AlreadyExists,
            "A file with this name already exists",
            "dup.txt",
            T::FileExists,
        ),
        (
            vec![action(A::Create, "README.md/x", b"x")],
            Code::AlreadyExists,
            "A file with this name already exists",
            "README.md/x",
            T::FileExists,
        ),
        (
            vec![action(A::CreateDir, "src", b"")],
            Code::AlreadyExists,
            "A directory with this name already exists",
            "src",
            T::DirectoryExists,
        ),
        (
            vec![action(A::CreateDir, "README.md", b"")],
            Code::AlreadyExists,
            "A file with this name already exists",
            "README.md",
            T::FileExists,
        ),
        (
            vec![action(A::Update, "nope.txt", b"x")],
            Code::NotFound,
            "A file with this name doesn't exist",
            "nope.txt",
            T::FileNotFound,
        ),
        (
            vec![action(A::Delete, "nope", b"")],
            Code::NotFound,
            "A file with this name doesn't exist",
            "nope",
            T::FileNotFound,
        ),
        (
            vec![action(A::Chmod, "src", b"")],
            Code::NotFound,
            "A file with this name doesn't exist",
            "src",
            T::FileNotFound,
        ),
        (
            vec![not_found_move],
            Code::NotFound,
            "A file with this name doesn't exist",
            "nope.txt",
            T::FileNotFound,
        ),
        (
            vec![dir_move],
            Code::NotFound,
            "A file with this name doesn't exist",
            "src",
            T::FileNotFound,
        ),
    ] {
        let e = commit_files(&mut ops, header(s.repo("r.git"), "main", "m"), acts)
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.message()), (code, msg), "{path}");
        let d: UserCommitFilesError = detail(&e, "UserCommitFilesError").unwrap();
        match d.error.unwrap() {
            user_commit_files_error::Error::IndexUpdate(i) => {
                assert_eq!(
                    (i.path.as_slice(), i.error_type),
                    (path.as_bytes(), kind as i32)
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(snapshot(&f.path), before, "{path}: nothing written");
    }
}

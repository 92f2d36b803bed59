//! FindChangedPaths against `git diff-tree --name-status`: commit and tree requests, merges,
//! renames, filters, and Gitaly's error messages.

use gitrpc_proto::gitaly::changed_paths::Status;
use gitrpc_proto::gitaly::find_changed_paths_request::request::{CommitRequest, TreeRequest, Type};
use gitrpc_proto::gitaly::find_changed_paths_request::{DiffStatus, MergeCommitDiffMode, Request};
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{client, rich, Client};
use crate::commit_history::{failure, run, stream, Work};
use crate::common::TestServer;

fn commit(rev: &str, parents: &[&str]) -> Request {
    Request {
        r#type: Some(Type::CommitRequest(CommitRequest {
            commit_revision: rev.into(),
            parent_commit_revisions: parents.iter().map(|p| p.to_string()).collect(),
        })),
    }
}

fn tree(l: &str, r: &str) -> Request {
    Request {
        r#type: Some(Type::TreeRequest(TreeRequest {
            left_tree_revision: l.into(),
            right_tree_revision: r.into(),
        })),
    }
}

async fn changed(
    c: &mut Client,
    w: &Work,
    f: impl FnOnce(&mut FindChangedPathsRequest),
) -> Result<Vec<ChangedPaths>, tonic::Status> {
    let mut req = FindChangedPathsRequest {
        repository: Some(w.repo()),
        ..Default::default()
    };
    f(&mut req);
    let msgs = stream(c.find_changed_paths(req).await).await?;
    Ok(msgs.into_iter().flat_map(|m| m.paths).collect())
}

fn letter(s: i32) -> char {
    match Status::try_from(s).unwrap() {
        Status::Added => 'A',
        Status::Modified => 'M',
        Status::Deleted => 'D',
        Status::TypeChange => 'T',
        Status::Copied => 'C',
        Status::Renamed => 'R',
    }
}

/// (status letter, path) of `git diff-tree -z -r --root --name-status <args>`.
fn git_names(w: &Work, args: &[&str]) -> Vec<(char, Vec<u8>)> {
    let mut all = vec![
        "diff-tree",
        "-z",
        "-r",
        "--root",
        "--name-status",
        "--no-commit-id",
    ];
    all.extend_from_slice(args);
    let out = run(&mut w.cmd(all));
    let mut f = out.split(|&b| b == 0).filter(|x| !x.is_empty());
    let mut v = Vec::new();
    while let Some(st) = f.next() {
        let l = st[0] as char;
        if l == 'R' || l == 'C' {
            f.next();
        }
        v.push((l, f.next().unwrap().to_vec()));
    }
    v
}

fn names(got: &[ChangedPaths]) -> Vec<(char, Vec<u8>)> {
    got.iter()
        .map(|p| (letter(p.status), p.path.clone()))
        .collect()
}

#[allow(deprecated)] // the `commits` field is still honoured
#[tokio::test]
async fn find_changed_paths_equals_git() {
    let s = TestServer::start().await;
    let r = rich(&s, "r.git", "sha1");
    let mut c = client(&s);
    for (i, rev) in r.commits.iter().enumerate() {
        let got = changed(&mut c, &r.w, |q| q.requests = vec![commit(rev, &[])])
            .await
            .unwrap();
        assert_eq!(
            names(&got),
            git_names(&r.w, &["-m", "--no-renames", rev]),
            "commit {i}"
        );
        assert!(got.iter().all(|p| &p.commit_id == rev));
        let got = changed(&mut c, &r.w, |q| {
            q.requests = vec![commit(rev, &[])];
            q.find_renames = true
        })
        .await
        .unwrap();
        assert_eq!(
            names(&got),
            git_names(&r.w, &["-m", "--find-renames=30%", rev]),
            "commit {i}"
        );
    }
    // renames carry the old path; ids and modes as git prints them
    let got = changed(&mut c, &r.w, |q| {
        q.requests = vec![commit(&r.commits[1], &[])];
        q.find_renames = true
    })
    .await
    .unwrap();
    let tale = got.iter().find(|p| p.path == b"tale.txt").unwrap();
    assert_eq!(
        (letter(tale.status), tale.old_path.as_slice()),
        ('R', &b"story.txt"[..])
    );
    assert_eq!(
        tale.old_blob_id,
        r.w.rev(&format!("{}:story.txt", r.commits[0]))
    );
    assert_eq!(
        tale.new_blob_id,
        r.w.rev(&format!("{}:tale.txt", r.commits[1]))
    );
    assert_eq!((tale.old_mode, tale.new_mode), (0o100644, 0o100644));
    // a merge: one block per parent with -m, only what differs from both with -c
    let merge = r.commits.last().unwrap();
    let got = changed(&mut c, &r.w, |q| q.requests = vec![commit(merge, &[])])
        .await
        .unwrap();
    assert_eq!(names(&got), git_names(&r.w, &["-m", "--no-renames", merge]));
    assert!(!got.is_empty());
    let got = changed(&mut c, &r.w, |q| {
        q.requests = vec![commit(merge, &[])];
        q.merge_commit_diff_mode = MergeCommitDiffMode::AllParents as i32
    })
    .await
    .unwrap();
    assert!(
        got.is_empty(),
        "a clean merge has no combined changes: {got:?}"
    );
    // explicit parents, the deprecated field, tree requests (no commit id)
    let got = changed(&mut c, &r.w, |q| {
        q.requests = vec![commit(merge, &[&r.commits[0]])]
    })
    .await
    .unwrap();
    assert_eq!(
        names(&got),
        git_names(&r.w, &["--no-renames", &r.commits[0], merge])
    );
    let got = changed(&mut c, &r.w, |q| q.commits = vec![r.commits[2].clone()])
        .await
        .unwrap();
    assert_eq!(
        names(&got),
        git_names(&r.w, &["-m", "--no-renames", &r.commits[2]])
    );
    let got = changed(&mut c, &r.w, |q| {
        q.requests = vec![tree(&r.commits[0], merge), commit(&r.commits[2], &[])]
    })
    .await
    .unwrap();
    let mut want = git_names(&r.w, &["--no-renames", &r.commits[0], merge]);
    want.extend(git_names(&r.w, &["-m", "--no-renames", &r.commits[2]]));
    assert_eq!(names(&got), want);
    assert!(got.iter().all(|p| p.commit_id.is_empty()));
    // filters: in request order, duplicates dropped
    let got = changed(&mut c, &r.w, |q| {
        q.requests = vec![tree(&r.commits[0], merge)];
        q.diff_filters = vec![
            DiffStatus::Deleted as i32,
            DiffStatus::Added as i32,
            DiffStatus::Added as i32,
        ]
    })
    .await
    .unwrap();
    assert_eq!(
        names(&got),
        git_names(
            &r.w,
            &["--no-renames", "--diff-filter=DA", &r.commits[0], merge]
        )
    );
    assert!(!got.is_empty());
    s.stop().await;
}

#[allow(deprecated)]
#[tokio::test]
async fn find_changed_paths_bad_input() {
    let s = TestServer::start().await;
    let r = rich(&s, "r.git", "sha1");
    let head = r.commits.last().unwrap().clone();
    let mut c = client(&s);
    type Case = (Box<dyn Fn(&mut FindChangedPathsRequest)>, Code, String);
    let cases: Vec<Case> = vec![
        (
            Box::new(|q| {
                q.commits = vec!["HEAD".into()];
                q.requests = vec![commit("HEAD", &[])]
            }),
            Code::InvalidArgument,
            "cannot specify both commits and requests".into(),
        ),
        (
            Box::new(|q| q.requests = vec![commit("", &[])]),
            Code::InvalidArgument,
            "resolving commit: revision cannot be empty".into(),
        ),
        (
            Box::new(|q| q.requests = vec![commit("nope", &[])]),
            Code::NotFound,
            "resolving commit: revision can not be found: \"nope\"".into(),
        ),
        (
            Box::new(|q| q.requests = vec![commit("HEAD", &["nope"])]),
            Code::NotFound,
            "resolving commit parent: revision can not be found: \"nope\"".into(),
        ),
        (
            Box::new(|q| q.requests = vec![tree("", "HEAD")]),
            Code::InvalidArgument,
            "resolving left tree: revision cannot be empty".into(),
        ),
        (
            Box::new(|q| q.requests = vec![tree("HEAD", "nope")]),
            Code::NotFound,
            "resolving right tree: revision can not be found: \"nope\"".into(),
        ),
        (
            Box::new(|q| {
                q.requests = vec![commit("HEAD", &[])];
                q.diff_filters = vec![42]
            }),
            Code::InvalidArgument,
            "invalid diff filter requested".into(),
        ),
    ];
    for (f, code, msg) in cases {
        assert_eq!(failure(changed(&mut c, &r.w, f).await), (code, msg));
    }
    let (code, _) = failure(changed(&mut c, &r.w, |q| q.requests = vec![commit("-x", &[])]).await);
    assert_eq!(code, Code::InvalidArgument);
    let _ = head;
    assert!(crate::common::git_processes(&s.storage, "diff-tree").is_empty());
    s.stop().await;
}

//! SHA-256 repositories: every RPC's happy path with 64-hex ids, a conflict, a race round,
//! and object ids of the wrong length.

use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType as A;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::merge::{conflicts_in, first, propose};
use super::pick::{pick, revert};
use super::{action, commit_files, g, header, ok, ts, user, Ops};

#[tokio::test]
async fn every_rpc_on_sha256() {
    let s = Ops::start().await;
    let (f, ours, theirs, clean) = conflicts_in(&s, "r.git", "sha256");
    assert_eq!(ours.len(), 64);
    let mut ops = s.ops();
    let repo = || Some(s.repo("r.git"));
    let is64 = |id: &str| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());

    let r = commit_files(
        &mut ops,
        header(s.repo("r.git"), "main", "files"),
        vec![action(A::Create, "n.txt", b"n")],
    )
    .await
    .unwrap();
    let committed = r.branch_update.unwrap().commit_id;
    assert_eq!(g(&f.path, &["rev-parse", "main^"]), ours);
    let mut h = header(s.repo("r.git"), "main", "stale");
    h.expected_old_oid = ours[..40].to_string();
    let e = commit_files(&mut ops, h, vec![]).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message().to_string()),
        (Code::InvalidArgument, format!("invalid expected old object ID: invalid object ID: {:?}, expected length 64, got 40", &ours[..40]))
    );
    // A new repository's first commit: the empty tree of SHA-256.
    let empty = s.empty("e.git", "sha256");
    commit_files(&mut ops, header(s.repo("e.git"), "main", "nothing"), vec![])
        .await
        .unwrap();
    assert_eq!(
        g(&empty, &["rev-parse", "main^{tree}"]),
        "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
    );

    ops.user_create_branch(UserCreateBranchRequest {
        repository: repo(),
        branch_name: b"b".to_vec(),
        user: Some(user()),
        start_point: b"clean".to_vec(),
    })
    .await
    .unwrap();
    assert_eq!(g(&f.path, &["rev-parse", "b"]), clean);
    let t = ok(ops
        .user_create_tag(UserCreateTagRequest {
            repository: repo(),
            tag_name: b"v1".to_vec(),
            user: Some(user()),
            target_revision: b"main".to_vec(),
            message: b"t".to_vec(),
            timestamp: ts(1),
        })
        .await)
    .tag
    .unwrap();
    assert_eq!(g(&f.path, &["cat-file", "-t", &t.id]), "tag");
    ops.user_delete_branch(UserDeleteBranchRequest {
        repository: repo(),
        branch_name: b"b".to_vec(),
        user: Some(user()),
        expected_old_oid: clean.clone(),
    })
    .await
    .unwrap();

    // Merge in two phases, and a conflict.
    let (merge, tx, mut resp) = propose(&s, first(&s, "main", &clean)).await.unwrap();
    tx.send(UserMergeBranchRequest {
        apply: true,
        ..Default::default()
    })
    .await
    .unwrap();
    resp.message().await.unwrap().unwrap();
    assert_eq!(
        g(&f.path, &["log", "-1", "--format=%P", "main"]),
        format!("{committed} {clean}")
    );
    let Err(e) = propose(&s, first(&s, "main", &theirs)).await else {
        panic!("a conflict merged")
    };
    assert_eq!(
        e.message(),
        "merging commits: merge: there are conflicting files"
    );

    let mut r = pick(&s, &theirs, "picked");
    r.start_branch_name = b"base-branch".to_vec();
    let picked = ok(ops.user_cherry_pick(r).await).branch_update.unwrap();
    assert!(picked.branch_created);
    let rev = revert(&s, &picked.commit_id, "picked");
    let reverted = ok(ops.user_revert(rev).await).branch_update.unwrap();
    assert_eq!(
        g(&f.path, &["rev-parse", "picked^{tree}"]),
        g(&f.path, &["rev-parse", "base-branch^{tree}"])
    );
    let squashed = ok(ops
        .user_squash(UserSquashRequest {
            repository: repo(),
            user: Some(user()),
            author: Some(user()),
            start_sha: g(&f.path, &["rev-parse", "base-branch"]),
            end_sha: theirs.clone(),
            commit_message: b"sq".to_vec(),
            ..Default::default()
        })
        .await)
    .squash_sha;
    // Merged and rebased onto `theirs` into refs of their own.
    let merged = ok(ops
        .user_merge_to_ref(UserMergeToRefRequest {
            repository: repo(),
            user: Some(user()),
            source_sha: clean.clone(),
            target_ref: b"refs/merge-requests/1/merge".to_vec(),
            first_parent_ref: b"refs/heads/theirs".to_vec(),
            message: b"mr".to_vec(),
            ..Default::default()
        })
        .await)
    .commit_id;
    assert_eq!(
        g(&f.path, &["rev-parse", "refs/merge-requests/1/merge"]),
        merged
    );
    let rebased = ok(ops
        .user_rebase_to_ref(UserRebaseToRefRequest {
            repository: repo(),
            user: Some(user()),
            source_sha: clean.clone(),
            target_ref: b"refs/merge-requests/1/train".to_vec(),
            first_parent_ref: b"refs/heads/theirs".to_vec(),
            ..Default::default()
        })
        .await)
    .commit_id;
    assert_eq!(
        g(&f.path, &["rev-parse", "refs/merge-requests/1/train^"]),
        theirs
    );
    // Every new object's id is a SHA-256 one.
    for (what, id) in [
        ("commit files", &committed),
        ("tag", &t.id),
        ("merge", &merge),
        ("cherry-pick", &picked.commit_id),
        ("revert", &reverted.commit_id),
        ("squash", &squashed),
        ("merge to ref", &merged),
        ("rebase to ref", &rebased),
    ] {
        assert!(is64(id), "{what}: {id}");
    }
    g(&f.path, &["update-ref", "refs/heads/behind", &ours]);
    ops.user_ff_branch(UserFfBranchRequest {
        repository: repo(),
        user: Some(user()),
        commit_id: committed.clone(),
        branch: b"behind".to_vec(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(g(&f.path, &["rev-parse", "behind"]), committed);
    g(&f.path, &["fsck", "--no-dangling"]);
    assert!(super::quarantines(&f.path).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_race_round_on_sha256() {
    let s = Ops::start().await;
    let (f, ours, _, _) = conflicts_in(&s, "r.git", "sha256");
    let mut calls = Vec::new();
    for i in 0..10 {
        let mut ops = s.ops();
        let mut h = header(s.repo("r.git"), "main", &format!("w{i}"));
        h.expected_old_oid = ours.clone();
        calls.push(tokio::spawn(async move {
            commit_files(&mut ops, h, vec![action(A::Create, &format!("w{i}"), b"w")]).await
        }));
    }
    let mut ok = 0;
    for c in calls {
        if c.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(g(&f.path, &["rev-parse", "main^"]), ours);
    assert_eq!(g(&f.path, &["fsck", "--unreachable", "--no-progress"]), "");
}

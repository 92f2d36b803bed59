//! UserCherryPick and UserRevert.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::merge::conflicts;
use super::{detail, g, show, snapshot, ts, user, Ops};

fn commit(id: &str) -> Option<GitCommit> {
    Some(GitCommit {
        id: id.into(),
        ..Default::default()
    })
}

fn pick(s: &Ops, id: &str, branch: &str) -> UserCherryPickRequest {
    UserCherryPickRequest {
        repository: Some(s.repo("r.git")),
        user: Some(User {
            timezone: "America/New_York".into(),
            ..user()
        }),
        commit: commit(id),
        branch_name: branch.as_bytes().to_vec(),
        message: b"picked".to_vec(),
        timestamp: ts(1_700_000_000),
        ..Default::default()
    }
}

fn revert(s: &Ops, id: &str, branch: &str) -> UserRevertRequest {
    UserRevertRequest {
        repository: Some(s.repo("r.git")),
        user: Some(user()),
        commit: commit(id),
        branch_name: branch.as_bytes().to_vec(),
        message: b"reverted".to_vec(),
        timestamp: ts(1_700_000_000),
        ..Default::default()
    }
}

#[tokio::test]
async fn cherry_pick_commits() {
    let s = Ops::start().await;
    let (f, ours, theirs, clean) = conflicts(&s, "r.git");
    let mut ops = s.ops();
    let u = ops
        .user_cherry_pick(pick(&s, &clean, "main"))
        .await
        .unwrap()
        .into_inner()
        .branch_update
        .unwrap();
    assert!(!u.branch_created && !u.repo_created);
    assert_eq!(g(&f.path, &["rev-parse", "main"]), u.commit_id);
    // The picked commit's author (with its own date and zone), the user as committer.
    assert_eq!(
        show(&f.path, "main"),
        format!("{ours}|Ada Lovelace|ada@example.com|1700000000 +0130|Jane Doe|janedoe@gitlab.com|1700000000 -0500|picked")
    );
    assert_eq!(super::blob(&f.path, "main", "c.txt"), b"c\n");
    assert_eq!(super::blob(&f.path, "main", "f"), b"our f\n");

    let before = snapshot(&f.path);
    let e = ops
        .user_cherry_pick(pick(&s, &clean, "main"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "cherry-pick: could not apply because the result was empty"
        )
    );
    let d: UserCherryPickError = detail(&e, "UserCherryPickError").unwrap();
    assert!(matches!(
        d.error,
        Some(user_cherry_pick_error::Error::ChangesAlreadyApplied(_))
    ));
    let e = ops
        .user_cherry_pick(pick(&s, &theirs, "main"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "cherry pick: merge: there are conflicting files"
        )
    );
    let d: UserCherryPickError = detail(&e, "UserCherryPickError").unwrap();
    let Some(user_cherry_pick_error::Error::CherryPickConflict(c)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(c.conflicting_files, [b"f".to_vec(), b"g".to_vec()]);
    assert_eq!(snapshot(&f.path), before);

    // A new branch from a start branch, with an explicit author; a dry run writes nothing.
    let mut r = pick(&s, &clean, "picked");
    r.start_branch_name = b"theirs".to_vec();
    r.commit_author_name = b"Grace".to_vec();
    r.commit_author_email = b"grace@example.com".to_vec();
    let u = ops
        .user_cherry_pick(r)
        .await
        .unwrap()
        .into_inner()
        .branch_update
        .unwrap();
    assert!(u.branch_created);
    assert_eq!(
        g(&f.path, &["log", "-1", "--format=%P %an %ae", "picked"]),
        format!("{theirs} Grace grace@example.com")
    );
    let before = snapshot(&f.path);
    let mut r = pick(&s, &clean, "dry");
    r.start_branch_name = b"theirs".to_vec();
    r.dry_run = true;
    let u = ops
        .user_cherry_pick(r)
        .await
        .unwrap()
        .into_inner()
        .branch_update
        .unwrap();
    assert_eq!(u.commit_id, theirs, "a dry run answers the start");
    let after = snapshot(&f.path);
    assert_eq!(after.objects, before.objects, "a dry run writes no object");
    assert_eq!(g(&f.path, &["rev-parse", "dry"]), theirs);

    // Based on another branch than the one it goes on: the branch would lose commits.
    f.git(&["checkout", "-q", "-b", "extra", "base-branch"]);
    f.write("e.txt", "e\n");
    let extra = f.commit("extra");
    let main = g(&f.path, &["rev-parse", "main"]);
    let mut r = pick(&s, &extra, "main");
    r.start_branch_name = b"theirs".to_vec();
    let e = ops.user_cherry_pick(r).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "cherry-pick: branch diverged")
    );
    let d: UserCherryPickError = detail(&e, "UserCherryPickError").unwrap();
    let Some(user_cherry_pick_error::Error::TargetBranchDiverged(n)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(n.parent_revision, main.as_bytes());
    // An expected value the branch has moved past: the update loses (Gitaly: INTERNAL).
    let mut r = pick(&s, &extra, "main");
    r.expected_old_oid = ours.clone();
    let e = ops.user_cherry_pick(r).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::Internal, "update reference with hooks: reference update: reference does not point to expected object")
    );
    assert_eq!(g(&f.path, &["rev-parse", "main"]), main);

    let e = ops
        .user_cherry_pick(pick(&s, &"1".repeat(40), "main"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    for (edit, msg) in [
        (
            (|r: &mut UserCherryPickRequest| r.user = None) as fn(&mut UserCherryPickRequest),
            "empty User",
        ),
        (|r| r.commit = None, "empty Commit"),
        (|r| r.branch_name.clear(), "empty BranchName"),
        (|r| r.message.clear(), "empty Message"),
    ] {
        let mut r = pick(&s, &clean, "main");
        edit(&mut r);
        let e = ops.user_cherry_pick(r).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, msg));
    }
}

#[tokio::test]
async fn revert_commits() {
    let s = Ops::start().await;
    let (f, ours, theirs, _clean) = conflicts(&s, "r.git");
    let mut ops = s.ops();
    let before = snapshot(&f.path);
    let e = ops
        .user_revert(revert(&s, &theirs, "main"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "revert: there are conflicting files"
        )
    );
    let d: UserRevertError = detail(&e, "UserRevertError").unwrap();
    let Some(user_revert_error::Error::MergeConflict(c)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(c.conflicting_files, [b"f".to_vec(), b"g".to_vec()]);
    assert_eq!(snapshot(&f.path), before);
    let u = ops
        .user_revert(revert(&s, &ours, "main"))
        .await
        .unwrap()
        .into_inner()
        .branch_update
        .unwrap();
    assert_eq!(g(&f.path, &["rev-parse", "main"]), u.commit_id);
    assert_eq!(
        g(&f.path, &["rev-parse", "main^{tree}"]),
        g(&f.path, &["rev-parse", "base-branch^{tree}"])
    );
    assert_eq!(
        show(&f.path, "main"),
        format!("{ours}|Jane Doe|janedoe@gitlab.com|1700000000 +0000|Jane Doe|janedoe@gitlab.com|1700000000 +0000|reverted")
    );
    let before = snapshot(&f.path);
    let e = ops
        .user_revert(revert(&s, &ours, "main"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "revert: could not apply because the result was empty"
        )
    );
    assert_eq!(snapshot(&f.path), before);

    // A root commit can be reverted (its parent is the empty tree).
    let r2 = s.empty("r2.git", "sha1");
    use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType as A;
    for file in ["a.txt", "b.txt"] {
        let h = super::header(s.repo("r2.git"), "main", file);
        super::commit_files(&mut ops, h, vec![super::action(A::Create, file, b"x")])
            .await
            .unwrap();
    }
    let root = g(&r2, &["rev-parse", "main~1"]);
    let mut r = revert(&s, &root, "main");
    r.repository = Some(s.repo("r2.git"));
    ops.user_revert(r).await.unwrap();
    assert_eq!(g(&r2, &["ls-tree", "--name-only", "main"]), "b.txt");
    let e = ops
        .user_revert(revert(&s, &"1".repeat(40), "main"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::NotFound, "revert commit lookup: commit not found")
    );
}

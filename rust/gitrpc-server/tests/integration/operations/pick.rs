//! UserCherryPick and UserRevert.

use gitrpc_proto::gitaly::user_cherry_pick_error::Error as PickError;
use gitrpc_proto::gitaly::user_revert_error::Error as RevertError;
use gitrpc_proto::gitaly::*;
use tonic::{Code, Status};

use super::merge::conflicts;
use super::{detail, g, ok, show, snapshot, ts, user, Ops, Snapshot};

fn commit(id: &str) -> Option<GitCommit> {
    Some(GitCommit {
        id: id.into(),
        ..Default::default()
    })
}

pub(super) fn pick(s: &Ops, id: &str, branch: &str) -> UserCherryPickRequest {
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

pub(super) fn revert(s: &Ops, id: &str, branch: &str) -> UserRevertRequest {
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

/// `e` is `code` with `message`, and the repository is as it was (`before`).
fn refused(e: &Status, code: Code, message: &str, repo: &std::path::Path, before: &Snapshot) {
    assert_eq!((e.code(), e.message()), (code, message));
    assert_eq!(&snapshot(repo), before, "{message}");
}

fn conflict_on(files: &[&str]) -> MergeConflictError {
    MergeConflictError {
        conflicting_files: files.iter().map(|f| f.as_bytes().to_vec()).collect(),
        conflicting_commit_ids: Vec::new(),
    }
}

#[tokio::test]
async fn cherry_pick_commits() {
    let s = Ops::start().await;
    let (f, ours, theirs, clean) = conflicts(&s, "r.git");
    let mut ops = s.ops();
    let picked = |r| ok::<UserCherryPickResponse>(r).branch_update.unwrap();
    let u = picked(ops.user_cherry_pick(pick(&s, &clean, "main")).await);
    assert!(!u.branch_created && !u.repo_created);
    assert_eq!(g(&f.path, &["rev-parse", "main"]), u.commit_id);
    // The picked commit's author (with its own date and zone), the user as committer.
    assert_eq!(
        show(&f.path, "main"),
        format!("{ours}|Ada Lovelace|ada@example.com|1700000000 +0130|Jane Doe|janedoe@gitlab.com|1700000000 -0500|picked")
    );
    assert_eq!(super::blob(&f.path, "main", "c.txt"), b"c\n");
    assert_eq!(super::blob(&f.path, "main", "f"), b"our f\n");

    // A new branch from a start branch, with an explicit author; a dry run writes nothing.
    let mut r = pick(&s, &clean, "picked");
    r.start_branch_name = b"theirs".to_vec();
    r.commit_author_name = b"Grace".to_vec();
    r.commit_author_email = b"grace@example.com".to_vec();
    let u = picked(ops.user_cherry_pick(r).await);
    assert!(u.branch_created);
    assert_eq!(
        g(&f.path, &["log", "-1", "--format=%P %an %ae", "picked"]),
        format!("{theirs} Grace grace@example.com")
    );
    let before = snapshot(&f.path);
    let mut r = pick(&s, &clean, "dry");
    r.start_branch_name = b"theirs".to_vec();
    r.dry_run = true;
    let u = picked(ops.user_cherry_pick(r).await);
    assert_eq!(u.commit_id, theirs, "a dry run answers the start");
    let after = snapshot(&f.path);
    assert_eq!(after.objects, before.objects, "a dry run writes no object");
    assert_eq!(g(&f.path, &["rev-parse", "dry"]), theirs);

    // Refusals, each leaving the repository as it was: the request, the code and message,
    // and the detail, if any.
    f.git(&["checkout", "-q", "-b", "extra", "base-branch"]);
    f.write("e.txt", "e\n");
    let extra = f.commit("extra");
    let main = g(&f.path, &["rev-parse", "main"]);
    let edit = |id: &str, e: fn(&mut UserCherryPickRequest)| {
        let mut r = pick(&s, id, "main");
        e(&mut r);
        r
    };
    let diverged = NotAncestorError {
        parent_revision: main.clone().into_bytes(),
        child_revision: Vec::new(),
    };
    let cases = [
        (
            pick(&s, &clean, "main"),
            Code::FailedPrecondition,
            "cherry-pick: could not apply because the result was empty".to_string(),
            Some(PickError::ChangesAlreadyApplied(ChangesAlreadyAppliedError {})),
        ),
        (
            pick(&s, &theirs, "main"),
            Code::FailedPrecondition,
            "cherry pick: merge: there are conflicting files".into(),
            Some(PickError::CherryPickConflict(conflict_on(&["f", "g"]))),
        ),
        // Based on another branch than the one it goes on: the branch would lose commits.
        (
            edit(&extra, |r| r.start_branch_name = b"theirs".to_vec()),
            Code::FailedPrecondition,
            "cherry-pick: branch diverged".into(),
            Some(PickError::TargetBranchDiverged(diverged)),
        ),
        // An expected value the branch has moved past: the update loses (Gitaly: INTERNAL).
        (
            {
                let mut r = pick(&s, &extra, "main");
                r.expected_old_oid = ours.clone();
                r
            },
            Code::Internal,
            "update reference with hooks: reference update: reference does not point to expected object".into(),
            None,
        ),
        (
            pick(&s, &"1".repeat(40), "main"),
            Code::NotFound,
            format!("cherry-pick: commit lookup: commit not found: \"{}\"", "1".repeat(40)),
            None,
        ),
        (edit(&clean, |r| r.user = None), Code::InvalidArgument, "empty User".into(), None),
        (edit(&clean, |r| r.commit = None), Code::InvalidArgument, "empty Commit".into(), None),
        (edit(&clean, |r| r.branch_name.clear()), Code::InvalidArgument, "empty BranchName".into(), None),
        (edit(&clean, |r| r.message.clear()), Code::InvalidArgument, "empty Message".into(), None),
    ];
    let before = snapshot(&f.path);
    for (r, code, message, want) in cases {
        let e = ops.user_cherry_pick(r).await.unwrap_err();
        refused(&e, code, &message, &f.path, &before);
        if let Some(want) = want {
            let d: UserCherryPickError = detail(&e, "UserCherryPickError").unwrap();
            let mut got = d.error.unwrap();
            // The commit the branch would have moved to is new: only its length is known.
            if let PickError::TargetBranchDiverged(n) = &mut got {
                assert_eq!(n.child_revision.len(), 40);
                n.child_revision.clear();
            }
            assert_eq!(got, want, "{message}");
        }
    }
    assert_eq!(g(&f.path, &["rev-parse", "main"]), main);
}

#[tokio::test]
async fn revert_commits() {
    let s = Ops::start().await;
    let (f, ours, theirs, _clean) = conflicts(&s, "r.git");
    let mut ops = s.ops();
    let reverted = |r| ok::<UserRevertResponse>(r).branch_update.unwrap();
    let detail_of = |e: &Status| {
        let d: UserRevertError = detail(e, "UserRevertError").unwrap();
        d.error.unwrap()
    };
    let before = snapshot(&f.path);
    let e = ops
        .user_revert(revert(&s, &theirs, "main"))
        .await
        .unwrap_err();
    refused(
        &e,
        Code::FailedPrecondition,
        "revert: there are conflicting files",
        &f.path,
        &before,
    );
    assert_eq!(
        detail_of(&e),
        RevertError::MergeConflict(conflict_on(&["f", "g"]))
    );
    let u = reverted(ops.user_revert(revert(&s, &ours, "main")).await);
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
    refused(
        &e,
        Code::FailedPrecondition,
        "revert: could not apply because the result was empty",
        &f.path,
        &before,
    );
    let e = ops
        .user_revert(revert(&s, &"1".repeat(40), "main"))
        .await
        .unwrap_err();
    refused(
        &e,
        Code::NotFound,
        "revert commit lookup: commit not found",
        &f.path,
        &before,
    );

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
    reverted(ops.user_revert(r).await);
    assert_eq!(g(&r2, &["ls-tree", "--name-only", "main"]), "b.txt");
}

//! UserMergeBranch (both phases), UserMergeToRef, UserFFBranch.

use gitrpc_proto::gitaly::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use super::{detail, g, has_object, show, snapshot, ts, user, Ops};
use crate::common::Fixture;

/// main: base (f, g, h) → ours (f, g changed, h changed like theirs); branch `theirs`:
/// base → theirs (f, g changed otherwise, h alike, t.txt added); branch `clean`: base → a new
/// file only.
pub fn conflicts(s: &Ops, rel: &str) -> (Fixture, String, String, String) {
    conflicts_in(s, rel, "sha1")
}

/// [`conflicts`] in a repository of `format` (`sha1`, `sha256`).
pub fn conflicts_in(s: &Ops, rel: &str, format: &str) -> (Fixture, String, String, String) {
    let f = Fixture::create(&s.path(rel), format);
    f.git(&["checkout", "-q", "-b", "base-branch"]);
    f.write("f", "base f\n");
    f.write("g", "base g\n");
    f.write("h", "base h\n");
    let base = f.commit("base");
    f.git(&["checkout", "-q", "-b", "theirs"]);
    f.write("f", "their f\n");
    f.write("g", "their g\n");
    f.write("h", "same h\n");
    f.write("t.txt", "t\n");
    let theirs = f.commit("theirs");
    f.git(&["checkout", "-q", "-b", "clean", &base]);
    f.write("c.txt", "c\n");
    let clean = f.commit("clean");
    f.git(&["checkout", "-q", "-B", "main", &base]);
    f.write("f", "our f\n");
    f.write("g", "our g\n");
    f.write("h", "same h\n");
    let ours = f.commit("ours");
    (f, ours, theirs, clean)
}

pub(super) fn first(s: &Ops, branch: &str, commit: &str) -> UserMergeBranchRequest {
    UserMergeBranchRequest {
        repository: Some(s.repo("r.git")),
        user: Some(user()),
        commit_id: commit.into(),
        branch: branch.as_bytes().to_vec(),
        message: b"Merge clean into main".to_vec(),
        timestamp: ts(1_700_000_000),
        ..Default::default()
    }
}

/// Phase one: the merge id, and the channel for phase two.
pub(super) async fn propose(
    s: &Ops,
    req: UserMergeBranchRequest,
) -> Result<
    (
        String,
        mpsc::Sender<UserMergeBranchRequest>,
        tonic::Streaming<UserMergeBranchResponse>,
    ),
    tonic::Status,
> {
    let (tx, rx) = mpsc::channel(2);
    tx.send(req).await.unwrap();
    let mut resp = s
        .ops()
        .user_merge_branch(ReceiverStream::new(rx))
        .await?
        .into_inner();
    let id = resp.message().await?.expect("first response").commit_id;
    Ok((id, tx, resp))
}

#[tokio::test]
async fn merge_in_two_phases() {
    let s = Ops::start().await;
    let (f, ours, _theirs, clean) = conflicts(&s, "r.git");
    let (id, tx, mut resp) = propose(&s, first(&s, "main", &clean)).await.unwrap();
    assert!(
        !has_object(&f.path, &id),
        "the merge is quarantined until applied"
    );
    assert_eq!(g(&f.path, &["rev-parse", "main"]), ours);
    tx.send(UserMergeBranchRequest {
        apply: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let u = resp
        .message()
        .await
        .unwrap()
        .unwrap()
        .branch_update
        .unwrap();
    assert_eq!(
        (u.commit_id.as_str(), u.repo_created, u.branch_created),
        (id.as_str(), false, false)
    );
    assert!(resp.message().await.unwrap().is_none());
    assert_eq!(g(&f.path, &["rev-parse", "main"]), id);
    assert_eq!(
        show(&f.path, "main"),
        format!("{ours} {clean}|Jane Doe|janedoe@gitlab.com|1700000000 +0000|Jane Doe|janedoe@gitlab.com|1700000000 +0000|Merge clean into main")
    );
    assert_eq!(
        g(&f.path, &["rev-parse", "main^{tree}"]),
        g(&f.path, &["merge-tree", "--write-tree", &ours, &clean])
    );
    assert!(super::quarantines(&f.path).is_empty());

    // The same inputs give the same commit; squash gives one parent.
    g(&f.path, &["update-ref", "refs/heads/main", &ours]);
    let (again, tx, _r) = propose(&s, first(&s, "main", &clean)).await.unwrap();
    assert_eq!(again, id);
    drop(tx);
    let (squashed, tx, mut resp) = propose(
        &s,
        UserMergeBranchRequest {
            squash: true,
            ..first(&s, "main", &clean)
        },
    )
    .await
    .unwrap();
    tx.send(UserMergeBranchRequest {
        apply: true,
        ..Default::default()
    })
    .await
    .unwrap();
    resp.message().await.unwrap().unwrap();
    assert_eq!(g(&f.path, &["rev-parse", "main"]), squashed);
    assert_eq!(g(&f.path, &["log", "-1", "--format=%P", "main"]), ours);
}

#[tokio::test]
async fn declined_dropped_and_raced_merges_write_nothing() {
    let s = Ops::start().await;
    let (f, ours, theirs, clean) = conflicts(&s, "r.git");
    let before = snapshot(&f.path);
    // apply=false, and a half-close without the second message.
    for apply in [Some(false), None] {
        let (_, tx, mut resp) = propose(&s, first(&s, "main", &clean)).await.unwrap();
        match apply {
            Some(a) => tx
                .send(UserMergeBranchRequest {
                    apply: a,
                    ..Default::default()
                })
                .await
                .unwrap(),
            None => drop(tx),
        }
        let e = resp.message().await.unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::FailedPrecondition, "merge aborted by client")
        );
        assert_eq!(snapshot(&f.path), before);
    }
    // The client goes away between the phases.
    let (_, tx, resp) = propose(&s, first(&s, "main", &clean)).await.unwrap();
    drop(resp);
    drop(tx);
    for _ in 0..100 {
        if super::quarantines(&f.path).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(snapshot(&f.path), before);

    // Conflicts, with their paths and both sides.
    let e = propose(&s, first(&s, "main", &theirs)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "merging commits: merge: there are conflicting files"
        )
    );
    let d: UserMergeBranchError = detail(&e, "UserMergeBranchError").unwrap();
    let Some(user_merge_branch_error::Error::MergeConflict(c)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(c.conflicting_files, [b"f".to_vec(), b"g".to_vec()]);
    assert_eq!(c.conflicting_commit_ids, [ours.clone(), theirs.clone()]);
    assert_eq!(snapshot(&f.path), before);

    // The branch moves between the phases: the merge loses, the other value stays.
    let (id, tx, mut resp) = propose(&s, first(&s, "main", &clean)).await.unwrap();
    g(&f.path, &["update-ref", "refs/heads/main", &theirs]);
    tx.send(UserMergeBranchRequest {
        apply: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let e = resp.message().await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "reference update: reference does not point to expected object"
        )
    );
    let d: UserMergeBranchError = detail(&e, "UserMergeBranchError").unwrap();
    let Some(user_merge_branch_error::Error::ReferenceUpdate(u)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(
        (
            u.reference_name.as_slice(),
            u.old_oid.as_str(),
            u.new_oid.as_str()
        ),
        (&b"refs/heads/main"[..], ours.as_str(), id.as_str())
    );
    assert_eq!(g(&f.path, &["rev-parse", "main"]), theirs);
    assert!(!has_object(&f.path, &id));

    let e = propose(&s, first(&s, "nope", &clean)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::NotFound, "reference not found")
    );
    for (edit, msg) in [
        (
            (|r: &mut UserMergeBranchRequest| r.user = None) as fn(&mut UserMergeBranchRequest),
            "empty user",
        ),
        (
            |r| r.user.as_mut().unwrap().email.clear(),
            "empty user email",
        ),
        (|r| r.user.as_mut().unwrap().name.clear(), "empty user name"),
        (|r| r.branch.clear(), "empty branch name"),
        (|r| r.commit_id.clear(), "empty commit ID"),
        (|r| r.message.clear(), "empty message"),
    ] {
        let mut r = first(&s, "main", &clean);
        edit(&mut r);
        let e = propose(&s, r).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, msg));
    }
}

#[tokio::test]
async fn merge_to_ref() {
    let s = Ops::start().await;
    let (f, ours, theirs, clean) = conflicts(&s, "r.git");
    let mut ops = s.ops();
    let req = |source: &str, target: &str| UserMergeToRefRequest {
        repository: Some(s.repo("r.git")),
        user: Some(user()),
        source_sha: source.into(),
        target_ref: target.as_bytes().to_vec(),
        message: b"merge request".to_vec(),
        first_parent_ref: b"refs/heads/main".to_vec(),
        timestamp: ts(1_700_000_000),
        ..Default::default()
    };
    let id = ops
        .user_merge_to_ref(req(&clean, "refs/merge-requests/1/merge"))
        .await
        .unwrap()
        .into_inner()
        .commit_id;
    assert_eq!(
        g(&f.path, &["rev-parse", "refs/merge-requests/1/merge"]),
        id
    );
    assert_eq!(
        g(&f.path, &["log", "-1", "--format=%P", &id]),
        format!("{ours} {clean}")
    );
    assert_eq!(g(&f.path, &["rev-parse", "main"]), ours);
    let e = ops
        .user_merge_to_ref(req(&theirs, "refs/merge-requests/1/merge"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        format!("Failed to create merge commit for source_sha {theirs} and target_sha {ours} at refs/merge-requests/1/merge")
    );
    let e = ops
        .user_merge_to_ref(req(&clean, "refs/heads/x"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "invalid target ref")
    );
    let mut stale = req(&clean, "refs/merge-requests/1/merge");
    stale.expected_old_oid = ours.clone();
    let e = ops.user_merge_to_ref(stale).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "Could not update refs/merge-requests/1/merge. Please refresh and try again"
        )
    );
    assert_eq!(
        g(&f.path, &["rev-parse", "refs/merge-requests/1/merge"]),
        id
    );
}

#[tokio::test]
async fn ff_branch() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let (c4, c3) = (f.rev_parse("main"), f.rev_parse("main~1"));
    g(&f.path, &["update-ref", "refs/heads/behind", &c3]);
    let req = |branch: &str, commit: &str| UserFfBranchRequest {
        repository: Some(s.repo("r.git")),
        user: Some(user()),
        commit_id: commit.into(),
        branch: branch.as_bytes().to_vec(),
        expected_old_oid: String::new(),
    };
    let r = ops
        .user_ff_branch(req("behind", &c4))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.branch_update.unwrap().commit_id, c4);
    assert_eq!(g(&f.path, &["rev-parse", "behind"]), c4);
    let f1 = f.rev_parse("feature");
    let e = ops.user_ff_branch(req("main", &f1)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "not fast forward")
    );
    let e = ops.user_ff_branch(req("nope", &c4)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "reference not found")
    );
    let e = ops.user_ff_branch(req("main", "foobar")).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::InvalidArgument,
            "cannot parse commit ID: invalid object ID: \"foobar\", expected length 40, got 6"
        )
    );
}

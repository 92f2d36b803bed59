//! UserSquash and UserRebaseToRef.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::merge::conflicts;
use super::{detail, g, has_object, show, ts, user, Ops};

#[tokio::test]
async fn squash() {
    let s = Ops::start().await;
    let (f, ours, theirs, _clean) = conflicts(&s, "r.git");
    let mut ops = s.ops();
    // feature: two commits on top of main.
    f.git(&["checkout", "-q", "-b", "feature2", &ours]);
    f.write("s1.txt", "1\n");
    f.commit("s1");
    f.write("s2.txt", "2\n");
    let end = f.commit("s2");
    let req = |start: &str, end: &str| UserSquashRequest {
        repository: Some(s.repo("r.git")),
        user: Some(user()),
        start_sha: start.into(),
        end_sha: end.into(),
        author: Some(User {
            name: b"Ada Lovelace".to_vec(),
            email: b"ada@example.com".to_vec(),
            timezone: "Asia/Kolkata".into(),
            ..Default::default()
        }),
        commit_message: b"squashed".to_vec(),
        timestamp: ts(1_700_000_000),
        ..Default::default()
    };
    let id = ops
        .user_squash(req(&ours, &end))
        .await
        .unwrap()
        .into_inner()
        .squash_sha;
    assert!(has_object(&f.path, &id), "the squash is kept");
    assert_eq!(
        show(&f.path, &id),
        format!("{ours}|Ada Lovelace|ada@example.com|1700000000 +0530|Jane Doe|janedoe@gitlab.com|1700000000 +0000|squashed")
    );
    assert_eq!(
        g(&f.path, &["cat-file", "-p", &id]).lines().last(),
        Some("squashed")
    );
    assert_eq!(
        g(&f.path, &["rev-parse", &format!("{id}^{{tree}}")]),
        g(&f.path, &["rev-parse", &format!("{end}^{{tree}}")])
    );
    assert!(super::quarantines(&f.path).is_empty());

    let e = ops.user_squash(req(&ours, &theirs)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "squashing commits: merge: there are conflicting files"
        )
    );
    let d: UserSquashError = detail(&e, "UserSquashError").unwrap();
    let Some(user_squash_error::Error::RebaseConflict(c)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(c.conflicting_files, [b"f".to_vec(), b"g".to_vec()]);
    assert_eq!(c.conflicting_commit_ids, [ours.clone(), theirs.clone()]);
    let e = ops.user_squash(req("nope", &end)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::InvalidArgument,
            "resolving start revision: reference not found"
        )
    );
    let d: UserSquashError = detail(&e, "UserSquashError").unwrap();
    let Some(user_squash_error::Error::ResolveRevision(r)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(r.revision, b"nope");
    let e = ops
        .user_squash(UserSquashRequest {
            author: None,
            ..req(&ours, &end)
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "empty Author")
    );
}

#[tokio::test]
async fn rebase_to_ref() {
    let s = Ops::start().await;
    let (f, ours, theirs, clean) = conflicts(&s, "r.git");
    let mut ops = s.ops();
    // Two commits on top of `clean`, rebased onto main.
    f.git(&["checkout", "-q", "-b", "mr", &clean]);
    f.write("m1.txt", "1\n");
    f.commit("m1");
    f.write("m2.txt", "2\n");
    let tip = f.commit("m2");
    let req = |source: &str| UserRebaseToRefRequest {
        repository: Some(s.repo("r.git")),
        user: Some(user()),
        source_sha: source.into(),
        target_ref: b"refs/merge-requests/7/train".to_vec(),
        first_parent_ref: b"refs/heads/main".to_vec(),
        timestamp: ts(1_700_000_000),
        expected_old_oid: String::new(),
    };
    let id = ops
        .user_rebase_to_ref(req(&tip))
        .await
        .unwrap()
        .into_inner()
        .commit_id;
    assert_eq!(
        g(&f.path, &["rev-parse", "refs/merge-requests/7/train"]),
        id
    );
    assert_eq!(
        g(&f.path, &["log", "--format=%s", &format!("{ours}..{id}")]),
        "m2\nm1\nclean"
    );
    assert_eq!(
        g(
            &f.path,
            &[
                "log",
                "-1",
                "--date=format:%z",
                "--format=%an %ae %at %ad|%cn %ct",
                &id
            ]
        ),
        "Ada Lovelace ada@example.com 1700000000 +0130|Jane Doe 1700000000"
    );
    assert_eq!(g(&f.path, &["rev-parse", "main"]), ours);
    // Already based on the first parent: the source itself.
    let ff = ops
        .user_rebase_to_ref(UserRebaseToRefRequest {
            target_ref: b"refs/merge-requests/8/train".to_vec(),
            ..req(&ours)
        })
        .await
        .unwrap()
        .into_inner()
        .commit_id;
    assert_eq!(ff, ours);
    let e = ops
        .user_rebase_to_ref(UserRebaseToRefRequest {
            target_ref: b"refs/merge-requests/9/train".to_vec(),
            ..req(&theirs)
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        format!("failed to rebase {theirs} on {ours} while preparing refs/merge-requests/9/train due to conflict")
    );
    let e = ops
        .user_rebase_to_ref(UserRebaseToRefRequest {
            target_ref: b"refs/heads/x".to_vec(),
            ..req(&tip)
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "invalid TargetRef")
    );
    let _ = show;
}

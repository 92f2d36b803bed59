//! UserCreateBranch, UserUpdateBranch, UserDeleteBranch.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{detail, g, snapshot, user, Ops};

#[tokio::test]
async fn create_branch_at_a_start_point() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let req = |name: &str, start: &str| UserCreateBranchRequest {
        repository: Some(s.repo("r.git")),
        branch_name: name.as_bytes().to_vec(),
        user: Some(user()),
        start_point: start.as_bytes().to_vec(),
    };
    let c3 = f.rev_parse("main~1");
    let r = ops
        .user_create_branch(req("x", "main~1"))
        .await
        .unwrap()
        .into_inner();
    let b = r.branch.unwrap();
    assert_eq!(b.name, b"x");
    assert_eq!(b.target_commit.unwrap().id, c3);
    assert_eq!(g(&f.path, &["rev-parse", "refs/heads/x"]), c3);

    let e = ops.user_create_branch(req("x", "main")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(e.message(), "reference update: reference already exists");
    assert_eq!(g(&f.path, &["rev-parse", "refs/heads/x"]), c3);

    ops.user_create_branch(req("improve/awesome", "main"))
        .await
        .unwrap();
    let e = ops
        .user_create_branch(req("improve", "main"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(e.message(), "reference update: file directory conflict");

    let before = snapshot(&f.path);
    let e = ops.user_create_branch(req("y", "nope")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.message(), "revspec 'nope' not found");
    for (r, code, msg) in [
        (req("", "main"), Code::InvalidArgument, "empty branch name"),
        (req("y", ""), Code::InvalidArgument, "empty start point"),
        (
            UserCreateBranchRequest {
                user: None,
                ..req("y", "main")
            },
            Code::InvalidArgument,
            "empty user",
        ),
        (
            req("a..b", "main"),
            Code::InvalidArgument,
            "invalid branch name: \"a..b\"",
        ),
        (
            UserCreateBranchRequest {
                repository: None,
                ..req("y", "main")
            },
            Code::InvalidArgument,
            "empty Repository",
        ),
    ] {
        let e = ops.user_create_branch(r).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (code, msg));
    }
    assert_eq!(snapshot(&f.path), before, "nothing written");
}

#[tokio::test]
async fn update_branch_checks_the_old_value() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let (c4, c3) = (f.rev_parse("main"), f.rev_parse("main~1"));
    let req = |new: &str, old: &str| UserUpdateBranchRequest {
        repository: Some(s.repo("r.git")),
        branch_name: b"main".to_vec(),
        user: Some(user()),
        newrev: new.as_bytes().to_vec(),
        oldrev: old.as_bytes().to_vec(),
    };
    let r = ops
        .user_update_branch(req(&c3, &c4))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.pre_receive_error, "");
    assert_eq!(g(&f.path, &["rev-parse", "main"]), c3);
    let e = ops.user_update_branch(req(&c4, &c4)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        "Could not update main. Please refresh and try again."
    );
    assert_eq!(g(&f.path, &["rev-parse", "main"]), c3);
    let e = ops
        .user_update_branch(req("foobar", &c3))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert_eq!(
        e.message(),
        "could not parse newrev: invalid object ID: \"foobar\", expected length 40, got 6"
    );
    let e = ops.user_update_branch(req("", &c3)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "empty newrev")
    );
}

#[tokio::test]
async fn delete_branch_with_and_without_expected_value() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let req = |name: &str, expected: &str| UserDeleteBranchRequest {
        repository: Some(s.repo("r.git")),
        branch_name: name.as_bytes().to_vec(),
        user: Some(user()),
        expected_old_oid: expected.into(),
    };
    ops.user_delete_branch(req("feature", "")).await.unwrap();
    assert!(g(&f.path, &["for-each-ref", "refs/heads/feature"]).is_empty());

    let c4 = f.rev_parse("main");
    let c3 = f.rev_parse("main~1");
    let e = ops.user_delete_branch(req("main", &c3)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(
        e.message(),
        "reference update failed: reference update: reference does not point to expected object"
    );
    let d: UserDeleteBranchError = detail(&e, "UserDeleteBranchError").unwrap();
    match d.error.unwrap() {
        user_delete_branch_error::Error::ReferenceUpdate(u) => {
            assert_eq!(u.reference_name, b"refs/heads/main");
            assert_eq!(u.old_oid, c3);
            assert_eq!(u.new_oid, "0".repeat(40));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(g(&f.path, &["rev-parse", "main"]), c4);
    let e = ops.user_delete_branch(req("nope", "")).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "branch not found: \"nope\"")
    );
    let e = ops
        .user_delete_branch(req("main", "foobar"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "invalid expected old object ID: invalid object ID: \"foobar\", expected length 40, got 6"
    );
    let e = ops.user_delete_branch(req("", "")).await.unwrap_err();
    assert_eq!(e.message(), "bad request: empty branch name");
    ops.user_delete_branch(req("main", &c4)).await.unwrap();
    assert!(g(&f.path, &["for-each-ref", "refs/heads/main"]).is_empty());
}

//! UserCreateTag (lightweight, annotated, on a tag) and UserDeleteTag.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{detail, g, snapshot, ts, user, Ops};

fn req(s: &Ops, name: &str, target: &str, message: &str) -> UserCreateTagRequest {
    UserCreateTagRequest {
        repository: Some(s.repo("r.git")),
        tag_name: name.as_bytes().to_vec(),
        user: Some(User {
            timezone: "Europe/Berlin".into(),
            ..user()
        }),
        target_revision: target.as_bytes().to_vec(),
        message: message.as_bytes().to_vec(),
        timestamp: ts(1_700_000_000),
    }
}

#[tokio::test]
async fn lightweight_and_annotated_tags() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let c4 = f.rev_parse("main");

    let t = ops
        .user_create_tag(req(&s, "v2", "main", ""))
        .await
        .unwrap()
        .into_inner()
        .tag
        .unwrap();
    assert_eq!(t.name, b"v2");
    assert_eq!(t.id, c4);
    assert_eq!(t.target_commit.unwrap().id, c4);
    assert_eq!(g(&f.path, &["rev-parse", "refs/tags/v2"]), c4);

    let t = ops
        .user_create_tag(req(&s, "v3", "main~1", "release\n\nnotes\n"))
        .await
        .unwrap()
        .into_inner()
        .tag
        .unwrap();
    let c3 = f.rev_parse("main~1");
    assert_eq!(g(&f.path, &["rev-parse", "refs/tags/v3"]), t.id);
    assert_eq!(t.target_commit.unwrap().id, c3);
    assert_eq!(t.message, b"release\n\nnotes\n");
    assert_eq!(
        g(&f.path, &["cat-file", "-p", &t.id]),
        format!("object {c3}\ntype commit\ntag v3\ntagger Jane Doe <janedoe@gitlab.com> 1700000000 +0100\n\nrelease\n\nnotes")
    );

    // A lightweight tag of an annotated tag points at what it peels to.
    let v1 = f.rev_parse("v1.0^{commit}");
    let t = ops
        .user_create_tag(req(&s, "v4", "v1.0", ""))
        .await
        .unwrap()
        .into_inner()
        .tag
        .unwrap();
    assert_eq!(t.id, v1);
    // An annotated tag of a tag is a tag of the tag object.
    let t = ops
        .user_create_tag(req(&s, "v5", "v1.0", "on a tag"))
        .await
        .unwrap()
        .into_inner()
        .tag
        .unwrap();
    let v1_tag = f.rev_parse("v1.0");
    assert!(g(&f.path, &["cat-file", "-p", &t.id])
        .starts_with(&format!("object {v1_tag}\ntype tag\ntag v5\n")));
    assert_eq!(t.target_commit.unwrap().id, v1);

    let before = snapshot(&f.path);
    let e = ops
        .user_create_tag(req(&s, "v3", "main", "again"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::AlreadyExists, "tag reference exists already")
    );
    let d: UserCreateTagError = detail(&e, "UserCreateTagError").unwrap();
    match d.error.unwrap() {
        user_create_tag_error::Error::ReferenceExists(r) => {
            assert_eq!(r.reference_name, b"refs/tags/v3");
            assert_eq!(r.oid, g(&f.path, &["rev-parse", "refs/tags/v3"]));
        }
        other => panic!("{other:?}"),
    }
    for (r, msg) in [
        (
            req(&s, "v 6", "main", ""),
            "invalid tag name: revision can't contain whitespace",
        ),
        (
            req(&s, "-v6", "main", ""),
            "invalid tag name: revision can't start with '-'",
        ),
        (
            req(&s, "v:6", "main", ""),
            "invalid tag name: revision can't contain ':'",
        ),
        (req(&s, "", "main", ""), "empty tag name"),
        (req(&s, "v6", "", ""), "empty target revision"),
        (
            req(&s, "v6", "main", "a\0b"),
            "tag message contains NUL byte",
        ),
        (
            UserCreateTagRequest {
                user: None,
                ..req(&s, "v6", "main", "")
            },
            "empty user",
        ),
        (
            UserCreateTagRequest {
                user: Some(User {
                    timezone: "Mars/Olympus".into(),
                    ..user()
                }),
                ..req(&s, "v6", "main", "x")
            },
            "unknown time zone Mars/Olympus",
        ),
    ] {
        let e = ops.user_create_tag(r).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, msg));
    }
    let e = ops
        .user_create_tag(req(&s, "v6", "nope", "x"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "revspec 'nope' not found")
    );
    assert_eq!(snapshot(&f.path), before, "nothing written");
}

#[tokio::test]
async fn delete_tag() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let del = |name: &str, expected: &str| UserDeleteTagRequest {
        repository: Some(s.repo("r.git")),
        tag_name: name.as_bytes().to_vec(),
        user: Some(user()),
        expected_old_oid: expected.into(),
    };
    let r = ops
        .user_delete_tag(del("v1.0", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.pre_receive_error, "");
    assert!(g(&f.path, &["for-each-ref", "refs/tags/v1.0"]).is_empty());
    let e = ops.user_delete_tag(del("v9", "")).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "tag not found: v9")
    );
    let c4 = f.rev_parse("main");
    let e = ops.user_delete_tag(del("light", &c4)).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::FailedPrecondition,
            "reference update: reference does not point to expected object"
        )
    );
    let c1 = f.rev_parse("light");
    ops.user_delete_tag(del("light", &c1)).await.unwrap();
    assert!(g(&f.path, &["for-each-ref", "refs/tags/"]).is_empty());
}

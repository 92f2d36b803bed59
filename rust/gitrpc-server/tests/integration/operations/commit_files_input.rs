//! UserCommitFiles with bad input: `INVALID_ARGUMENT` naming what is wrong, and nothing
//! written (no ref, no object, no quarantine left).

use gitrpc_proto::gitaly::user_commit_files_action::UserCommitFilesActionPayload as ActionPayload;
use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType as A;
use gitrpc_proto::gitaly::user_commit_files_request::UserCommitFilesRequestPayload as Payload;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{action, commit_files, detail, header, snapshot, user, Ops};

#[tokio::test]
async fn bad_input_is_invalid_argument_and_writes_nothing() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let before = snapshot(&f.path);
    let h = || header(s.repo("r.git"), "main", "m");
    let with = |edit: fn(&mut UserCommitFilesRequestHeader)| {
        let mut x = h();
        edit(&mut x);
        x
    };
    let mut bad_b64 = action(A::Create, "x.txt", b"not base64!");
    bad_b64.0.base64_content = true;
    let mut unknown = action(A::Create, "x.txt", b"");
    unknown.0.action = 9;
    let mut move_out = action(A::Move, "in.txt", b"");
    move_out.0.previous_path = b"../README.md".to_vec();
    let cases: Vec<(UserCommitFilesRequestHeader, Vec<_>, &str)> = vec![
        (with(|h| h.user = None), vec![], "empty User"),
        (with(|h| h.commit_message.clear()), vec![], "empty CommitMessage"),
        (with(|h| h.branch_name.clear()), vec![], "empty BranchName"),
        (with(|h| h.branch_name = b"a..b".to_vec()), vec![], "invalid branch name: \"a..b\""),
        (
            with(|h| h.start_sha = "foobar".into()),
            vec![],
            "invalid object ID: \"foobar\", expected length 40, got 6",
        ),
        (
            with(|h| h.expected_old_oid = "foobar".into()),
            vec![],
            "invalid expected old object ID: invalid object ID: \"foobar\", expected length 40, got 6",
        ),
        (
            with(|h| h.expected_old_oid = "1".repeat(40)),
            vec![],
            "cannot resolve expected old object ID: reference not found",
        ),
        (
            with(|h| h.user.as_mut().unwrap().timezone = "Mars/Olympus".into()),
            vec![],
            "unknown time zone Mars/Olympus",
        ),
        (
            with(|h| h.user.as_mut().unwrap().email = b"<>".to_vec()),
            vec![],
            "commit: failed to parse signature - Signature cannot have an empty name or email",
        ),
        (
            with(|h| h.repository.as_mut().unwrap().git_object_directory = "objects/tmp_objdir-x".into()),
            vec![],
            "quarantine configured on a mutator request",
        ),
        (h(), vec![action(A::Create, "../x", b"x")], "Path cannot include directory traversal"),
        (h(), vec![action(A::Create, "a/../../x", b"x")], "Path cannot include directory traversal"),
        (h(), vec![action(A::Create, "", b"x")], "You must provide a file path"),
        (h(), vec![action(A::Create, "a//b", b"x")], "invalid path: \"a//b\""),
        (h(), vec![action(A::Create, ".git/config", b"x")], "invalid path: '.git/config'"),
        (h(), vec![action(A::Create, ".GIT/config", b"x")], "invalid path: '.GIT/config'"),
        (h(), vec![action(A::Create, "a/.git/x", b"x")], "invalid path: 'a/.git/x'"),
        (h(), vec![move_out], "Path cannot include directory traversal"),
        (h(), vec![bad_b64], "invalid base64 content for \"x.txt\""),
        (h(), vec![unknown], "NoMethodError: undefined method `downcase' for 9:Integer"),
        // A valid action first: nothing of it is written either.
        (
            h(),
            vec![action(A::Create, "ok.txt", b"ok"), action(A::Create, "../x", b"x")],
            "Path cannot include directory traversal",
        ),
    ];
    for (hd, acts, msg) in cases {
        let e = commit_files(&mut ops, hd, acts).await.unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, msg));
        assert_eq!(snapshot(&f.path), before, "{msg}: nothing written");
    }
    // Index errors of bad paths carry their detail.
    let e = commit_files(
        &mut ops,
        h(),
        vec![action(A::Create, ".git/hooks/pre-commit", b"x")],
    )
    .await
    .unwrap_err();
    let d: UserCommitFilesError = detail(&e, "UserCommitFilesError").unwrap();
    let Some(user_commit_files_error::Error::IndexUpdate(i)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(i.path, b".git/hooks/pre-commit");
    assert_eq!(i.error_type, index_error::ErrorType::InvalidPath as i32);
}

#[tokio::test]
async fn malformed_streams_are_invalid_argument() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let before = snapshot(&f.path);
    let head = |h| UserCommitFilesRequest {
        user_commit_files_request_payload: Some(Payload::Header(h)),
    };
    let act = |p| UserCommitFilesRequest {
        user_commit_files_request_payload: Some(Payload::Action(UserCommitFilesAction {
            user_commit_files_action_payload: Some(p),
        })),
    };
    let h = header(s.repo("r.git"), "main", "m");
    for (msgs, want) in [
        (vec![], "empty UserCommitFilesRequestHeader"),
        (
            vec![act(ActionPayload::Content(b"x".to_vec()))],
            "empty UserCommitFilesRequestHeader",
        ),
        (
            vec![head(h.clone()), act(ActionPayload::Content(b"x".to_vec()))],
            "content sent before action",
        ),
        (
            vec![head(h.clone()), head(h.clone())],
            "unexpected header after the first message",
        ),
    ] {
        let e = s
            .ops()
            .user_commit_files(futures::stream::iter(msgs))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, want));
    }
    assert_eq!(snapshot(&f.path), before);
    let _ = user();
}

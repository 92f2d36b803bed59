//! GetPatchID against `git diff | git patch-id --verbatim`.

use std::io::Write;
use std::process::Stdio;

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{client, rich};
use crate::commit_history::{git_cmd, run, Work};
use crate::common::TestServer;

fn git_patch_id(w: &Work, old: &str, new: &str, extra: &[&str]) -> String {
    let mut args = vec!["diff", "--full-index"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[old, new]);
    let diff = run(&mut w.cmd(args));
    let mut p = git_cmd(w.work_dir())
        .args(["patch-id", "--verbatim"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(&diff).unwrap();
    let out = p.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn get_patch_id_equals_git() {
    let s = TestServer::start().await;
    let r = rich(&s, "r.git", "sha1");
    let mut c = client(&s);
    let req = |old: &str, new: &str, context_free: bool| GetPatchIdRequest {
        repository: Some(r.w.repo()),
        old_revision: old.as_bytes().to_vec(),
        new_revision: new.as_bytes().to_vec(),
        context_free,
    };
    for pair in r.commits.windows(2) {
        let got = c
            .get_patch_id(req(&pair[0], &pair[1], false))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.patch_id, git_patch_id(&r.w, &pair[0], &pair[1], &[]));
        let got = c
            .get_patch_id(req(&pair[0], &pair[1], true))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            got.patch_id,
            git_patch_id(&r.w, &pair[0], &pair[1], &["-U0"])
        );
    }
    // path-scoped revisions (a space in the path), binary files give different ids
    let (a, b) = (
        format!("{}:tale.txt", r.commits[1]),
        format!("{}:dir/keep.txt", r.commits[6]),
    );
    let got = c
        .get_patch_id(req(&a, &b, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.patch_id, git_patch_id(&r.w, &a, &b, &[]));
    let (a, b) = (
        format!("{}:a b.txt", r.commits[5]),
        format!("{}:ws.txt", r.commits[5]),
    );
    let got = c
        .get_patch_id(req(&a, &b, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.patch_id, git_patch_id(&r.w, &a, &b, &[]));
    // errors
    let head = r.commits.last().unwrap();
    let fail = |res: Result<tonic::Response<GetPatchIdResponse>, tonic::Status>| {
        let e = res.unwrap_err();
        (e.code(), e.message().to_string())
    };
    assert_eq!(
        fail(c.get_patch_id(req("", head, false)).await),
        (Code::InvalidArgument, "empty OldRevision".into())
    );
    assert_eq!(
        fail(c.get_patch_id(req(head, "", false)).await),
        (Code::InvalidArgument, "empty NewRevision".into())
    );
    assert_eq!(
        fail(c.get_patch_id(req(head, head, false)).await),
        (
            Code::FailedPrecondition,
            "no difference between old and new revision".into()
        )
    );
    assert_eq!(
        fail(c.get_patch_id(req("nope", head, false)).await),
        (
            Code::Internal,
            "waiting for git-diff: exit status 128".into()
        )
    );
    assert_eq!(
        fail(c.get_patch_id(req("-x", head, false)).await).0,
        Code::InvalidArgument
    );
    s.stop().await;
}

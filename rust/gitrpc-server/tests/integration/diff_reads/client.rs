//! The typed diff and blob-listing calls of `gitrpc_client::Client` (what C and Ruby use):
//! the same answers as the raw RPCs, patches put together.

use futures::TryStreamExt;
use gitrpc_client::client::{CommitDiffOptions, Diff};
use gitrpc_client::{Client as Typed, Options};
use tonic::Code;

use super::commit_diff::{commit_diff, request};
use super::{client, rich};
use crate::common::TestServer;

#[tokio::test]
async fn typed_diff_calls() {
    let s = TestServer::start().await;
    let r = rich(&s, "r.git", "sha1");
    let typed = Typed::connect(&format!("unix:{}", s.socket.display()), &Options::default())
        .await
        .unwrap();
    let repo = r.w.repo();
    let (l, rt) = (&r.commits[0], r.commits.last().unwrap());
    let got: Vec<Diff> = typed
        .commit_diff(&repo, l, rt, CommitDiffOptions::default())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut raw = client(&s);
    let want = commit_diff(&mut raw, request(&r.w, l, rt)).await.unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (&g.to_path, &g.to_id, &g.patch),
            (&w.meta.to_path, &w.meta.to_id, &w.patch)
        );
    }
    // limits reach the server
    let limited: Vec<Diff> = typed
        .commit_diff(
            &repo,
            l,
            rt,
            CommitDiffOptions {
                enforce_limits: true,
                max_files: 1,
                max_lines: 1000,
                max_bytes: 100_000,
                max_patch_bytes: 100_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
    assert!(limited[1].overflow_marker);
    let e = typed
        .commit_diff(&repo, "", rt, CommitDiffOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "empty LeftCommitId")
    );

    let paths = typed
        .find_changed_paths(&repo, &[&r.commits[1]], &[], true, &[])
        .await
        .unwrap();
    assert!(paths
        .iter()
        .any(|p| p.path == b"tale.txt" && p.old_path == b"story.txt"));
    let paths = typed
        .find_changed_paths(&repo, &[], &[(l, rt)], false, &[])
        .await
        .unwrap();
    assert!(paths.iter().all(|p| p.commit_id.is_empty()) && !paths.is_empty());

    let id = typed
        .patch_id(&repo, l.as_bytes(), rt.as_bytes(), false)
        .await
        .unwrap();
    assert_eq!(id.len(), 40);

    let blobs: Vec<_> = typed
        .list_blobs(&repo, &["main"], 0, -1, true)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let tale = blobs.iter().find(|b| b.path == b"tale.txt").unwrap();
    assert_eq!(tale.data.len() as i64, tale.size);
    assert!(typed
        .list_lfs_pointers(&repo, &["main"], 0)
        .await
        .unwrap()
        .is_empty());
    assert!(typed
        .lfs_pointers(&repo, &[&tale.oid])
        .await
        .unwrap()
        .is_empty());
    s.stop().await;
}

//! The typed Rust calls of `gitrpc_client::Client` for OperationService, and the error
//! detail decoder.

use std::sync::Arc;

use gitrpc_client::{BranchUpdate, CommitFiles, Detail, FileAction, MergeBranch, PickRevert};
use gitrpc_server::{HookFn, Hooks, Rejected};
use tonic::Code;

use super::merge::conflicts;
use super::{g, has_object, user, Ops};

#[tokio::test]
async fn typed_calls_against_git() {
    let s = Ops::start().await;
    let (f, ours, theirs, clean) = conflicts(&s, "r.git");
    let c = s.client();
    let repo = s.repo("r.git");
    let u = c
        .commit_files(
            &repo,
            &CommitFiles {
                user: user(),
                branch: b"main".to_vec(),
                message: b"typed".to_vec(),
                actions: vec![
                    FileAction::Create {
                        path: b"big.bin".to_vec(),
                        content: vec![7u8; 300_000],
                        executable: false,
                    },
                    FileAction::Move {
                        from: b"h".to_vec(),
                        to: b"moved/h".to_vec(),
                        content: None,
                    },
                    FileAction::Chmod {
                        path: b"f".to_vec(),
                        executable: true,
                    },
                ],
                expected_old_oid: Some(ours.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        u,
        BranchUpdate {
            commit_id: g(&f.path, &["rev-parse", "main"]),
            repo_created: false,
            branch_created: false
        }
    );
    assert_eq!(super::blob(&f.path, "main", "big.bin").len(), 300_000);
    assert_eq!(super::blob(&f.path, "main", "moved/h"), b"same h\n");

    let b = c
        .create_branch(&repo, &user(), b"nb", b"clean")
        .await
        .unwrap();
    assert_eq!(b.target_commit.unwrap().id, clean);
    c.delete_branch(&repo, &user(), b"nb", Some(&clean))
        .await
        .unwrap();
    let t = c
        .create_tag(&repo, &user(), b"v7", b"main", Some(b"note"), None)
        .await
        .unwrap();
    assert_eq!(g(&f.path, &["cat-file", "-t", &t.id]), "tag");
    c.delete_tag(&repo, &user(), b"v7", None).await.unwrap();

    // Two phases: a declined proposal writes nothing; an applied one moves the branch.
    let m = MergeBranch {
        user: user(),
        branch: b"main".to_vec(),
        commit_id: clean.clone(),
        message: b"merge".to_vec(),
        ..Default::default()
    };
    let p = c.merge_branch(&repo, &m).await.unwrap();
    let declined = p.commit_id().to_string();
    p.abort().await;
    let p = c.merge_branch(&repo, &m).await.unwrap();
    let id = p.commit_id().to_string();
    let applied = p.apply().await.unwrap();
    assert_eq!(applied.commit_id, id);
    assert_eq!(g(&f.path, &["rev-parse", "main"]), id);
    let _ = declined;

    // A conflict's paths through the detail decoder.
    let e = c
        .merge_branch(
            &repo,
            &MergeBranch {
                commit_id: theirs.clone(),
                ..m.clone()
            },
        )
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::FailedPrecondition);
    match gitrpc_client::details::decode(&e) {
        Some(Detail::MergeConflict { files, commit_ids }) => {
            // h too: main moved it away, theirs changed it.
            assert_eq!(files, [b"f".to_vec(), b"g".to_vec(), b"h".to_vec()]);
            assert_eq!(commit_ids[1], theirs);
        }
        other => panic!("{other:?}"),
    }
    let e = c
        .cherry_pick(
            &repo,
            &PickRevert {
                user: user(),
                commit_id: clean.clone(),
                branch: b"main".to_vec(),
                message: b"again".to_vec(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        gitrpc_client::details::decode(&e),
        Some(Detail::ChangesAlreadyApplied)
    );
    assert!(has_object(&f.path, &id));
}

#[tokio::test]
async fn every_refusal_shape_is_an_error_with_the_hook_message() {
    let refuse: HookFn = Arc::new(|_| Box::pin(async { Err(Rejected::from("nope")) }));
    let s = Ops::with(
        |_| {},
        Hooks {
            pre_receive: Some(refuse),
            ..Default::default()
        },
    )
    .await;
    let f = s.fixture("r.git");
    let c = s.client();
    let repo = s.repo("r.git");
    let (c4, c3) = (f.rev_parse("main"), f.rev_parse("main~1"));
    // UserUpdateBranch answers OK with pre_receive_error: the client makes it an error.
    let e = c
        .update_branch(&repo, &user(), b"main", &c3, &c4)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::PermissionDenied, "nope"));
    assert!(gitrpc_client::details::is_hook_refusal(&e));
    let e = c
        .delete_tag(&repo, &user(), b"v1.0", None)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::PermissionDenied, "nope"));
    let e = c
        .create_branch(&repo, &user(), b"x", b"main")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    match gitrpc_client::details::decode(&e) {
        Some(Detail::CustomHook { kind, stderr, .. }) => {
            assert_eq!((kind, stderr.as_slice()), ("pre-receive", &b"nope"[..]))
        }
        other => panic!("{other:?}"),
    }
    let e = c
        .cherry_pick(
            &repo,
            &PickRevert {
                user: user(),
                commit_id: c4.clone(),
                branch: b"feature".to_vec(),
                message: b"p".to_vec(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        gitrpc_client::details::decode(&e),
        Some(Detail::AccessCheck {
            message: "nope".into()
        })
    );
    assert!(gitrpc_client::details::is_hook_refusal(&e));
}

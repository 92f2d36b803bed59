//! `RefTransaction` over `git update-ref --stdin -z`, and the typed failures of real git.

use std::time::{Duration, Instant};

use gitrpc_git::{Command, Error, RefError, RefTransaction, Subcommand};

use crate::common::{git, git_cli, repo};

fn ref_error(e: Error) -> RefError {
    match e {
        Error::Ref { error, .. } => error,
        other => panic!("not a classified ref failure: {other:?}"),
    }
}

#[tokio::test]
async fn commits_every_update_or_none() {
    let (d, gd) = repo("sha1");
    let git = git().await;
    let (c1, c2) = (
        git_cli(d.path(), &["rev-parse", "main~1"]),
        git_cli(d.path(), &["rev-parse", "main"]),
    );
    let zero = "0".repeat(40);
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/a", &c1, Some(&zero)).unwrap();
    tx.update("refs/heads/main", &c1, Some(&c2)).unwrap();
    tx.commit().await.unwrap();
    assert_eq!(git_cli(d.path(), &["rev-parse", "refs/heads/a"]), c1);
    assert_eq!(git_cli(d.path(), &["rev-parse", "main"]), c1);

    // One stale expectation: nothing changes, and git says which and why.
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/b", &c2, Some(&zero)).unwrap();
    tx.update("refs/heads/main", &c2, Some(&c2)).unwrap();
    let err = tx.prepare().await.unwrap_err();
    assert_eq!(
        ref_error(err),
        RefError::Mismatch {
            reference: "refs/heads/main".into(),
            expected: Some(c2.clone()),
            actual: Some(c1.clone()),
        }
    );
    assert!(git_cli(d.path(), &["for-each-ref", "refs/heads/b"]).is_empty());

    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/a", &c2, Some(&zero)).unwrap();
    let err = tx.commit().await.unwrap_err();
    assert_eq!(
        ref_error(err),
        RefError::AlreadyExists {
            reference: "refs/heads/a".into()
        }
    );
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.delete("refs/heads/nope", Some(&c2)).unwrap();
    let err = ref_error(tx.commit().await.unwrap_err());
    assert!(
        matches!(&err, RefError::Mismatch { reference, actual: None, .. } if reference == "refs/heads/nope"),
        "{err:?}"
    );

    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.delete("refs/heads/a", None).unwrap();
    tx.commit().await.unwrap();
    assert!(git_cli(d.path(), &["for-each-ref", "refs/heads/a"]).is_empty());
}

#[tokio::test]
async fn missing_and_non_commit_objects_are_typed() {
    let (d, gd) = repo("sha1");
    let git = git().await;
    let missing = "1".repeat(40);
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/x", &missing, None).unwrap();
    assert_eq!(
        ref_error(tx.commit().await.unwrap_err()),
        RefError::MissingObject {
            reference: "refs/heads/x".into(),
            oid: missing
        }
    );
    let tree = git_cli(d.path(), &["rev-parse", "main^{tree}"]);
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/x", &tree, None).unwrap();
    assert_eq!(
        ref_error(tx.commit().await.unwrap_err()),
        RefError::NonCommitObject {
            reference: "refs/heads/x".into(),
            oid: tree
        }
    );
    let head = git_cli(d.path(), &["rev-parse", "main"]);
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/main/sub", &head, None).unwrap();
    assert_eq!(
        ref_error(tx.commit().await.unwrap_err()),
        RefError::FileDirectoryConflict {
            existing: "refs/heads/main".into(),
            conflicting: "refs/heads/main/sub".into()
        }
    );
}

/// A lock file left by another writer is `Locked`, for a transaction and for a one-shot
/// `symbolic-ref` alike (what `writing_refs` in the server retries on).
#[tokio::test]
async fn a_real_lock_is_typed_locked() {
    let (d, gd) = repo("sha1");
    let git = git().await;
    let c1 = git_cli(d.path(), &["rev-parse", "main~1"]);
    std::fs::write(gd.join("refs/heads/main.lock"), "").unwrap();
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/main", &c1, None).unwrap();
    let err = tx.prepare().await.unwrap_err();
    assert!(err.is_locked(), "{err:?}");
    assert_eq!(
        ref_error(err),
        RefError::Locked {
            reference: "refs/heads/main".into()
        }
    );
    assert!(
        gd.join("refs/heads/main.lock").exists(),
        "not ours to remove"
    );

    std::fs::write(gd.join("HEAD.lock"), "").unwrap();
    let err = git
        .output(
            &Command::in_repo(&gd, Subcommand::SymbolicRef)
                .arg("HEAD")
                .arg("refs/heads/x"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        ref_error(err),
        RefError::Locked {
            reference: "HEAD".into()
        }
    );
    std::fs::write(gd.join("packed-refs.lock"), "").unwrap();
    std::fs::remove_file(gd.join("refs/heads/main.lock")).unwrap();
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.delete("refs/heads/main", None).unwrap();
    let err = tx.commit().await.unwrap_err();
    assert!(err.is_locked(), "{err:?}");
}

/// Between prepare and commit the references stay locked; a transaction dropped or aborted
/// leaves them as they were, unlocked.
#[tokio::test]
async fn prepared_transactions_hold_their_locks() {
    let (d, gd) = repo("sha256");
    let git = git().await;
    let (c1, c2) = (
        git_cli(d.path(), &["rev-parse", "main~1"]),
        git_cli(d.path(), &["rev-parse", "main"]),
    );
    assert_eq!(c1.len(), 64);
    let mut first = RefTransaction::start(&git, &gd).await.unwrap();
    first.update("refs/heads/main", &c1, Some(&c2)).unwrap();
    first.prepare().await.unwrap();
    let mut second = RefTransaction::start(&git, &gd).await.unwrap();
    second.update("refs/heads/main", &c2, None).unwrap();
    assert!(second.prepare().await.unwrap_err().is_locked());
    first.commit().await.unwrap();
    assert_eq!(git_cli(d.path(), &["rev-parse", "main"]), c1);

    let lock = gd.join("refs/heads/main.lock");
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/main", &c2, Some(&c1)).unwrap();
    tx.prepare().await.unwrap();
    assert!(lock.exists());
    tx.abort().await.unwrap();
    assert!(!lock.exists());
    assert_eq!(git_cli(d.path(), &["rev-parse", "main"]), c1);

    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    tx.update("refs/heads/main", &c2, Some(&c1)).unwrap();
    tx.prepare().await.unwrap();
    drop(tx); // a cancelled call: git is killed and removes its lock
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock.exists() {
        assert!(
            Instant::now() < deadline,
            "lock left by a dropped transaction"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(git_cli(d.path(), &["rev-parse", "main"]), c1);
}

#[tokio::test]
async fn bad_input_never_reaches_git() {
    let (_d, gd) = repo("sha1");
    let git = git().await;
    let mut tx = RefTransaction::start(&git, &gd).await.unwrap();
    assert!(tx.update("refs/heads/a\0b", "00", None).is_err());
    assert!(tx.update("refs/heads/a", "zz", None).is_err());
    assert!(tx.delete("refs/heads/a", Some("x\0")).is_err());
    let not_update_ref = Command::in_repo(&gd, Subcommand::Log);
    assert!(matches!(
        RefTransaction::start_with(&git, not_update_ref).await,
        Err(Error::InvalidArgument(_))
    ));
    tx.abort().await.unwrap();
}

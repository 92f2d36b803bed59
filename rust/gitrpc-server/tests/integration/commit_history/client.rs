//! The typed history calls of `gitrpc_client::Client` (what C and Ruby use): streams
//! flattened or reassembled, the same answers as the raw RPCs.

use futures::{StreamExt, TryStreamExt};
use gitrpc_client::client::FindCommitsOptions;
use gitrpc_client::{Client as Typed, Options};
use tonic::Code;

use super::find_commits::history;
use super::*;
use crate::common::TestServer;

#[tokio::test]
async fn typed_history_calls() {
    let s = TestServer::start().await;
    let w = history(&s, "typed.git", "sha1");
    let long: String = (0..20_000).map(|i| format!("message line {i}\n")).collect();
    let big = w.commit(&format!("big\n\n{long}"));
    let client = Typed::connect(&format!("unix:{}", s.socket.display()), &Options::default())
        .await
        .unwrap();
    let repo = w.repo();

    let entries: Vec<(Vec<u8>, GitCommit)> = client
        .list_last_commits_for_tree(&repo, "main", b"", 0, 100, true)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(entries.len(), 4);
    for (path, commit) in &entries {
        assert_eq!(commit.id, git_last_commit(&w.path, "main", path, true));
    }
    // The directory listing Ruby's `tree` pages with: the same entries in the same order.
    let listed = client.tree_entries(&repo, b"main", b"").await.unwrap();
    let listed_paths: Vec<&[u8]> = listed.iter().map(|e| e.path.as_slice()).collect();
    let llcft_paths: Vec<&[u8]> = entries.iter().map(|(p, _)| p.as_slice()).collect();
    assert_eq!(listed_paths, llcft_paths);
    for e in &listed {
        let spec = format!("main:{}", String::from_utf8_lossy(&e.path));
        assert_eq!(e.oid, w.git(&["rev-parse", &spec]).trim());
    }
    let e = client.tree_entries(&repo, b"nope", b"").await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "invalid revision or path")
    );

    let opts = FindCommitsOptions {
        limit: 3,
        skip_merges: true,
        ..Default::default()
    };
    let ids: Vec<String> = client
        .find_commits(&repo, opts)
        .await
        .unwrap()
        .map_ok(|c| c.id)
        .try_collect()
        .await
        .unwrap();
    let want: Vec<String> = w
        .git(&["log", "--format=%H", "--no-merges", "-3", "main"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids, want);
    let e = client
        .find_commits(
            &repo,
            FindCommitsOptions {
                revision: b"nope".to_vec(),
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    assert_eq!(
        client
            .count_diverging_commits(&repo, b"main", b"feature", 0)
            .await
            .unwrap(),
        (6, 0)
    );

    let blame: Vec<Vec<u8>> = client
        .raw_blame(&repo, b"main", b"README.md", Some("1,1"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let want = run(git_cmd(&w.path).args(["blame", "-p", "-L1,1", "main", "--", "README.md"]));
    assert_eq!(blame.concat(), want);

    let stats = client.commit_stats(&repo, b"main~1").await.unwrap();
    assert_eq!((stats.files, stats.additions), (1, 1));

    let batches = futures::stream::iter(vec![
        vec![b"main".to_vec(), b"nope".to_vec()],
        vec![b"main:README.md".to_vec()],
    ]);
    let exist: Vec<(Vec<u8>, bool)> = client
        .check_objects_exist(&repo, batches)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        exist,
        vec![
            (b"main".to_vec(), true),
            (b"nope".to_vec(), false),
            (b"main:README.md".to_vec(), true)
        ]
    );

    let found: Vec<GitCommit> = client
        .commits_by_message(&repo, b"", "typo", b"", 0, 0)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].subject, b"c5: fix TYPO in core");

    let by_ref = client
        .list_commits_by_ref_name(&repo, vec![b"main".to_vec(), b"nope".to_vec()])
        .await
        .unwrap();
    assert_eq!(by_ref.len(), 1);
    assert_eq!(by_ref[0].1.id, big);

    let messages: Vec<(String, Vec<u8>)> = client
        .get_commit_messages(&repo, vec![big.clone(), w.rev("main~1")])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].0, big);
    assert_eq!(messages[0].1, format!("big\n\n{long}").into_bytes());
    assert_eq!(messages[1].1, b"c6: docs\n");

    let none: Vec<_> = client
        .get_commit_signatures(&repo, vec![big.clone()])
        .await
        .unwrap()
        .collect()
        .await;
    assert!(none.is_empty(), "unsigned");
    let keys = tempfile::tempdir().unwrap();
    if let Some(key) = super::signatures::ssh_key(keys.path()) {
        let file = message_file(&format!("signed big\n\n{long}"));
        run(w
            .cmd([
                "-c",
                "gpg.format=ssh",
                "-c",
                &format!("user.signingkey={}", key.display()),
                "commit",
                "-q",
                "--allow-empty",
                "-S",
                "-F",
            ])
            .arg(file.path()));
        let signed = w.rev("HEAD");
        let sigs: Vec<gitrpc_client::client::CommitSignature> = client
            .get_commit_signatures(&repo, vec![big.clone(), signed.clone()])
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let (text, sig) = super::signatures::git_split(&w, &signed);
        assert_eq!(sigs.len(), 1);
        assert_eq!(
            (&sigs[0].commit_id, &sigs[0].signature, &sigs[0].signed_text),
            (&signed, &sig, &text)
        );
    }
    s.stop().await;
}

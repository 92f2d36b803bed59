//! Concurrent writers of one branch: the expected old value makes exactly one win, the
//! others get a precise error, and nothing is lost or left behind.

use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType as A;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{action, commit_files, g, header, quarantines, user, Ops};

const LOSER_MESSAGES: [&str; 2] = [
    "reference update: reference does not point to expected object",
    "reference update: reference is already locked",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_writers_one_winner_per_round() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let start_count: usize = g(&f.path, &["rev-list", "--count", "main"])
        .parse()
        .unwrap();
    let mut winners = Vec::new();
    for round in 0..5 {
        let tip = g(&f.path, &["rev-parse", "main"]);
        let mut calls = Vec::new();
        for i in 0..20 {
            let mut ops = s.ops();
            let mut h = header(
                s.repo("r.git"),
                "main",
                &format!("round {round} writer {i}"),
            );
            h.expected_old_oid = tip.clone();
            let file = format!("r{round}-{i}.txt");
            calls.push(tokio::spawn(async move {
                let r = commit_files(&mut ops, h, vec![action(A::Create, &file, b"x")]).await;
                (file, r)
            }));
        }
        let mut won = Vec::new();
        for c in calls {
            match c.await.unwrap() {
                (file, Ok(r)) => won.push((file, r.branch_update.unwrap().commit_id)),
                (_, Err(e)) => {
                    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
                    assert!(LOSER_MESSAGES.contains(&e.message()), "{}", e.message());
                }
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        let (file, commit) = won.pop().unwrap();
        assert_eq!(g(&f.path, &["rev-parse", "main"]), commit);
        assert_eq!(g(&f.path, &["rev-parse", "main^"]), tip);
        assert_eq!(
            g(
                &f.path,
                &["diff-tree", "--no-commit-id", "--name-only", "-r", "main"]
            ),
            file
        );
        winners.push(file);
    }
    let count: usize = g(&f.path, &["rev-list", "--count", "main"])
        .parse()
        .unwrap();
    assert_eq!(count, start_count + 5);
    let tree = g(&f.path, &["ls-tree", "--name-only", "main"]);
    for w in &winners {
        assert!(tree.lines().any(|l| l == w), "{w} lost");
    }
    g(&f.path, &["fsck", "--no-dangling"]);
    assert_eq!(
        g(&f.path, &["fsck", "--unreachable", "--no-progress"]),
        "",
        "losers left objects"
    );
    assert!(quarantines(&f.path).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_without_an_expected_value_lose_nothing() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let start = g(&f.path, &["rev-parse", "main"]);
    let mut calls = Vec::new();
    for i in 0..10 {
        let mut ops = s.ops();
        let h = header(s.repo("r.git"), "main", &format!("writer {i}"));
        calls.push(tokio::spawn(async move {
            commit_files(
                &mut ops,
                h,
                vec![action(A::Create, &format!("w{i}.txt"), b"x")],
            )
            .await
        }));
    }
    let mut ok = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(LOSER_MESSAGES.contains(&e.message()), "{e:?}"),
        }
    }
    assert!(ok >= 1);
    // Every success is in the (linear) history.
    let added = g(&f.path, &["rev-list", "--count", &format!("{start}..main")]);
    assert_eq!(added, ok.to_string());
    assert_eq!(g(&f.path, &["fsck", "--unreachable", "--no-progress"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_creators_of_one_branch() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let mut calls = Vec::new();
    for _ in 0..10 {
        let mut ops = s.ops();
        let req = UserCreateBranchRequest {
            repository: Some(s.repo("r.git")),
            branch_name: b"contested".to_vec(),
            user: Some(user()),
            start_point: b"main".to_vec(),
        };
        calls.push(tokio::spawn(
            async move { ops.user_create_branch(req).await },
        ));
    }
    let mut ok = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
                assert!(
                    [
                        "reference update: reference already exists",
                        "reference update: reference is already locked"
                    ]
                    .contains(&e.message()),
                    "{}",
                    e.message()
                );
            }
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(g(&f.path, &["rev-parse", "contested"]), f.rev_parse("main"));
}

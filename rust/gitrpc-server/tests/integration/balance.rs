use std::time::Duration;

use gitrpc_client::{client::repository, Client, Options};
use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::CommitIsAncestorRequest;
use gitrpc_server::config::{ConcurrencyConfig, Config};
use gitrpc_server::Serving;
use tonic::Code;

use crate::common::*;

const IS_ANCESTOR: &str = "/gitaly.CommitService/CommitIsAncestor";
const REF_EXISTS: &str = "/gitaly.RefService/RefExists";

fn count(server: &Serving, method: &str, code: &'static str) -> u64 {
    server.deps().rpcs.count(method, code)
}

async fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two servers of the same storage: idle, calls alternate; while one server has a call in
/// flight, every new call goes to the other (least outstanding requests).
#[tokio::test]
async fn least_outstanding_requests() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = serving(a_dir.path(), |_| {}).await;
    let b = serving(b_dir.path(), |_| {}).await;
    for d in [&a_dir, &b_dir] {
        Fixture::create(&d.path().join("storage/r.git"), "sha1");
        hanging_repo(&d.path().join("storage"), "hang.git");
    }
    let list = format!("{},{}", a.addresses()[0], b.addresses()[0]);
    let client = Client::connect(&list, &Options::default()).await.unwrap();
    let repo = repository(STORAGE, "r.git");

    for _ in 0..10 {
        assert!(client.ref_exists(&repo, "refs/heads/main").await.unwrap());
    }
    assert_eq!(
        (count(&a, REF_EXISTS, "OK"), count(&b, REF_EXISTS, "OK")),
        (5, 5)
    );

    // One call hangs on whichever server it reaches; the next 10 all go to the other one.
    let f = "f".repeat(40);
    let hang = repository(STORAGE, "hang.git");
    let stuck = client.commit_is_ancestor(&hang, &f, &f);
    let rest = async {
        wait_until("the hanging call to start", || {
            a.deps().rpcs.in_flight().len() + b.deps().rpcs.in_flight().len() == 1
        })
        .await;
        let busy_is_a = a.deps().rpcs.in_flight().len() == 1;
        for _ in 0..10 {
            assert!(client.ref_exists(&repo, "refs/heads/main").await.unwrap());
        }
        busy_is_a
    };
    let busy_is_a = tokio::select! {
        r = stuck => panic!("hanging call returned {r:?}"),
        busy = rest => busy,
    };
    let (busy, idle) = if busy_is_a { (&a, &b) } else { (&b, &a) };
    assert_eq!(count(busy, REF_EXISTS, "OK"), 5);
    assert_eq!(count(idle, REF_EXISTS, "OK"), 15);
    a.stop(Duration::from_secs(1)).await;
    b.stop(Duration::from_secs(1)).await;
}

/// A server refusing with RESOURCE_EXHAUSTED: a read-only call is retried (with back-off)
/// and lands on the other server; with retries off, the refusal comes straight back.
#[tokio::test]
async fn read_only_calls_are_retried_after_refusal() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let limit = |c: &mut Config| {
        c.concurrency = vec![ConcurrencyConfig {
            rpc: IS_ANCESTOR.into(),
            max_concurrency: 1,
            max_queue_size: 1,
            max_queue_wait: Some(Duration::from_millis(1)),
            adaptive: false,
            min_limit: None,
            max_limit: None,
        }]
    };
    let a = serving(a_dir.path(), limit).await;
    let b = serving(b_dir.path(), |_| {}).await;
    // "r.git" hangs on A and is a normal repository on B.
    hanging_repo(&a_dir.path().join("storage"), "r.git");
    let fx = Fixture::create(&b_dir.path().join("storage/r.git"), "sha1");
    let head = fx.rev_parse("main");
    let repo = repository(STORAGE, "r.git");

    // Fill A's only slot for r.git with a call that hangs.
    let channel = gitrpc_client::connect(&a.addresses()[0], &Options::default())
        .await
        .unwrap();
    let mut direct = CommitServiceClient::new(channel);
    let stuck = direct.commit_is_ancestor(CommitIsAncestorRequest {
        repository: Some(repo.clone()),
        ancestor_id: "f".repeat(40),
        child_id: "f".repeat(40),
    });
    let limiter = a.deps().limits.by_rpc[IS_ANCESTOR].clone();
    let checks = async {
        wait_until("A's slot to fill", || limiter.snapshot().running == 1).await;
        let list = format!("{},{}", a.addresses()[0], b.addresses()[0]);
        let client = Client::connect(&list, &Options::default()).await.unwrap();
        for _ in 0..6 {
            assert!(client
                .commit_is_ancestor(&repo, &head, &head)
                .await
                .unwrap());
        }
        let refused_on_a = limiter.snapshot().dropped_max_time;
        assert!(refused_on_a >= 1, "some calls met A first");
        assert_eq!(count(&b, IS_ANCESTOR, "OK"), 6);

        // Only A, retries off: the refusal comes back.
        let only_a = Client::connect(
            &a.addresses()[0],
            &Options {
                retries: 0,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let e = only_a
            .commit_is_ancestor(&repo, &head, &head)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert_eq!(limiter.snapshot().dropped_max_time, refused_on_a + 1);
        // Only A, 3 retries: 4 attempts, all refused, then the refusal.
        only_a.set_retries(3);
        let started = std::time::Instant::now();
        let e = only_a
            .commit_is_ancestor(&repo, &head, &head)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert_eq!(limiter.snapshot().dropped_max_time, refused_on_a + 5);
        // Back-off: at least 20 + 40 + 80 ms (each the fixed half of its step).
        assert!(started.elapsed() >= Duration::from_millis(140));
    };
    tokio::select! {
        r = stuck => panic!("hanging call returned {r:?}"),
        () = checks => {}
    }
    a.stop(Duration::from_secs(1)).await;
    b.stop(Duration::from_secs(1)).await;
}

/// A dead address in the list: connecting still works; a read-only call that meets it is
/// retried on the live server, a mutating one is not (UNAVAILABLE comes back), and the dead
/// server is passed over afterwards.
#[tokio::test]
async fn dead_server_in_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let live = serving(dir.path(), |_| {}).await;
    Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let dead = format!("unix:{}", dir.path().join("dead.sock").display());
    let list = format!("{dead},{}", live.addresses()[0]);
    let repo = repository(STORAGE, "r.git");

    // The first pick is the first address: the dead one.
    let client = Client::connect(&list, &Options::default()).await.unwrap();
    assert!(client.ref_exists(&repo, "refs/heads/main").await.unwrap());

    let client = Client::connect(&list, &Options::default()).await.unwrap();
    let e = client
        .create_repository(&repository(STORAGE, "new.git"), "main")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(!dir.path().join("storage/new.git").exists());
    client
        .create_repository(&repository(STORAGE, "new.git"), "main")
        .await
        .unwrap();
    assert!(client
        .repository_exists(&repository(STORAGE, "new.git"))
        .await
        .unwrap());

    // Every address dead: connect fails.
    let e = Client::connect(&format!("{dead},{dead}"), &Options::default())
        .await
        .err()
        .unwrap();
    assert!(e.detailed().contains("dead.sock"), "{}", e.detailed());
    live.stop(Duration::from_secs(1)).await;
}

use std::time::{Duration, Instant};

use futures::StreamExt;
use gitrpc_client::{client::repository, Client, Options};
use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::{CommitIsAncestorRequest, SshUploadPackRequest};
use gitrpc_server::config::{ConcurrencyConfig, PackObjectsLimiting};
use gitrpc_server::limiter::{Limiter, Snapshot};
use gitrpc_server::limits::limit_error;
use tokio::task::JoinHandle;
use tonic::{Code, Status};

use crate::common::*;

const IS_ANCESTOR: &str = "/gitaly.CommitService/CommitIsAncestor";

fn limit(rpc: &str, max: usize, queue: usize, wait: Option<Duration>) -> ConcurrencyConfig {
    ConcurrencyConfig {
        rpc: rpc.into(),
        max_concurrency: max,
        max_queue_size: queue,
        max_queue_wait: wait,
        adaptive: false,
        min_limit: None,
        max_limit: None,
    }
}

async fn wait_for(limiter: &Limiter, what: &str, ok: impl Fn(&Snapshot) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = limiter.snapshot();
        if ok(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_limited(r: &Result<bool, Status>, message: &str) {
    let status = r.as_ref().expect_err("call should be refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let detail = limit_error(status).expect("LimitError detail");
    assert_eq!(detail.error_message, message);
    assert_eq!(detail.retry_after.map(|d| d.seconds), Some(0));
}

/// Ten calls at a limit of 2 with a queue of 3, on a repository where git blocks: exactly 2
/// run, 3 wait, 5 are refused at once with RESOURCE_EXHAUSTED + LimitError. Another
/// repository is not held up by that queue; a freed slot goes to the oldest waiter.
#[tokio::test]
async fn overload_is_admitted_queued_and_refused_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |c| {
        c.concurrency = vec![limit(IS_ANCESTOR, 2, 3, None)]
    })
    .await;
    hanging_repo(&dir.path().join("storage"), "hang.git");
    let fx = Fixture::create(&dir.path().join("storage/ok.git"), "sha1");
    let limiter = server.deps().limits.by_rpc[IS_ANCESTOR].clone();
    let client = Client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    let channel = gitrpc_client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    // A spawned CommitIsAncestor on hang.git (generated client: its futures are Send).
    let spawn_call = |ancestor: String| {
        let mut c = CommitServiceClient::new(channel.clone());
        tokio::spawn(async move {
            let req = CommitIsAncestorRequest {
                repository: Some(repository(STORAGE, "hang.git")),
                ancestor_id: ancestor,
                child_id: "f".repeat(40),
            };
            c.commit_is_ancestor(req)
                .await
                .map(|r| r.into_inner().value)
        })
    };

    // One call at a time, so we know which ones run and which wait.
    let mut calls: Vec<(String, JoinHandle<Result<bool, Status>>)> = Vec::new();
    for i in 0..5 {
        let ancestor = format!("{:x}", i + 1).repeat(40);
        calls.push((ancestor.clone(), spawn_call(ancestor)));
        wait_for(&limiter, "call to be admitted or queued", |s| {
            s.running + s.queued == i + 1
        })
        .await;
    }
    let started = Instant::now();
    let refused: Vec<_> = futures::future::join_all((0..5).map(|_| spawn_call("9".repeat(40))))
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusals were not immediate"
    );
    for r in &refused {
        assert_limited(r, "maximum queue size reached");
    }
    let s = limiter.snapshot();
    assert_eq!(
        (
            s.limit,
            s.running,
            s.queued,
            s.admitted,
            s.dropped_max_size,
            s.dropped_max_time
        ),
        (2, 2, 3, 2, 5, 0)
    );
    // Only the two admitted calls started git.
    let running: Vec<bool> = calls
        .iter()
        .map(|(a, _)| !git_processes(dir.path(), a).is_empty())
        .collect();
    assert_eq!(running, [true, true, false, false, false]);

    // Other repositories have their own slots.
    let head = fx.rev_parse("main");
    let ok = client
        .commit_is_ancestor(&repository(STORAGE, "ok.git"), &head, &head)
        .await;
    assert!(ok.unwrap());

    // Cancel the first running call: its git dies and the oldest waiter (call 2) runs.
    // (admitted: the two, the ok.git call, and now the waiter.)
    let (a0, t0) = calls.remove(0);
    t0.abort();
    wait_for(&limiter, "a waiter to take the freed slot", |s| {
        s.running == 2 && s.queued == 2 && s.admitted == 4
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !git_processes(dir.path(), &a0).is_empty()
        || git_processes(dir.path(), &calls[1].0).is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "slot did not move to the oldest waiter"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(git_processes(dir.path(), &calls[2].0).is_empty());

    for (_, t) in &calls {
        t.abort();
    }
    wait_for(&limiter, "everything released", |s| {
        s.running == 0 && s.queued == 0
    })
    .await;
    server.stop(Duration::from_secs(1)).await;
}

/// A call that waits `max_queue_wait` without a slot is refused, in-process too.
#[tokio::test]
async fn queue_wait_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let wait = Duration::from_millis(200);
    let server = serving(&dir, |c| {
        c.concurrency = vec![limit(IS_ANCESTOR, 1, 5, Some(wait))]
    })
    .await;
    hanging_repo(&dir.path().join("storage"), "hang.git");
    let limiter = server.deps().limits.by_rpc[IS_ANCESTOR].clone();
    let client = Client::from_service(server.in_process(), None);
    client.set_retries(0); // this test counts refusals
    let hang = repository(STORAGE, "hang.git");
    let (one, two, three, f) = (
        "1".repeat(40),
        "2".repeat(40),
        "3".repeat(40),
        "f".repeat(40),
    );
    let running = client.commit_is_ancestor(&hang, &one, &f);
    let queued = async {
        wait_for(&limiter, "the first call to run", |s| s.running == 1).await;
        let started = Instant::now();
        let (a, b) = tokio::join!(
            client.commit_is_ancestor(&hang, &two, &f),
            client.commit_is_ancestor(&hang, &three, &f),
        );
        (a, b, started.elapsed())
    };
    let (a, b, took) = tokio::select! {
        r = running => panic!("the call on the hanging repository returned: {r:?}"),
        out = queued => out,
    };
    assert!(took >= wait && took < Duration::from_secs(5), "{took:?}");
    assert_limited(&a, "maximum time in concurrency queue reached");
    assert_limited(&b, "maximum time in concurrency queue reached");
    let s = limiter.snapshot();
    // The running call was dropped by select!: cancelled, its slot freed.
    assert_eq!((s.queued, s.dropped_max_time, s.admitted), (0, 2, 1));
    wait_for(&limiter, "release", |s| s.running == 0).await;
    server.stop(Duration::from_secs(1)).await;
}

fn pkt(line: &str) -> Vec<u8> {
    format!("{:04x}{line}", line.len() + 4).into_bytes()
}

/// Read an upload-pack session's output until `needle` shows up in it.
async fn read_until(
    out: &mut tonic::Streaming<gitrpc_proto::gitaly::SshUploadPackResponse>,
    needle: &str,
) -> Result<(), Status> {
    let mut seen = Vec::new();
    while let Some(m) = out.next().await.transpose()? {
        seen.extend_from_slice(&m.stdout);
        if String::from_utf8_lossy(&seen).contains(needle) {
            return Ok(());
        }
    }
    panic!("session ended without {needle:?}");
}

/// `[pack_objects_limiting]`: the slot is taken when a session asks for a pack (a protocol
/// v2 `command=fetch`), not when it opens; sessions asking beyond the limit queue, then are
/// refused.
#[tokio::test]
async fn pack_generation_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(&dir, |c| {
        c.pack_objects_limiting = Some(PackObjectsLimiting {
            max_concurrency: 1,
            max_queue_length: 1,
            max_queue_wait: None,
            key: Default::default(),
        })
    })
    .await;
    let head = Fixture::create(&dir.path().join("storage/r.git"), "sha1").rev_parse("HEAD");
    let limiter = server.deps().limits.pack_objects.clone().unwrap();
    let channel = gitrpc_client::connect(&server.addresses()[0], &Options::default())
        .await
        .unwrap();
    // A v2 session that fetches without `done` and with a have the server lacks: upload-pack
    // answers with acknowledgments only and waits for the next round, holding its slot until
    // we close our side (drop `tx`).
    let fetch = [
        pkt("command=fetch\n"),
        b"0001".to_vec(),
        pkt(&format!("want {head}\n")),
        pkt(&format!("have {}\n", "1".repeat(40))),
        b"0000".to_vec(),
    ]
    .concat();
    let open_session = || {
        let mut ssh = SshServiceClient::new(channel.clone());
        let fetch = fetch.clone();
        async move {
            let (tx, rx) = futures::channel::mpsc::unbounded();
            tx.unbounded_send(SshUploadPackRequest {
                repository: Some(repository(STORAGE, "r.git")),
                git_protocol: "version=2".into(),
                ..Default::default()
            })
            .unwrap();
            let mut out = ssh.ssh_upload_pack(rx).await?.into_inner();
            // Opening takes no slot: the capability advertisement comes at once.
            read_until(&mut out, "fetch").await?;
            tx.unbounded_send(SshUploadPackRequest {
                stdin: fetch,
                ..Default::default()
            })
            .unwrap();
            read_until(&mut out, "acknowledgments").await?;
            Ok::<_, Status>((tx, out))
        }
    };
    let first = open_session().await.unwrap();
    let queued = tokio::spawn(open_session());
    wait_for(&limiter, "the second session to queue", |s| s.queued == 1).await;
    let refused = open_session().await.map(|_| true);
    assert_limited(&refused, "maximum queue size reached");
    let s = limiter.snapshot();
    assert_eq!(
        (s.running, s.queued, s.admitted, s.dropped_max_size),
        (1, 1, 1, 1)
    );
    // Ending the first session hands its slot to the queued one, which then fetches.
    let (tx, mut out) = first;
    drop(tx);
    while out.next().await.transpose().unwrap().is_some() {}
    let second = tokio::time::timeout(Duration::from_secs(10), queued)
        .await
        .expect("queued session admitted")
        .unwrap()
        .unwrap();
    assert_eq!(limiter.snapshot().admitted, 2);
    drop(second);
    wait_for(&limiter, "release", |s| s.running == 0).await;
    server.stop(Duration::from_secs(1)).await;
}

/// `adaptive = true`: the limit backs off multiplicatively while the pressure files report
/// pressure, down to `min_limit`, and climbs back by one per interval up to `max_limit`.
#[tokio::test]
async fn adaptive_limit_follows_pressure() {
    let dir = tempfile::tempdir().unwrap();
    let psi = dir.path().join("psi");
    std::fs::create_dir_all(&psi).unwrap();
    let write = |cpu: f64| {
        std::fs::write(
            psi.join("cpu"),
            format!("some avg10={cpu:.2} avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
        )
        .unwrap();
        std::fs::write(
            psi.join("memory"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        .unwrap();
    };
    write(90.0);
    let server = serving(&dir, |c| {
        let mut l = limit(IS_ANCESTOR, 8, 0, None);
        l.adaptive = true;
        l.min_limit = Some(2);
        l.max_limit = Some(10);
        c.concurrency = vec![l];
        c.adaptive_limiting.interval = Duration::from_millis(50);
        c.adaptive_limiting.pressure_dir = Some(psi.clone());
    })
    .await;
    let limiter = server.deps().limits.by_rpc[IS_ANCESTOR].clone();
    assert_eq!(limiter.limit(), 8);
    // Under pressure: 8 → 4 → 2, and no lower.
    let mut seen = vec![8];
    let deadline = Instant::now() + Duration::from_secs(10);
    while limiter.limit() != 2 {
        assert!(
            Instant::now() < deadline,
            "limit stayed at {}",
            limiter.limit()
        );
        if seen.last() != Some(&limiter.limit()) {
            seen.push(limiter.limit());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen.push(2);
    assert_eq!(seen, [8, 4, 2]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(limiter.limit(), 2);
    // Pressure gone: +1 per interval up to max_limit.
    write(1.0);
    wait_for(&limiter, "the limit to climb to max_limit", |s| {
        s.limit == 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(limiter.limit(), 10);
    server.stop(Duration::from_secs(1)).await;
}

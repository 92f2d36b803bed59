//! See main.rs and `exhaustion.rs`. Item 6: connections are capped and time out.

use std::io::Write;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tonic::Code;

use super::{eventually, exists, stdin, upload_pack};
use crate::harness::*;

/// Item 6. At `[connections] max` (20 idle connections) the next client waits in the listen
/// backlog while the daemon stays idle (no accept loop spinning); it gets in as soon as one
/// connection closes. `/metrics` shows the open connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_makes_clients_wait_without_spinning() {
    let mut d = Daemon::start("prometheus_listen_addr = \"127.0.0.1:0\"\n[connections]\nmax = 20");
    let _w = d.seed("a.git");
    assert!(exists(d.channel().await, &d).await.unwrap());
    eventually("the warm-up connection to close", || {
        d.metric("gitrpc_connections_open") == 0.0
    });
    let base = d.baseline();
    let mut idle: Vec<_> = (0..20)
        .map(|_| {
            let mut s = d.raw_connect();
            s.write_all(&h2_preface()).unwrap();
            s
        })
        .collect();
    eventually("20 open connections", || {
        d.metric("gitrpc_connections_open") == 20.0
    });
    assert_eq!(d.metric("gitrpc_connections_max"), 20.0);
    let address = d.address();
    let call = |wait: u64| {
        let address = address.clone();
        let d = &d;
        async move {
            tokio::time::timeout(Duration::from_secs(wait), async {
                let ch = gitrpc_client::connect(&address, &Default::default()).await;
                exists(
                    ch.map_err(|e| tonic::Status::unavailable(e.to_string()))?,
                    d,
                )
                .await
            })
            .await
        }
    };
    let cpu = d.cpu_seconds();
    let waited = call(2).await;
    assert!(waited.is_err(), "a 21st client was served: {waited:?}");
    let used = d.cpu_seconds() - cpu;
    assert!(
        used < 0.3,
        "daemon used {used:.2} s of CPU in 2 s at the cap"
    );
    drop(idle.pop());
    let served = call(10).await;
    assert!(matches!(served, Ok(Ok(true))), "{served:?}");
    drop(idle);
    d.assert_healthy(&base, 64 * 1024);
}

/// Item 6. Out of file descriptors (`RLIMIT_NOFILE` 64, cap set above it): accepts fail with
/// EMFILE and the daemon pauses between tries instead of spinning; once clients go, it
/// serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_fds_does_not_spin_the_accept_loop() {
    let mut d = Daemon::start_with_nofile("[connections]\nmax = 1000", 64, 64);
    let _w = d.seed("a.git");
    assert!(exists(d.channel().await, &d).await.unwrap());
    let base = d.baseline();
    let conns: Vec<_> = (0..100)
        .map(|_| {
            let mut s = d.raw_connect();
            s.write_all(&h2_preface()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let cpu = d.cpu_seconds();
    std::thread::sleep(Duration::from_millis(1500));
    let used = d.cpu_seconds() - cpu;
    assert!(
        used < 0.3,
        "daemon used {used:.2} s of CPU in 1.5 s out of fds"
    );
    assert!(d.log().contains("accept failed; pausing"), "{}", d.log());
    drop(conns);
    let served = tokio::time::timeout(Duration::from_secs(10), async {
        exists(d.channel().await, &d).await
    })
    .await;
    assert!(matches!(served, Ok(Ok(true))), "{served:?}");
    d.assert_healthy(&base, 64 * 1024);
}

/// Item 6. gitrpcd raises its soft open-file limit to the hard limit at start.
#[test]
fn open_file_limit_is_raised_to_the_hard_limit() {
    let d = Daemon::start_with_nofile("", 256, 4096);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let soft: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(soft, ["4096", "4096"], "{line}");
}

/// Item 6. A connection that sends nothing (or a few bytes, then nothing) is closed after
/// `handshake_timeout`; one that completed its preface but has no call is closed after
/// `idle_timeout`; a connection with a call in flight is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed() {
    let mut d = Daemon::start(
        "prometheus_listen_addr = \"127.0.0.1:0\"\n\
         [connections]\nhandshake_timeout = \"1s\"\nidle_timeout = \"2s\"",
    );
    let _w = d.seed("a.git");
    let channel = d.channel().await;
    assert!(exists(channel.clone(), &d).await.unwrap());
    let base = d.baseline();
    let opened = Instant::now();
    let mut silent = d.raw_connect();
    let mut partial = d.raw_connect();
    partial.write_all(b"PRI *").unwrap();
    let mut idle = d.raw_connect();
    idle.write_all(&h2_preface()).unwrap();
    let within = Duration::from_secs(10);
    closed_within(&mut silent, within).expect("silent connection left open");
    let t = opened.elapsed();
    assert!(t >= Duration::from_millis(800), "closed early: {t:?}");
    closed_within(&mut partial, within).expect("half-sent preface left open");
    closed_within(&mut idle, within).expect("idle connection left open");
    let t = opened.elapsed();
    assert!(t >= Duration::from_millis(1800), "closed early: {t:?}");
    assert_eq!(
        d.metric("gitrpc_connections_closed_total{reason=\"handshake_timeout\"}"),
        2.0
    );
    // A session open for longer than idle_timeout keeps its connection.
    let channel = d.channel().await;
    let (tx, mut out) = upload_pack(channel.clone(), &d, "a.git", "").await;
    out.next().await.unwrap().unwrap(); // the ref advertisement
    tokio::time::sleep(Duration::from_secs(4)).await;
    tx.unbounded_send(stdin(b"0000".to_vec())).unwrap();
    let mut exit = None;
    while let Some(m) = out.next().await {
        if let Some(e) = m.unwrap().exit_status {
            exit = Some(e.value);
        }
    }
    assert_eq!(exit, Some(0));
    // Then idle, it is closed; the client reconnects on its next call.
    eventually("the client's idle connection to close", || {
        d.metric("gitrpc_connections_open") == 0.0
    });
    let again = match exists(channel.clone(), &d).await {
        Err(s) if s.code() == Code::Unavailable => exists(channel, &d).await,
        r => r,
    };
    assert!(again.unwrap());
    d.assert_healthy(&base, 64 * 1024);
}

/// Item 6. HTTP/2 keepalive: a peer that opened a call and then stopped answering (no PING
/// acknowledgements) is disconnected after `keepalive_interval` + `keepalive_timeout`,
/// although a call is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresponsive_peer_is_dropped_by_keepalive() {
    let mut d =
        Daemon::start("[connections]\nkeepalive_interval = \"1s\"\nkeepalive_timeout = \"1s\"");
    let _w = d.seed("a.git");
    assert!(exists(d.channel().await, &d).await.unwrap());
    let base = d.baseline();
    let mut s = d.raw_connect();
    s.write_all(&h2_preface()).unwrap();
    s.write_all(&h2_call_headers("/gitaly.RefService/RefExists"))
        .unwrap();
    // Never write again: no PING is acknowledged (and the call never gets its message).
    let t = closed_within(&mut s, Duration::from_secs(15)).expect("unresponsive peer kept");
    assert!(t >= Duration::from_millis(1500), "closed early: {t:?}");
    d.assert_healthy(&base, 64 * 1024);
}

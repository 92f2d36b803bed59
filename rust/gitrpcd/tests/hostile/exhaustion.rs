//! See main.rs. Resource exhaustion: oversized messages, connection floods and idle
//! connections, idle transport sessions and pack slots, a slowloris on the monitor, the
//! spool's server-wide cap. Limits are set small so each case is quick; every group ends with
//! the daemon's health check.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::{
    RefExistsRequest, RepositoryExistsRequest, SshUploadPackRequest, SshUploadPackResponse,
};
use tonic::transport::Channel;
use tonic::Code;

use crate::harness::*;

/// Item 6: the connection cap, descriptors, handshake, idle and keepalive deadlines.
mod connections;

const MIB: usize = 1024 * 1024;

pub(super) async fn exists(channel: Channel, d: &Daemon) -> Result<bool, tonic::Status> {
    RepositoryServiceClient::new(channel)
        .repository_exists(RepositoryExistsRequest {
            repository: Some(d.repo("a.git")),
        })
        .await
        .map(|r| r.into_inner().exists)
}

/// Wait (up to 10 s) for `ok`.
pub(super) fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An upload-pack session over SSHService: the first message sent; `tx` sends stdin.
pub(super) async fn upload_pack(
    channel: Channel,
    d: &Daemon,
    rel: &str,
    protocol: &str,
) -> (
    futures::channel::mpsc::UnboundedSender<SshUploadPackRequest>,
    tonic::Streaming<SshUploadPackResponse>,
) {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    tx.unbounded_send(SshUploadPackRequest {
        repository: Some(d.repo(rel)),
        git_protocol: protocol.into(),
        ..Default::default()
    })
    .unwrap();
    let out = SshServiceClient::new(channel)
        .max_encoding_message_size(usize::MAX)
        .ssh_upload_pack(rx)
        .await
        .unwrap()
        .into_inner();
    (tx, out)
}

pub(super) fn stdin(data: Vec<u8>) -> SshUploadPackRequest {
    SshUploadPackRequest {
        stdin: data,
        ..Default::default()
    }
}

/// Item 5. A 200 MiB first message over the (default, 64 MiB) limit is refused from its
/// length prefix with gRPC's RESOURCE_EXHAUSTED, before any of it is buffered: the daemon's
/// peak RSS barely moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_first_message_is_refused_from_its_prefix() {
    let mut d = Daemon::start("");
    let _w = d.seed("a.git");
    let mut refs = RefServiceClient::new(d.channel().await).max_encoding_message_size(usize::MAX);
    let req = |r: Vec<u8>| RefExistsRequest {
        repository: Some(d.repo("a.git")),
        r#ref: r,
    };
    let found = refs.ref_exists(req(b"refs/heads/main".to_vec())).await;
    assert!(found.unwrap().into_inner().value);
    let base = d.baseline();
    let peak = d.peak_rss_kib();
    let status = refs
        .ref_exists(req(vec![b'a'; 200 * MIB]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("received message larger than max (")
            && status.message().ends_with(" vs. 67108864)"),
        "{status:?}"
    );
    let grown = d.peak_rss_kib() - peak;
    assert!(
        grown < 64 * 1024,
        "peak RSS grew {grown} KiB for a refused message"
    );
    // The channel still serves.
    let found = refs.ref_exists(req(b"refs/heads/main".to_vec())).await;
    assert!(found.unwrap().into_inner().value);
    d.assert_healthy(&base, 64 * 1024);
}

/// Item 5 with a configured limit (4 MiB): messages under it pass, over it are refused, and a
/// later message of a stream is bounded too (its session ends RESOURCE_EXHAUSTED, git killed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_message_bytes_bounds_every_message() {
    let mut d = Daemon::start("max_message_bytes = 4194304");
    let _w = d.seed("a.git");
    let channel = d.channel().await;
    let mut refs = RefServiceClient::new(channel.clone()).max_encoding_message_size(usize::MAX);
    let req = |r: Vec<u8>| RefExistsRequest {
        repository: Some(d.repo("a.git")),
        r#ref: r,
    };
    let base = d.baseline();
    let peak = d.peak_rss_kib();
    // Under the limit: an ordinary answer (the ref is invalid, not too big).
    let under = refs.ref_exists(req(vec![b'a'; 3 * MIB])).await;
    assert_ne!(
        under.map_err(|s| s.code()).err(),
        Some(Code::ResourceExhausted)
    );
    let over = refs.ref_exists(req(vec![b'a'; 5 * MIB])).await.unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    assert!(over.message().ends_with(" vs. 4194304)"), "{over:?}");
    // A 200 MiB second message of an upload-pack session.
    let (tx, mut out) = upload_pack(channel, &d, "a.git", "").await;
    tx.unbounded_send(stdin(vec![b'0'; 200 * MIB])).unwrap();
    let status = loop {
        match out.next().await {
            Some(Ok(_)) => continue,
            Some(Err(s)) => break s,
            None => panic!("session ended without an error"),
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let grown = d.peak_rss_kib() - peak;
    assert!(grown < 64 * 1024, "peak RSS grew {grown} KiB");
    drop(tx);
    d.assert_healthy(&base, 64 * 1024);
}

/// Run `git clone` through gitrpc-ssh; `None` if it is still running after `limit` (killed).
fn clone_through_ssh(d: &Daemon, rel: &str, extra: &[&str], limit: Duration) -> Option<bool> {
    let dest = d.dir.path().join(format!("clone-{}", extra.len()));
    let mut child = Command::new("git")
        .args(extra)
        .args([
            "clone",
            "-q",
            &format!("ssh://gitrpc.example/default/{rel}"),
        ])
        .arg(&dest)
        .env(
            "GIT_SSH_COMMAND",
            format!(
                "{} --address {}",
                env!("CARGO_BIN_EXE_gitrpc-ssh"),
                d.address()
            ),
        )
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s.success());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Item 9. With one pack slot, an upload-pack session that never sends its wants holds no
/// slot: real clones (protocol v0 and v2) get through. The idle session is ended after
/// `[transport] idle_timeout` with DEADLINE_EXCEEDED and its git killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_session_holds_no_pack_slot_and_times_out() {
    let d = Daemon::start(
        "[pack_objects_limiting]\nmax_concurrency = 1\n[transport]\nidle_timeout = \"3s\"",
    );
    let _w = d.seed("a.git");
    let channel = d.channel().await;
    assert!(exists(channel.clone(), &d).await.unwrap());
    let base = d.baseline();
    let opened = Instant::now();
    let (_tx, mut out) = upload_pack(channel, &d, "a.git", "").await;
    out.next().await.unwrap().unwrap(); // advertisement: upload-pack waits for wants now
    let d = std::sync::Arc::new(d);
    let cloned = {
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            let v0 = clone_through_ssh(&d, "a.git", &[], Duration::from_secs(20));
            let v2 = clone_through_ssh(
                &d,
                "a.git",
                &["-c", "protocol.version=2", "-c", "ssh.variant=ssh"],
                Duration::from_secs(20),
            );
            (v0, v2)
        })
    };
    assert_eq!(cloned.await.unwrap(), (Some(true), Some(true)));
    let status = loop {
        match out.next().await {
            Some(Ok(_)) => continue,
            Some(Err(s)) => break s,
            None => panic!("idle session ended without an error"),
        }
    };
    let lasted = opened.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        lasted >= Duration::from_millis(2500),
        "ended early: {lasted:?}"
    );
    let mut d = std::sync::Arc::into_inner(d).unwrap();
    d.assert_healthy(&base, 64 * 1024);
}

/// Item 10. A client sending its request one byte per 1.5 s doesn't hold up `/metrics`
/// (answered at once meanwhile), and is cut off by the request deadline (5 s).
#[test]
fn monitor_serves_beside_a_slowloris() {
    let mut d = Daemon::start("prometheus_listen_addr = \"127.0.0.1:0\"");
    let base = d.baseline();
    let addr = d.monitor_addr();
    let slow = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let start = Instant::now();
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut buf = [0u8; 64];
        for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" {
            if s.write_all(&[*b]).is_err() {
                return Some(start.elapsed());
            }
            // Waits 1.5 s for nothing, unless the server hangs up.
            match s.read(&mut buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                _ => return Some(start.elapsed()),
            }
        }
        None
    });
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let t = Instant::now();
        let body = d.monitor_get("/metrics");
        assert!(body.contains("gitrpc_connections_open"), "{body}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "/metrics took {:?}",
            t.elapsed()
        );
    }
    let cut = slow.join().unwrap().expect("slow client never cut off");
    assert!(
        cut >= Duration::from_secs(4) && cut < Duration::from_secs(9),
        "cut off after {cut:?}"
    );
    d.assert_healthy(&base, 64 * 1024);
}

/// Pseudo-random, incompressible bytes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The pack carried on side-band 1 of upload-pack's output (after the ref advertisement).
fn demux_pack(out: &[u8]) -> Vec<u8> {
    let mut pack = Vec::new();
    let mut i = 0;
    let mut advertised = false;
    while i + 4 <= out.len() {
        let len = usize::from_str_radix(std::str::from_utf8(&out[i..i + 4]).unwrap(), 16).unwrap();
        if len < 4 {
            advertised = true;
            i += 4;
            continue;
        }
        let payload = &out[i + 4..i + len];
        i += len;
        if !advertised {
            continue;
        }
        match payload[0] {
            1 => pack.extend_from_slice(&payload[1..]),
            2 => {}
            3 => panic!("{}", String::from_utf8_lossy(payload)),
            _ => assert!(payload.starts_with(b"NAK"), "{payload:?}"),
        }
    }
    pack
}

/// The spool's server-wide cap: three clones of a ~6 MiB pack that don't read keep at most
/// `[spool] max_bytes` (1 MiB) spooled — plus a chunk each — with their git waiting; once
/// they read, each gets its whole, valid pack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_max_bytes_bounds_clients_that_do_not_read() {
    let mut d = Daemon::start(
        "prometheus_listen_addr = \"127.0.0.1:0\"\n\
         [spool]\nthreshold = 262144\nmax_bytes = 1048576",
    );
    let w = d.seed("a.git");
    for i in 0..3 {
        std::fs::write(w.path().join(format!("blob{i}")), noise(2 * MIB, i + 1)).unwrap();
    }
    git_ok(w.path(), &["add", "."]);
    git_ok(w.path(), &["commit", "-qm", "noise"]);
    let bare = d.storage().join("a.git");
    git_ok(w.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    let head = git_ok(&bare, &["rev-parse", "main"]).trim().to_string();
    let channel = d.channel().await;
    assert!(exists(channel.clone(), &d).await.unwrap());
    let base = d.baseline();
    let request = [
        pkt(&format!(
            "want {head} side-band-64k ofs-delta no-progress\n"
        )),
        b"0000".to_vec(),
        pkt("done\n"),
    ]
    .concat();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let (tx, out) = upload_pack(channel.clone(), &d, "a.git", "").await;
        tx.unbounded_send(stdin(request.clone())).unwrap();
        sessions.push((tx, out));
    }
    let spooled = || {
        d.metric("gitrpc_spool_bytes{place=\"memory\"}")
            + d.metric("gitrpc_spool_bytes{place=\"disk\"}")
    };
    let cap = (MIB + 3 * 64 * 1024) as f64;
    let mut most: f64 = 0.0;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let now = spooled();
        assert!(now <= cap, "{now} bytes spooled, cap {cap}");
        most = most.max(now);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(most > 0.0, "nothing was spooled");
    assert!(
        !d.git_processes().is_empty(),
        "git should be waiting for its clients"
    );
    for (tx, mut out) in sessions {
        let mut stdout = Vec::new();
        let mut exit = None;
        while let Some(m) = out.next().await {
            let m = m.unwrap();
            stdout.extend_from_slice(&m.stdout);
            exit = m.exit_status.map(|e| e.value).or(exit);
        }
        drop(tx);
        assert_eq!(exit, Some(0));
        let verify = tempfile::tempdir().unwrap();
        git_ok(verify.path(), &["init", "-q", "--bare", "."]);
        let mut index = Command::new("git")
            .args(["index-pack", "--stdin"])
            .current_dir(verify.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        index
            .stdin
            .take()
            .unwrap()
            .write_all(&demux_pack(&stdout))
            .unwrap();
        assert!(index.wait().unwrap().success());
        git_ok(verify.path(), &["cat-file", "-e", &format!("{head}:blob2")]);
    }
    d.assert_healthy(&base, 64 * 1024);
}

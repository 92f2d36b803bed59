use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::clones::SIDE;
use crate::support::*;

/// One pack-objects slot and one SSHUploadPackWithSidechannel per repository: a leaked slot
/// makes the next fetch wait for ever.
const LIMITS: &str = "[pack_objects_limiting]\nmax_concurrency = 1\n\n[[concurrency]]\n\
    rpc = \"/gitaly.SSHService/SSHUploadPackWithSidechannel\"\nmax_per_repo = 1\n";

/// A backchannel session driven by hand: tonic on its first stream, and the streams the
/// server opens handed over as they come (unanswered).
struct Session {
    channel: Channel,
    inbound: mpsc::UnboundedReceiver<yamux::Stream>,
}

type Side = Compat<yamux::Stream>;

async fn session(socket: &Path) -> Session {
    let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
    s.write_all(b"backchannel").await.unwrap();
    let mut conn =
        yamux::Connection::new(s.compat(), yamux::Config::default(), yamux::Mode::Client);
    let first = std::future::poll_fn(|cx| conn.poll_new_outbound(cx))
        .await
        .unwrap();
    let (tx, inbound) = mpsc::unbounded_channel();
    tokio::spawn(std::future::poll_fn(move |cx| loop {
        match conn.poll_next_inbound(cx) {
            Poll::Ready(Some(Ok(s))) => {
                let _ = tx.send(s);
            }
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    }));
    let first = Arc::new(Mutex::new(Some(first.compat())));
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let s = first.lock().unwrap().take();
            async move {
                s.map(TokioIo::new)
                    .ok_or_else(|| std::io::Error::other("one connection per session"))
            }
        }))
        .await
        .unwrap();
    Session { channel, inbound }
}

impl Session {
    /// Start SSHUploadPackWithSidechannel (protocol v2) on `rel` with sidechannel `id`.
    fn call(
        &self,
        id: i64,
        rel: &str,
    ) -> tokio::task::JoinHandle<Result<SshUploadPackWithSidechannelResponse, Status>> {
        let mut req = tonic::Request::new(SshUploadPackWithSidechannelRequest {
            repository: Some(Repository {
                storage_name: "default".into(),
                relative_path: rel.into(),
                ..Default::default()
            }),
            git_protocol: "version=2".into(),
            ..Default::default()
        });
        req.metadata_mut()
            .insert("gitaly-sidechannel-id", id.to_string().parse().unwrap());
        let mut client = SshServiceClient::new(self.channel.clone());
        tokio::spawn(async move {
            client
                .ssh_upload_pack_with_sidechannel(req)
                .await
                .map(|r| r.into_inner())
        })
    }

    /// The next sidechannel the server opens, its hello read (and checked), not answered.
    async fn hello(&mut self, id: i64) -> Side {
        let mut s = tokio::time::timeout(Duration::from_secs(10), self.inbound.recv())
            .await
            .expect("a sidechannel within 10 s")
            .unwrap()
            .compat();
        let mut hello = [0u8; 19];
        s.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello[..11], b"sidechannel");
        assert_eq!(i64::from_be_bytes(hello[11..].try_into().unwrap()), id);
        s
    }

    /// The next sidechannel, answered `ok`.
    async fn open(&mut self, id: i64) -> Side {
        let mut s = self.hello(id).await;
        s.write_all(b"ok").await.unwrap();
        s.flush().await.unwrap();
        s
    }

    /// A whole v2 fetch of `oid` on `rel`: the output's size.
    async fn fetch(&mut self, id: i64, rel: &str, oid: &str) -> usize {
        let call = self.call(id, rel);
        let mut s = self.open(id).await;
        s.write_all(&framed(&v2_fetch(oid))).await.unwrap();
        s.write_all(b"0000").await.unwrap();
        s.flush().await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        call.await.unwrap().unwrap();
        out.len()
    }
}

fn pkt(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

/// git's side of a v2 SSH session asking for `oid`, then the end of the session.
fn v2_fetch(oid: &str) -> Vec<u8> {
    format!(
        "{}0001{}{}{}00000000",
        pkt("command=fetch\n"),
        pkt("no-progress\n"),
        pkt(&format!("want {oid}\n")),
        pkt("done\n")
    )
    .into_bytes()
}

/// Sidechannel framing (the data is small: one frame).
fn framed(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

async fn read_some(s: &mut Side, n: usize) {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.unwrap();
}

fn settled(server: &Server) {
    tokio::task::block_in_place(|| server.settled(Duration::from_secs(10)));
}

/// A server with [`LIMITS`], `r.git` seeded and `big.git` (30 MiB), warmed up by one fetch
/// of each; returns it with its health baseline and the two heads.
async fn limited_server() -> (Server, crate::harness::Baseline, String, String) {
    let server = Server::start(LIMITS);
    let _ = server.daemon.seed("r.git");
    big_repo(&server, "big.git", 30);
    let small = rev(&server.storage().join("r.git"), "main");
    let big = rev(&server.storage().join("big.git"), "main");
    let mut s = session(&server.daemon.socket).await;
    s.fetch(1, "r.git", &small).await;
    assert!(s.fetch(2, "big.git", &big).await > 30 << 20);
    let base = server.daemon.baseline();
    (server, base, small, big)
}

/// A client that never answers the sidechannel's hello, or never even reads it: the call
/// fails `UNAVAILABLE` after the 5 s handshake deadline, nothing is started, no slot is
/// held; the same session then fetches normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_never_answered() {
    let (mut server, base, small, _) = limited_server().await;
    let packs = server.started("upload-pack");
    let mut s = session(&server.daemon.socket).await;
    for (id, read_hello) in [(10, true), (11, false)] {
        let started = Instant::now();
        let call = s.call(id, "r.git");
        // Kept open, unanswered (or never even read) until the call ends.
        let _held = if read_hello {
            (Some(s.hello(id).await), None)
        } else {
            (None, s.inbound.recv().await)
        };
        let err = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("an answer within 30 s")
            .unwrap()
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(err.message().contains("sidechannel"), "{err:?}");
        assert!(
            started.elapsed() >= Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        settled(&server);
    }
    assert_eq!(server.started("upload-pack"), packs, "git was started");
    assert!(s.fetch(12, "r.git", &small).await > 0);
    assert_eq!(server.calls(SIDE, "UNAVAILABLE"), 2.0);
    tokio::task::block_in_place(|| server.assert_healthy(&base));
}

/// git exits (the v2 session ended) before the client's `0000`, which gitlab-shell only sends
/// once git closed its stdin, after the response: the server must not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_ends_without_the_clients_0000() {
    let (server, _, small, _) = limited_server().await;
    let mut s = session(&server.daemon.socket).await;
    let call = s.call(15, "r.git");
    let mut side = s.open(15).await;
    side.write_all(&framed(&v2_fetch(&small))).await.unwrap();
    side.flush().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), side.read_to_end(&mut out))
        .await
        .expect("the response ends within 30 s")
        .unwrap();
    assert!(!out.is_empty());
    call.await.unwrap().unwrap();
    settled(&server);
}

/// The client resets the sidechannel mid-pack (yamux RST) but keeps the call and the
/// session: the call ends `CANCELLED`, git is killed, both slots are freed (the next fetch
/// under the same limits completes). While it runs, the call shows on the diagnostics page
/// like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_pack_frees_the_slot() {
    let (mut server, base, _, big) = limited_server().await;
    let mut s = session(&server.daemon.socket).await;
    let call = s.call(20, "big.git");
    let mut side = s.open(20).await;
    side.write_all(&framed(&v2_fetch(&big))).await.unwrap();
    side.write_all(b"0000").await.unwrap();
    side.flush().await.unwrap();
    read_some(&mut side, 64 << 10).await;
    let diagnostics = tokio::task::block_in_place(|| server.get("/diagnostics"));
    assert!(
        diagnostics.contains("/gitaly.SSHService/SSHUploadPackWithSidechannel")
            && diagnostics.contains("big.git")
            && diagnostics.contains("upload-pack"),
        "{diagnostics}"
    );
    drop(side); // RST
    let err = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("an answer within 30 s")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::Cancelled, "{err:?}");
    settled(&server);
    assert!(s.fetch(21, "big.git", &big).await > 30 << 20);
    tokio::task::block_in_place(|| server.assert_healthy(&base));
}

/// The client ends its input, closes its side (FIN: a half-close) and stops reading, while
/// keeping the session: nothing fails the server's blocked write, so the call must notice
/// the stall and end `CANCELLED`, freeing the slots. Closing before `0000` is `CANCELLED` at
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_mid_pack_frees_the_slot() {
    let (mut server, base, _, big) = limited_server().await;
    let mut s = session(&server.daemon.socket).await;
    for (id, flush) in [(30, true), (31, false)] {
        let started = Instant::now();
        let call = s.call(id, "big.git");
        let mut side = s.open(id).await;
        side.write_all(&framed(&v2_fetch(&big))).await.unwrap();
        if flush {
            side.write_all(b"0000").await.unwrap();
            side.flush().await.unwrap();
            read_some(&mut side, 64 << 10).await;
        }
        side.shutdown().await.unwrap(); // FIN; `side` is kept and never read again
        let err = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("an answer within 30 s")
            .unwrap()
            .unwrap_err();
        assert_eq!(err.code(), Code::Cancelled, "{err:?}");
        if !flush {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
        }
        settled(&server);
        drop(side);
    }
    assert!(s.fetch(32, "big.git", &big).await > 30 << 20);
    tokio::task::block_in_place(|| server.assert_healthy(&base));
}

/// The unary call is cancelled by the client (HTTP/2 RST_STREAM) mid-pack while the
/// sidechannel stays open: git is killed and the slots freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_cancelled_mid_pack_frees_the_slot() {
    let (mut server, base, _, big) = limited_server().await;
    let mut s = session(&server.daemon.socket).await;
    let call = s.call(40, "big.git");
    let mut side = s.open(40).await;
    side.write_all(&framed(&v2_fetch(&big))).await.unwrap();
    side.write_all(b"0000").await.unwrap();
    side.flush().await.unwrap();
    read_some(&mut side, 64 << 10).await;
    call.abort();
    settled(&server);
    drop(side);
    assert!(s.fetch(41, "big.git", &big).await > 30 << 20);
    tokio::task::block_in_place(|| server.assert_healthy(&base));
}

/// Broken sidechannel framing is `INVALID_ARGUMENT`; the input ending (FIN) without its
/// `0000` while git waits for more is `CANCELLED`; git is gone either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_framing() {
    let (mut server, base, small, _) = limited_server().await;
    let mut s = session(&server.daemon.socket).await;
    let cases: [(&[u8], bool, Code); 4] = [
        (b"0001", false, Code::InvalidArgument),
        (b"zzzz", false, Code::InvalidArgument),
        (b"fff5aaaaaaaaaaaaaaaaaa", false, Code::InvalidArgument),
        (b"0014command=ls-ref", true, Code::Cancelled),
    ];
    for (i, (bytes, fin, code)) in cases.into_iter().enumerate() {
        let id = 50 + i as i64;
        let call = s.call(id, "r.git");
        let mut side = s.open(id).await;
        side.write_all(&framed(b"0014command=ls-refs\n"))
            .await
            .unwrap();
        side.write_all(bytes).await.unwrap();
        side.flush().await.unwrap();
        if fin {
            side.shutdown().await.unwrap();
        }
        let err = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("an answer within 30 s")
            .unwrap()
            .unwrap_err();
        assert_eq!(err.code(), code, "{bytes:?}: {err:?}");
        settled(&server);
    }
    assert!(s.fetch(60, "r.git", &small).await > 0);
    tokio::task::block_in_place(|| server.assert_healthy(&base));
}

/// Garbage after `backchannel` (not yamux), `backchannel` and then nothing, a short first
/// word: each connection is closed by the server in bounded time, and it goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_backchannel() {
    let (mut server, base, small, _) = limited_server().await;
    let socket = server.daemon.socket.clone();
    let closed_within = |first: &[u8], end: bool, limit: Duration| {
        let mut c = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        c.write_all(first).unwrap();
        if end {
            c.shutdown(std::net::Shutdown::Write).unwrap();
        }
        c.set_read_timeout(Some(limit + Duration::from_secs(5)))
            .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue, // a GoAway frame, say
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{first:?}: not closed: {e}"),
            }
        }
        assert!(
            started.elapsed() < limit,
            "{first:?}: {:?}",
            started.elapsed()
        );
    };
    tokio::task::block_in_place(|| {
        let mut garbage = b"backchannel".to_vec();
        garbage.extend([0xff; 1024]);
        closed_within(&garbage, false, Duration::from_secs(15));
        closed_within(b"backchannel", false, Duration::from_secs(25));
        closed_within(b"backc", true, Duration::from_secs(15));
        closed_within(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff",
            false,
            Duration::from_secs(15),
        );
    });
    let mut s = session(&server.daemon.socket).await;
    assert!(s.fetch(70, "r.git", &small).await > 0);
    tokio::task::block_in_place(|| server.assert_healthy(&base));
}

/// gitlab-shell's process killed mid-pack (the Go client in SSH mode, fed a v2 fetch on its
/// stdin): the connection dies with it; git is killed and the slots freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_client_mid_pack_frees_the_slot() {
    let (mut server, base, _, big) = limited_server().await;
    tokio::task::block_in_place(|| {
        let mut child = std::process::Command::new(go_client())
            .args([
                "ssh",
                "gitlab.example",
                "git-upload-pack '/default/big.git'",
            ])
            .env("GITALY_ADDRESS", &server.unix)
            .env("GIT_PROTOCOL", "version=2")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&v2_fetch(&big)).unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        stdout.read_exact(&mut buf).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        server.settled(Duration::from_secs(10));
    });
    let mut s = session(&server.daemon.socket).await;
    assert!(s.fetch(80, "big.git", &big).await > 30 << 20);
    tokio::task::block_in_place(|| server.assert_healthy(&base));
}

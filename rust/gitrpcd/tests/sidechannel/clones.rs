use std::path::Path;

use crate::harness::git_ok;
use crate::support::*;

pub const SIDE: &str = "/gitaly.SSHService/SSHUploadPackWithSidechannel";
pub const STREAM: &str = "/gitaly.SSHService/SSHUploadPack";

/// The clone shapes every client is tried with: (name, git arguments before the URL).
pub fn shapes() -> Vec<(&'static str, Vec<&'static str>)> {
    let v0 = ["-c", "protocol.version=0"];
    let v2 = ["-c", "protocol.version=2"];
    vec![
        ("v0", [&v0[..], &["clone", "-q"]].concat()),
        ("v2", [&v2[..], &["clone", "-q"]].concat()),
        (
            "shallow-v0",
            [&v0[..], &["clone", "-q", "--depth", "1"]].concat(),
        ),
        (
            "shallow-v2",
            [&v2[..], &["clone", "-q", "--depth", "1"]].concat(),
        ),
        (
            "partial-v2",
            [&v2[..], &["clone", "-q", "--filter=blob:none"]].concat(),
        ),
    ]
}

/// Clone `url` in every shape into `into/<shape>` with `env`; check each clone; then add a
/// commit on the server and fetch it into the v0 and v2 clones. Returns the git commands run.
pub fn clone_every_shape(
    server: &Server,
    url: &str,
    into: &Path,
    env: &[(&str, &str)],
    work: &Path,
    bare: &Path,
) -> usize {
    let want = rev(bare, "main");
    let mut runs = 0;
    for (name, args) in shapes() {
        let mut args = args.clone();
        args.extend(["-c", "fetch.fsckObjects=true"]);
        args.extend([url, name]);
        git_env_ok(into, &args, env);
        runs += 1;
        let clone = into.join(name);
        assert_eq!(rev(&clone, "HEAD"), want, "{name}");
        if name.starts_with("shallow") {
            let n = git_ok(&clone, &["rev-list", "--count", "HEAD"]);
            assert_eq!(n.trim(), "1", "{name}");
        }
        if name.starts_with("partial") {
            let promisor = git_ok(&clone, &["config", "remote.origin.promisor"]);
            assert_eq!(promisor.trim(), "true");
            runs += 1; // the checkout fetched the blobs it needed
        } else {
            git_ok(&clone, &["fsck", "--no-progress"]);
        }
    }
    let _ = server;
    static COMMITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COMMITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    commit_to(work, bare, &format!("more-{n}"));
    let new = rev(bare, "main");
    for name in ["v0", "v2"] {
        let clone = into.join(name);
        let v = if name == "v0" { "0" } else { "2" };
        git_env_ok(
            &clone,
            &[
                "-c",
                &format!("protocol.version={v}"),
                "fetch",
                "-q",
                "origin",
            ],
            env,
        );
        runs += 1;
        assert_eq!(rev(&clone, "origin/main"), new, "{name}");
    }
    runs
}

/// `gitrpc-ssh` fetches through SSHUploadPackWithSidechannel on the unix socket and over
/// TLS, in every shape; SSHUploadPack is not called.
#[test]
fn gitrpc_ssh_clones_in_every_shape() {
    let server = Server::start("");
    let work = server.daemon.seed("g/r.git");
    let bare = server.storage().join("g/r.git");
    for address in [server.unix.clone(), server.tls.clone()] {
        let t = tempfile::tempdir().unwrap();
        let before = server.calls(SIDE, "OK");
        let ssh = server.gitrpc_ssh(&address, "");
        let runs = clone_every_shape(
            &server,
            "ssh://gitrpc.example/default/g/r.git",
            t.path(),
            &[("GIT_SSH_COMMAND", &ssh)],
            work.path(),
            &bare,
        );
        let grew = server.calls(SIDE, "OK") - before;
        assert!(
            grew >= runs as f64,
            "{address}: {grew} sidechannel calls for {runs} git runs"
        );
    }
    assert_eq!(server.calls(STREAM, "OK"), 0.0);
}

/// `--no-sidechannel` keeps to the streaming RPC.
#[test]
fn no_sidechannel_flag_uses_the_streaming_rpc() {
    let server = Server::start("");
    let _work = server.daemon.seed("r.git");
    let t = tempfile::tempdir().unwrap();
    let ssh = server.gitrpc_ssh(&server.unix, "--no-sidechannel");
    git_env_ok(
        t.path(),
        &["clone", "-q", "ssh://x/default/r.git", "c"],
        &[("GIT_SSH_COMMAND", &ssh)],
    );
    assert_eq!(server.calls(STREAM, "OK"), 1.0);
    assert_eq!(server.calls(SIDE, "OK"), 0.0);
}

/// A bad request is refused before any git starts, and gitrpc-ssh reports it (no fallback).
#[test]
fn refused_requests_start_nothing() {
    let server = Server::start("");
    let _work = server.daemon.seed("r.git");
    let t = tempfile::tempdir().unwrap();
    let ssh = server.gitrpc_ssh(&server.unix, "");
    let out = git(
        t.path(),
        &["clone", "-q", "ssh://x/default/missing.git", "c"],
        &[("GIT_SSH_COMMAND", &ssh)],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NotFound"), "{stderr}");
    assert_eq!(server.calls(SIDE, "NOT_FOUND"), 1.0);
    assert_eq!(server.calls(STREAM, "NOT_FOUND"), 0.0, "no fallback");
    assert_eq!(server.started("upload-pack"), 0.0);
}

/// Against a server without the listener mux (plain gRPC only, as before this step),
/// gitrpc-ssh falls back to SSHUploadPack and the clone works.
#[test]
fn gitrpc_ssh_falls_back_without_the_mux() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plain.sock");
    let storage = dir.path().join("repos");
    let config = gitrpc_server::Config::from_toml(&format!(
        "[[storage]]\nname = \"default\"\npath = \"{}\"\n",
        storage.display()
    ))
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(async { tokio::net::UnixListener::bind(&socket) })
        .unwrap();
    let deps = rt.block_on(gitrpc_server::Deps::new(config)).unwrap();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_routes(gitrpc_server::routes(deps))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );
    let bare = storage.join("r.git");
    std::fs::create_dir_all(&bare).unwrap();
    git_ok(&bare, &["init", "--bare", "-q", "-b", "main"]);
    let work = tempfile::tempdir().unwrap();
    git_ok(work.path(), &["init", "-q", "-b", "main"]);
    commit_to(work.path(), &bare, "one");
    let t = tempfile::tempdir().unwrap();
    let ssh = format!(
        "{} --address unix:{}",
        env!("CARGO_BIN_EXE_gitrpc-ssh"),
        socket.display()
    );
    for (name, v) in [("v0", "0"), ("v2", "2")] {
        git_env_ok(
            t.path(),
            &[
                "-c",
                &format!("protocol.version={v}"),
                "clone",
                "-q",
                "ssh://x/default/r.git",
                name,
            ],
            &[("GIT_SSH_COMMAND", &ssh)],
        );
        assert_eq!(rev(&t.path().join(name), "HEAD"), rev(&bare, "main"));
    }
}

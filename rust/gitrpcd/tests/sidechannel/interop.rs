use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::clones::{clone_every_shape, SIDE};
use crate::harness::git_ok;
use crate::support::*;

const POST: &str = "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel";

fn go_env<'a>(server: &'a Server, address: &'a str) -> Vec<(&'a str, String)> {
    vec![
        ("GITALY_ADDRESS", address.to_string()),
        ("GITALY_TLS_CA", server.ca.display().to_string()),
    ]
}

/// The Go client as a GIT_SSH_COMMAND (gitlab-shell's path), on the unix socket and over
/// TLS, in every shape.
#[test]
fn go_ssh_clones_in_every_shape() {
    let server = Server::start("");
    let work = server.daemon.seed("g/r.git");
    let bare = server.storage().join("g/r.git");
    let ssh = format!("{} ssh", go_client().display());
    for address in [server.unix.clone(), server.tls.clone()] {
        let t = tempfile::tempdir().unwrap();
        let before = server.calls(SIDE, "OK");
        let env = go_env(&server, &address);
        let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.push(("GIT_SSH_COMMAND", &ssh));
        let runs = clone_every_shape(
            &server,
            "ssh://gitlab.example/default/g/r.git",
            t.path(),
            &env,
            work.path(),
            &bare,
        );
        let grew = server.calls(SIDE, "OK") - before;
        assert!(
            grew >= runs as f64,
            "{address}: {grew} calls for {runs} git runs"
        );
    }
}

/// The Go client as a smart-HTTP front end (workhorse's path: info/refs streamed, the POST
/// through PostUploadPackWithSidechannel), on the unix socket and over TLS, in every shape.
#[test]
fn go_http_clones_in_every_shape() {
    let server = Server::start("");
    let work = server.daemon.seed("g/r.git");
    let bare = server.storage().join("g/r.git");
    for address in [server.unix.clone(), server.tls.clone()] {
        let front = HttpFront::start(&server, &address);
        let t = tempfile::tempdir().unwrap();
        let before = server.calls(POST, "OK");
        let url = format!("{}/default/g/r.git", front.url);
        let runs = clone_every_shape(&server, &url, t.path(), &[], work.path(), &bare);
        let grew = server.calls(POST, "OK") - before;
        assert!(
            grew >= runs as f64,
            "{address}: {grew} calls for {runs} git runs"
        );
    }
}

/// `gitaly-sidechannel-client http`, killed when dropped.
struct HttpFront {
    child: Child,
    url: String,
}

impl HttpFront {
    fn start(server: &Server, address: &str) -> HttpFront {
        let mut child = Command::new(go_client())
            .args(["http", "127.0.0.1:0"])
            .envs(go_env(server, address))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http://"), "{line:?}");
        HttpFront {
            child,
            url: line.trim().to_string(),
        }
    }
}

impl Drop for HttpFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A protocol v2 fetch by the Go client, SSH and HTTP variants, over the unix socket, TCP
/// and TLS: the pack passes `git index-pack --strict` and holds the commit; the statistics
/// the Go client decoded from the response count one want.
#[test]
fn go_fetch_pack_passes_index_pack() {
    let server = Server::start("listen_addr = \"127.0.0.1:0\"");
    let _work = server.daemon.seed("r.git");
    let oid = rev(&server.storage().join("r.git"), "main");
    let tcp = strip(&server.daemon.log(), "address=tcp://").expect("a TCP address");
    let stats = tempfile::NamedTempFile::new().unwrap();
    for address in [
        server.unix.clone(),
        format!("tcp://{tcp}"),
        server.tls.clone(),
    ] {
        for variant in ["ssh", "http"] {
            let out = Command::new(go_client())
                .args(["fetch", variant, "default/r.git", &oid])
                .envs(go_env(&server, &address))
                .env("GITALY_STATS", stats.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{variant} {address}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let t = tempfile::tempdir().unwrap();
            git_ok(t.path(), &["init", "-q", "--bare", "e.git"]);
            let repo = t.path().join("e.git");
            let mut index = Command::new("git")
                .args(["index-pack", "--stdin", "--strict"])
                .current_dir(&repo)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            index.stdin.take().unwrap().write_all(&out.stdout).unwrap();
            assert!(index.wait().unwrap().success(), "{variant} {address}");
            git_ok(&repo, &["cat-file", "-e", &oid]);
        }
    }
    let lines = std::fs::read_to_string(stats.path()).unwrap();
    assert_eq!(lines.lines().count(), 6);
    assert!(lines.lines().all(|l| l.contains("wants=1")), "{lines}");
}

/// A shallow clone through the Go client's SSH mode: the statistics it decoded from the
/// response name the depth and the capabilities git sent.
#[test]
fn go_client_sees_the_negotiation_statistics() {
    let server = Server::start("");
    let _work = server.daemon.seed("r.git");
    let stats = tempfile::NamedTempFile::new().unwrap();
    let t = tempfile::tempdir().unwrap();
    let ssh = format!("{} ssh", go_client().display());
    let stats_path = stats.path().display().to_string();
    let mut env = go_env(&server, &server.unix);
    env.push(("GITALY_STATS", stats_path));
    env.push(("GIT_SSH_COMMAND", ssh));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    git_env_ok(
        t.path(),
        &[
            "-c",
            "protocol.version=0",
            "clone",
            "-q",
            "--depth",
            "1",
            "ssh://x/default/r.git",
            "c",
        ],
        &env,
    );
    let line = std::fs::read_to_string(stats.path()).unwrap();
    assert!(line.contains("deepen=\"deepen 1\""), "{line}");
    assert!(line.contains("side-band-64k"), "{line}");
}

/// With `[auth] token` the Go client's own v2 token is accepted; without it the call is
/// refused before anything starts.
#[test]
fn go_client_with_auth_token() {
    let server = Server::start("[auth]\ntoken = \"secret\"");
    let _work = server.daemon.seed("r.git");
    let oid = rev(&server.storage().join("r.git"), "main");
    let fetch = |token: Option<&str>| {
        let mut c = Command::new(go_client());
        c.args(["fetch", "ssh", "default/r.git", &oid])
            .envs(go_env(&server, &server.unix));
        if let Some(t) = token {
            c.env("GITALY_TOKEN", t);
        }
        c.output().unwrap()
    };
    let out = fetch(None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    assert_eq!(server.started("upload-pack"), 0.0);
    let out = fetch(Some("secret"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"PACK"));
}

/// The first word of the log starting with `prefix`, without it.
fn strip(log: &str, prefix: &str) -> Option<String> {
    strip_ansi(log)
        .split_whitespace()
        .find_map(|w| w.strip_prefix(prefix).map(str::to_string))
}

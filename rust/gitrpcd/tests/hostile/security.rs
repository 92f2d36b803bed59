//! See main.rs. What a caller can make git do (config options, hooks, huge arguments:
//! `security/git.rs`) and which paths it can reach (the private directory, path spellings and
//! bounds, a removed storage, unknown methods: `security/paths.rs`). Helpers for both below.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::transport::Channel;
use tonic::Code;

use crate::harness::*;

mod git;
mod paths;

pub(super) const RSS_SLACK_KIB: u64 = 64 * 1024;

/// The harness itself: a daemon starts, serves, and passes its own health check.
#[tokio::test]
async fn harness_smoke() {
    let mut d = Daemon::start("");
    let _w = d.seed("a.git");
    let mut c = RepositoryServiceClient::new(d.channel().await);
    let exists = c
        .repository_exists(RepositoryExistsRequest {
            repository: Some(d.repo("a.git")),
        })
        .await
        .unwrap()
        .into_inner()
        .exists;
    assert!(exists);
    let base = d.baseline();
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

// ---- helpers ---------------------------------------------------------------------------

/// A daemon logging JSON lines, so the RPC log (which git each call ran) can be read.
/// Idle cat-file processes are reaped within a second, so health checks see no git.
pub(super) fn json_daemon(extra: &str) -> Daemon {
    Daemon::start(&format!(
        "[logging]\nformat = \"json\"\n[catfile]\nidle_ttl = 1\n{extra}"
    ))
}

/// A few calls, then the baseline.
pub(super) async fn warm_baseline(d: &Daemon, ch: &Channel) -> Baseline {
    let mut c = RepositoryServiceClient::new(ch.clone());
    for _ in 0..3 {
        let _ = c
            .repository_exists(RepositoryExistsRequest {
                repository: Some(d.repo("a.git")),
            })
            .await;
    }
    d.baseline()
}

pub(super) fn assert_refused(e: &tonic::Status, opt: &str) {
    assert_eq!(e.code(), Code::InvalidArgument, "{opt}: {e:?}");
    assert!(e.message().contains("git_config_options"), "{opt}: {e:?}");
    assert!(!e.message().contains("root:"), "{opt}: {e:?}");
}

/// `(method, code, git subcommands)` of the finished RPCs whose method contains `method`,
/// once there are at least `n` of them (the line is written as the response ends).
pub(super) fn wait_for_rpcs(d: &Daemon, method: &str, n: usize) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls: Vec<_> = d
            .log()
            .lines()
            .filter(|l| l.contains("\"finished rpc\""))
            .map(|l| {
                (
                    json_field(l, "grpc.method"),
                    json_field(l, "grpc.code"),
                    json_field(l, "git"),
                )
            })
            .filter(|(m, _, _)| m.contains(method))
            .collect();
        if calls.len() >= n || Instant::now() > deadline {
            assert_eq!(calls.len(), n, "{calls:?}");
            return calls;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json_field(line: &str, name: &str) -> String {
    let key = format!("\"{name}\":\"");
    let Some(i) = line.find(&key) else {
        return String::new();
    };
    let rest = &line[i + key.len()..];
    rest[..rest.find('"').unwrap_or(rest.len())].to_string()
}

pub(super) fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

/// `git pack-objects --revs --stdout` of `revs` (one per line) in `cwd`.
pub(super) fn pack_objects(cwd: &Path, revs: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(["pack-objects", "--revs", "--stdout", "-q"])
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(revs.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// One pkt-line.
pub(super) fn pkt(line: &str) -> Vec<u8> {
    format!("{:04x}{line}", line.len() + 4).into_bytes()
}

pub(super) async fn collect<T>(resp: tonic::Response<tonic::Streaming<T>>) -> Vec<T> {
    let mut s = resp.into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        out.push(m);
    }
    out
}

pub(super) fn ssh_url(rel: &str) -> String {
    format!("ssh://gitrpc/{STORAGE}/{rel}")
}

/// Run the test's git with `gitrpc-ssh` as its ssh, talking to `d`.
pub(super) fn ssh_git(d: &Daemon, cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .env(
            "GIT_SSH_COMMAND",
            format!(
                "{} --address {}",
                env!("CARGO_BIN_EXE_gitrpc-ssh"),
                d.address()
            ),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

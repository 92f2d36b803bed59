//! Clone, fetch, push, ls-remote and archive with the real git CLI through `gitrpc-ssh` and
//! the real daemon; the spool and cancellation, observed on real processes.

use super::support::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A server-side repository with two commits on main.
fn seed(d: &Daemon, rel: &str) -> tempfile::TempDir {
    let bare = d.storage().join(rel);
    std::fs::create_dir_all(&bare).unwrap();
    d.ok(&bare, &["init", "--bare", "-q", "-b", "main"]);
    let work = tempfile::tempdir().unwrap();
    d.ok(work.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(work.path().join("README.md"), "one\n").unwrap();
    d.ok(work.path(), &["add", "."]);
    d.ok(work.path(), &["commit", "-qm", "one"]);
    std::fs::write(work.path().join("README.md"), "one\ntwo\n").unwrap();
    d.ok(work.path(), &["commit", "-qam", "two"]);
    d.ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    work
}

/// Incompressible bytes (xorshift64), so packs are as big as the data.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn fsck(d: &Daemon, repo: &Path) {
    d.ok(repo, &["fsck", "--strict", "--no-progress"]);
}

fn head(d: &Daemon, repo: &Path, rev: &str) -> String {
    d.ok(repo, &["rev-parse", rev]).trim().to_string()
}

#[test]
fn clones_in_every_shape() {
    let d = Daemon::start("");
    let _w = seed(&d, "g/r.git");
    let server = d.storage().join("g/r.git");
    let want = head(&d, &server, "main");
    let t = tempfile::tempdir().unwrap();
    let url = d.url("g/r.git");
    for (name, extra) in [
        ("v0", vec!["-c", "protocol.version=0"]),
        (
            "v2",
            vec!["-c", "protocol.version=2", "-c", "ssh.variant=ssh"],
        ),
    ] {
        let mut args = extra.clone();
        args.extend(["clone", "-q", &url, name]);
        d.ok(t.path(), &args);
        assert_eq!(head(&d, &t.path().join(name), "HEAD"), want, "{name}");
        fsck(&d, &t.path().join(name));
    }
    // v2 really was negotiated: trace the packet exchange.
    let out = d
        .git_cmd(
            t.path(),
            &[
                "-c",
                "protocol.version=2",
                "-c",
                "ssh.variant=ssh",
                "ls-remote",
                &url,
            ],
            "",
        )
        .env("GIT_TRACE_PACKET", "1")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("version 2"),
        "not v2"
    );

    d.ok(t.path(), &["clone", "-q", "--mirror", &url, "mirror.git"]);
    assert_eq!(head(&d, &t.path().join("mirror.git"), "main"), want);
    fsck(&d, &t.path().join("mirror.git"));

    d.ok(t.path(), &["clone", "-q", "--depth", "1", &url, "shallow"]);
    assert_eq!(
        d.ok(&t.path().join("shallow"), &["rev-list", "--count", "HEAD"])
            .trim(),
        "1"
    );

    d.ok(
        t.path(),
        &["clone", "-q", "--filter=blob:none", &url, "partial"],
    );
    let partial = t.path().join("partial");
    assert_eq!(
        d.ok(&partial, &["config", "remote.origin.promisor"]).trim(),
        "true"
    );
    assert_eq!(
        std::fs::read_to_string(partial.join("README.md")).unwrap(),
        "one\ntwo\n"
    );
    fsck(&d, &server);

    let ls = d.ok(t.path(), &["ls-remote", &url]);
    assert!(ls.contains(&format!("{want}\trefs/heads/main")), "{ls}");
    // The scp form: host:STORAGE/path.
    let ls = d.ok(t.path(), &["ls-remote", "gitrpc.example:default/g/r.git"]);
    assert!(ls.contains(&format!("{want}\trefs/heads/main")), "{ls}");

    // Archive through SSHUploadArchive.
    let out = d.git(
        t.path(),
        &[
            "archive",
            "--format=tar",
            &format!("--remote={url}"),
            "main",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.windows(9).any(|w| w == b"README.md"));
}

#[test]
fn fetch_and_push() {
    let d = Daemon::start("");
    let _w = seed(&d, "g/r.git");
    let server = d.storage().join("g/r.git");
    let url = d.url("g/r.git");
    let t = tempfile::tempdir().unwrap();
    d.ok(t.path(), &["clone", "-q", &url, "a"]);
    d.ok(t.path(), &["clone", "-q", &url, "b"]);
    let a = t.path().join("a");
    let b = t.path().join("b");

    // Update main, push, fetch from the other clone.
    std::fs::write(a.join("new.txt"), "new\n").unwrap();
    d.ok(&a, &["add", "."]);
    d.ok(&a, &["commit", "-qm", "three"]);
    d.ok(&a, &["push", "-q", "origin", "main"]);
    assert_eq!(head(&d, &server, "main"), head(&d, &a, "HEAD"));
    d.ok(&b, &["fetch", "-q", "origin"]);
    assert_eq!(head(&d, &b, "origin/main"), head(&d, &a, "HEAD"));
    fsck(&d, &server);

    // New branch, then delete it.
    d.ok(&a, &["push", "-q", "origin", "HEAD:refs/heads/topic"]);
    assert_eq!(head(&d, &server, "topic"), head(&d, &a, "HEAD"));
    d.ok(&a, &["push", "-q", "origin", ":topic"]);
    assert!(!d
        .git(&server, &["rev-parse", "--verify", "-q", "topic"])
        .status
        .success());

    // Non-fast-forward from the stale clone is rejected and changes nothing.
    let before = head(&d, &server, "main");
    std::fs::write(b.join("other.txt"), "x\n").unwrap();
    d.ok(&b, &["add", "."]);
    d.ok(&b, &["commit", "-qm", "diverged"]);
    let out = d.git(&b, &["push", "origin", "HEAD:main"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejected"));
    assert_eq!(head(&d, &server, "main"), before);

    // A 20 MB incompressible file.
    let big = random_bytes(20 * 1024 * 1024);
    std::fs::write(a.join("big.bin"), &big).unwrap();
    d.ok(&a, &["add", "."]);
    d.ok(&a, &["commit", "-qm", "big"]);
    d.ok(&a, &["push", "-q", "origin", "main"]);
    assert_eq!(
        head(&d, &server, "main:big.bin"),
        head(&d, &a, "HEAD:big.bin")
    );
    fsck(&d, &server);
    d.ok(&b, &["fetch", "-q", "origin"]);
    fsck(&d, &b);
}

/// `[auth] token`: gitrpc-ssh sends a v2 token made from `$GITRPC_TOKEN` or `--token-file`.
#[test]
fn ssh_helper_sends_the_auth_token() {
    let d = Daemon::start("[auth]\ntoken = \"s3cret\"");
    let _w = seed(&d, "g/r.git");
    let t = tempfile::tempdir().unwrap();
    let url = d.url("g/r.git");

    let out = d.git(t.path(), &["ls-remote", &url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Unauthenticated"), "{err}");

    let wrong = t.path().join("wrong-token");
    std::fs::write(&wrong, "nope\n").unwrap();
    let out = d
        .git_cmd(
            t.path(),
            &["ls-remote", &url],
            &format!("--token-file {}", wrong.display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PermissionDenied"), "{err}");

    let out = d
        .git_cmd(t.path(), &["clone", "-q", &url, "c"], "")
        .env("GITRPC_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        head(&d, &t.path().join("c"), "HEAD"),
        head(&d, &d.storage().join("g/r.git"), "main")
    );
}

#[test]
fn bad_requests_fail_fast_with_clear_errors() {
    let d = Daemon::start("");
    let _w = seed(&d, "g/r.git");
    let t = tempfile::tempdir().unwrap();
    for (url, needle) in [
        (d.url("g/missing.git"), "NotFound"),
        (d.url("../outside.git"), "InvalidArgument"),
        ("ssh://h/nostorage/g/r.git".to_string(), "InvalidArgument"),
    ] {
        let started = Instant::now();
        let out = d.git(t.path(), &["ls-remote", &url]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{url}: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "hung on {url}");
    }
}

#[test]
fn pre_receive_hook_decides() {
    let hookdir = tempfile::tempdir().unwrap();
    let hook = hookdir.path().join("check.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  case \"$ref\" in refs/heads/blocked*) echo \"policy: $ref is blocked\"; exit 1;; esac\ndone\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = Daemon::start(&format!("[hooks]\npre_receive = \"{}\"\n", hook.display()));
    let _w = seed(&d, "g/r.git");
    let server = d.storage().join("g/r.git");
    let t = tempfile::tempdir().unwrap();
    d.ok(t.path(), &["clone", "-q", &d.url("g/r.git"), "c"]);
    let c = t.path().join("c");
    let out = d.git(&c, &["push", "origin", "HEAD:refs/heads/blocked-1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("policy: refs/heads/blocked-1 is blocked")
    );
    assert!(!d
        .git(&server, &["rev-parse", "--verify", "-q", "blocked-1"])
        .status
        .success());
    d.ok(&c, &["push", "-q", "origin", "HEAD:refs/heads/allowed"]);
}

#[test]
fn pre_receive_closure_decides() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<gitrpc_server::HookEvent>>> = Arc::default();
    let record = seen.clone();
    let hook: gitrpc_server::HookFn = Arc::new(move |change| {
        record.lock().unwrap().push(change.clone());
        Box::pin(async move {
            match change
                .changes
                .iter()
                .find(|c| c.reference.starts_with("refs/heads/blocked"))
            {
                Some(c) => Err(format!("policy: {} is blocked\nsecond line", c.reference).into()),
                None => Ok(()),
            }
        })
    });
    let d = Daemon::embedded(gitrpc_server::Hooks {
        pre_receive: Some(hook),
        ..Default::default()
    });
    let _w = seed(&d, "g/r.git");
    let server = d.storage().join("g/r.git");
    d.ok(&server, &["config", "receive.advertisePushOptions", "true"]);
    let t = tempfile::tempdir().unwrap();
    d.ok(t.path(), &["clone", "-q", &d.url("g/r.git"), "c"]);
    let c = t.path().join("c");
    let out = d.git(&c, &["push", "origin", "HEAD:refs/heads/blocked-1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("policy: refs/heads/blocked-1 is blocked"),
        "{err}"
    );
    assert!(err.contains("second line"), "{err}");
    assert!(!d
        .git(&server, &["rev-parse", "--verify", "-q", "blocked-1"])
        .status
        .success());
    d.ok(
        &c,
        &[
            "push",
            "-q",
            "-o",
            "ci.skip",
            "origin",
            "HEAD:refs/heads/allowed",
        ],
    );
    let head = head(&d, &c, "HEAD");
    assert_eq!(self::head(&d, &server, "allowed"), head);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].storage(), "default");
    assert_eq!(seen[1].relative_path(), "g/r.git");
    assert_eq!(seen[1].push_options, vec!["ci.skip".to_string()]);
    assert_eq!(
        seen[1].changes,
        vec![gitrpc_server::RefChange {
            old_oid: "0".repeat(40),
            new_oid: head,
            reference: "refs/heads/allowed".into(),
        }]
    );
    // Every push's bridge (FIFOs, directory) is gone with the push.
    let runs = d.storage().join("+gitrpc/hooks-run");
    let left: Vec<_> = std::fs::read_dir(&runs)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// --- processes ------------------------------------------------------------------------

/// (pid, ppid, pgrp, cmdline) of every process.
fn processes() -> Vec<(i32, i32, i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if f.len() < 3 || f[0] == "Z" {
            continue;
        }
        let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .replace('\0', " ");
        out.push((
            pid,
            f[1].parse().unwrap_or(0),
            f[2].parse().unwrap_or(0),
            cmd,
        ));
    }
    out
}

/// The process group of the daemon's upload-pack child, once it exists.
fn upload_pack_group(daemon: i32) -> Option<i32> {
    processes()
        .into_iter()
        .find(|(_, ppid, _, cmd)| *ppid == daemon && cmd.contains("upload-pack"))
        .map(|(pid, _, _, _)| pid)
}

fn group_alive(pgrp: i32) -> Vec<String> {
    processes()
        .into_iter()
        .filter(|p| p.2 == pgrp)
        .map(|p| p.3)
        .collect()
}

fn big_repo(d: &Daemon, rel: &str, mb: u32) {
    let w = seed(d, rel);
    std::fs::write(
        w.path().join("big.bin"),
        random_bytes(mb as usize * 1024 * 1024),
    )
    .unwrap();
    d.ok(w.path(), &["add", "."]);
    d.ok(w.path(), &["commit", "-qm", "big"]);
    d.ok(
        w.path(),
        &[
            "push",
            "-q",
            d.storage().join(rel).to_str().unwrap(),
            "main",
        ],
    );
}

/// With the spool, git's side of a slow clone finishes long before the client does.
#[test]
fn spool_lets_git_finish_before_a_slow_client() {
    let d = Daemon::start("[spool]\nthreshold = 1048576\n");
    big_repo(&d, "big.git", 12);
    let t = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut clone = d
        .git_cmd(
            t.path(),
            &["clone", "-q", &d.url("big.git"), "c"],
            // 12 MB at 1.5 MB/s: the client needs ~8 s, leaving git (~0.5 s alone, 2.6 s
            // seen with CI sharing 2 cores with several builds) a wide margin.
            "--limit-rate 1500000",
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut group = None;
    let mut git_done = None;
    while clone.try_wait().unwrap().is_none() {
        match group {
            None => group = upload_pack_group(d.pid()),
            Some(g) if git_done.is_none() && group_alive(g).is_empty() => {
                git_done = Some(started.elapsed())
            }
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let client_done = started.elapsed();
    assert!(clone.wait().unwrap().success());
    let git_done = git_done.expect("upload-pack group outlived the slow client");
    assert!(
        git_done + Duration::from_secs(2) < client_done,
        "git finished at {git_done:?}, client at {client_done:?}"
    );
    let spool = d.storage().join("+gitrpc/spool");
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "spool files left behind"
    );
    fsck(&d, &t.path().join("c"));
}

/// A client that hangs up mid-transfer takes upload-pack and pack-objects with it.
#[test]
fn client_hangup_kills_git() {
    let d = Daemon::start("[spool]\nenabled = false\n");
    big_repo(&d, "big.git", 12);
    let t = tempfile::tempdir().unwrap();
    let mut clone = d
        .git_cmd(
            t.path(),
            &["clone", "-q", &d.url("big.git"), "c"],
            "--limit-rate 500000",
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let group = loop {
        if let Some(g) = upload_pack_group(d.pid()) {
            break g;
        }
        assert!(Instant::now() < deadline, "upload-pack never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(!group_alive(group).is_empty());
    // Kill the client side: git clone and its gitrpc-ssh.
    let ssh: Vec<i32> = processes()
        .into_iter()
        .filter(|p| p.3.contains("gitrpc-ssh") && p.3.contains(d.socket.to_str().unwrap()))
        .map(|p| p.0)
        .collect();
    let _ = clone.kill();
    for pid in ssh {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    let _ = clone.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = group_alive(group);
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "git survived the client: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The daemon is still healthy.
    d.ok(t.path(), &["ls-remote", &d.url("big.git")]);
}

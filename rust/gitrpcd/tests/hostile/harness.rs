//! A real `gitrpcd` on a temp socket, and the health checks every group ends with.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gitrpc_proto::gitaly::Repository;
use tonic::transport::Channel;

pub const STORAGE: &str = "default";

/// A `gitrpcd` child serving one storage (`<dir>/repos`) on `<dir>/d.sock`.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub socket: PathBuf,
    pub config: PathBuf,
    extra_config: String,
}

/// What the daemon looked like once warmed up; [`Daemon::assert_healthy`] compares with it.
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    pub rss_kib: u64,
    pub fds: usize,
}

impl Daemon {
    /// Start with `extra_config` (TOML placed before the `[[storage]]` table, so top-level
    /// keys and whole tables both work).
    pub fn start(extra_config: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let config = dir.path().join("config.toml");
        let mut d = Daemon {
            dir,
            child: None,
            socket,
            config,
            extra_config: extra_config.to_string(),
        };
        d.write_config();
        d.spawn();
        d
    }

    fn write_config(&self) {
        std::fs::write(
            &self.config,
            format!(
                "socket_path = \"{}\"\n{}\n[[storage]]\nname = \"{STORAGE}\"\npath = \"{}\"\n",
                self.socket.display(),
                self.extra_config,
                self.storage().display()
            ),
        )
        .unwrap();
    }

    /// Start (again) on the same directory and config.
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let log = std::fs::File::create(self.dir.path().join("gitrpcd.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gitrpcd"))
            .args(["--config", self.config.to_str().unwrap()])
            .stderr(log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.socket.exists() {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("gitrpcd exited at start ({s}): {}", self.log());
            }
            assert!(Instant::now() < deadline, "gitrpcd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the daemon (its children are not signalled by us) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The daemon's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gitrpcd.log")).unwrap_or_default()
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("repos")
    }

    pub fn address(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    pub async fn channel(&self) -> Channel {
        gitrpc_client::connect(&self.address(), &Default::default())
            .await
            .unwrap()
    }

    pub fn repo(&self, rel: &str) -> Repository {
        Repository {
            storage_name: STORAGE.into(),
            relative_path: rel.into(),
            ..Default::default()
        }
    }

    /// A bare repository at `rel` with two commits on `main`; returns the work tree it was
    /// pushed from.
    pub fn seed(&self, rel: &str) -> tempfile::TempDir {
        let bare = self.storage().join(rel);
        std::fs::create_dir_all(&bare).unwrap();
        git_ok(&bare, &["init", "--bare", "-q", "-b", "main"]);
        let work = tempfile::tempdir().unwrap();
        git_ok(work.path(), &["init", "-q", "-b", "main"]);
        std::fs::write(work.path().join("README.md"), "one\n").unwrap();
        git_ok(work.path(), &["add", "."]);
        git_ok(work.path(), &["commit", "-qm", "one"]);
        std::fs::write(work.path().join("README.md"), "one\ntwo\n").unwrap();
        git_ok(work.path(), &["commit", "-qam", "two"]);
        git_ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
        work
    }

    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmRSS:")
    }

    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Measure after a warm-up (the caller makes a few calls first).
    pub fn baseline(&self) -> Baseline {
        Baseline {
            rss_kib: self.rss_kib(),
            fds: self.fds(),
        }
    }

    /// Every live process descended from the daemon, plus any process whose command line
    /// names this test's directory (a git orphaned by a dead daemon is reparented to init).
    pub fn git_processes(&self) -> Vec<(i32, String)> {
        let me = self.child.as_ref().map(|c| c.id() as i32);
        let dir = self.dir.path().to_string_lossy().into_owned();
        let all = processes();
        let mut out = Vec::new();
        for (pid, _, _, cmd) in &all {
            if Some(*pid) == me {
                continue;
            }
            let descends = me.is_some_and(|m| descends_from(&all, *pid, m));
            if descends || cmd.contains(&dir) {
                out.push((*pid, cmd.clone()));
            }
        }
        out
    }

    /// Files and directories left in `<storage>/+gitrpc` other than the ones a running
    /// server keeps (its hooks directory, the spool directory and empty `tmp`).
    pub fn internal_leftovers(&self) -> Vec<String> {
        let internal = self.storage().join("+gitrpc");
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&internal) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let keep = name.starts_with("hooks-")
                || name == "spool"
                || name == "tmp"
                || name == "pack-objects-cache";
            if !keep {
                out.push(name);
                continue;
            }
            if name == "hooks-run" {
                // Per-session bridges must be gone (the pack-objects hook's own directory
                // stays while the server runs).
                for inner in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    let inner = inner.file_name().to_string_lossy().into_owned();
                    if !inner.starts_with("packhook-") {
                        out.push(format!("{name}/{inner}"));
                    }
                }
            } else if name == "pack-objects-cache" {
                // Only the running server's instance directory; what it holds is its cache.
                for inner in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    let inner = inner.file_name().to_string_lossy().into_owned();
                    if !inner.starts_with(&format!("cache-{}.", self.pid())) {
                        out.push(format!("{name}/{inner}"));
                    }
                }
            } else if !name.starts_with("hooks-") {
                for inner in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    out.push(format!("{name}/{}", inner.file_name().to_string_lossy()));
                }
            }
        }
        out
    }

    /// Alive; no git left; fds back near the baseline; RSS within `rss_slack_kib` of it;
    /// nothing of ours left behind. Waits up to 10 s for things to settle.
    pub fn assert_healthy(&mut self, base: &Baseline, rss_slack_kib: u64) {
        assert!(self.alive(), "gitrpcd died: {}", self.log());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let gits = self.git_processes();
            let fds = self.fds();
            let rss = self.rss_kib();
            let left = self.internal_leftovers();
            let ok = gits.is_empty()
                && fds <= base.fds + 8
                && rss <= base.rss_kib + rss_slack_kib
                && left.is_empty();
            if ok {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "gitrpcd unhealthy: git processes {gits:?}; fds {fds} (baseline {}); \
                     RSS {rss} KiB (baseline {} + {rss_slack_kib}); leftovers {left:?}",
                    base.fds, base.rss_kib
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        // Never leave a process of ours behind, even when a test failed.
        for (pid, _) in self.git_processes() {
            // SAFETY: kill(2) on a pid that named our temp dir.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Run git (the test's own, for fixtures and clients) with a clean config.
pub fn git(cwd: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn git_ok(cwd: &Path, args: &[&str]) -> String {
    let out = git(cwd, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn status_field(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (pid, ppid, pgrp, cmdline) of every live (non-zombie) process.
pub fn processes() -> Vec<(i32, i32, i32, String)> {
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

fn descends_from(all: &[(i32, i32, i32, String)], mut pid: i32, ancestor: i32) -> bool {
    for _ in 0..64 {
        let Some(p) = all.iter().find(|p| p.0 == pid) else {
            return false;
        };
        if p.1 == ancestor {
            return true;
        }
        if p.1 <= 1 {
            return false;
        }
        pid = p.1;
    }
    false
}

// --- exhaustion helpers

impl Daemon {
    /// Start with the daemon's open-file limit set to `soft:hard` (by `prlimit`, which execs
    /// the daemon in its own process, so [`Daemon::pid`] is the daemon's).
    pub fn start_with_nofile(extra_config: &str, soft: u64, hard: u64) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let config = dir.path().join("config.toml");
        let mut d = Daemon {
            dir,
            child: None,
            socket,
            config,
            extra_config: extra_config.to_string(),
        };
        d.write_config();
        let log = std::fs::File::create(d.dir.path().join("gitrpcd.log")).unwrap();
        let child = Command::new("prlimit")
            .arg(format!("--nofile={soft}:{hard}"))
            .arg(env!("CARGO_BIN_EXE_gitrpcd"))
            .args(["--config", d.config.to_str().unwrap()])
            .stderr(log)
            .stdout(Stdio::null())
            .spawn()
            .expect("prlimit (util-linux)");
        d.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.socket.exists() {
            if let Some(s) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("gitrpcd exited at start ({s}): {}", d.log());
            }
            assert!(Instant::now() < deadline, "gitrpcd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// Start with the command `wrap` makes from the daemon's binary and config path (e.g.
    /// `unshare -m sh -c '... && exec gitrpcd --config C'`); it must exec the daemon in its
    /// own process, so [`Daemon::pid`] is the daemon's.
    pub fn start_wrapped(
        extra_config: &str,
        wrap: impl FnOnce(&Path, &Path) -> Command,
    ) -> Result<Daemon, String> {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("d.sock");
        let config = dir.path().join("config.toml");
        let mut d = Daemon {
            dir,
            child: None,
            socket,
            config,
            extra_config: extra_config.to_string(),
        };
        d.write_config();
        let log = std::fs::File::create(d.dir.path().join("gitrpcd.log")).unwrap();
        let mut cmd = wrap(Path::new(env!("CARGO_BIN_EXE_gitrpcd")), &d.config);
        d.child = Some(
            cmd.stderr(log)
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.socket.exists() {
            if let Some(s) = d.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!("exited at start ({s}): {}", d.log()));
            }
            assert!(Instant::now() < deadline, "gitrpcd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(d)
    }

    /// Peak resident memory so far (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmHWM:")
    }

    /// User + system CPU time the daemon has used (all threads).
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    /// `host:port` of `/metrics` (start with `prometheus_listen_addr = "127.0.0.1:0"`), from
    /// the daemon's start-up log.
    pub fn monitor_addr(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(at) = log.find("http://") {
                let rest = &log[at + "http://".len()..];
                let end = rest.find('/').unwrap();
                return rest[..end].to_string();
            }
            assert!(Instant::now() < deadline, "no metrics address in {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path` on the monitor listener: the body.
    pub fn monitor_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.monitor_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    /// A sample of `/metrics`: `name` with its labels as printed (`m{a="b"}`).
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.monitor_get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    }

    /// A raw connection to the daemon's socket.
    pub fn raw_connect(&self) -> std::os::unix::net::UnixStream {
        std::os::unix::net::UnixStream::connect(&self.socket).unwrap()
    }
}

/// The HTTP/2 client preface followed by an empty SETTINGS frame: what a client sends first.
pub fn h2_preface() -> Vec<u8> {
    let mut v = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    v.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    v
}

/// A HEADERS frame opening a gRPC call to `path` on stream 1, its request body left open
/// (HPACK literals without indexing or Huffman coding).
pub fn h2_call_headers(path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (k, v) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        block.push(0);
        block.push(k.len() as u8);
        block.extend_from_slice(k.as_bytes());
        block.push(v.len() as u8);
        block.extend_from_slice(v.as_bytes());
    }
    let len = block.len() as u32;
    let mut frame = len.to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[1, 4, 0, 0, 0, 1]); // HEADERS, END_HEADERS, stream 1
    frame.extend(block);
    frame
}

/// Read and discard until the peer closes (EOF or an error); `Some(elapsed)` if it did
/// within `within`.
pub fn closed_within(s: &mut std::os::unix::net::UnixStream, within: Duration) -> Option<Duration> {
    use std::io::Read;
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.checked_sub(start.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                if start.elapsed() >= within {
                    return None;
                }
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
}

/// A pkt-line.
pub fn pkt(line: &str) -> Vec<u8> {
    format!("{:04x}{line}", line.len() + 4).into_bytes()
}

// --- faults helpers

impl Daemon {
    /// `GIT_SSH_COMMAND` that reaches this daemon through `gitrpc-ssh`.
    pub fn ssh_command(&self) -> String {
        format!(
            "{} --address {}",
            env!("CARGO_BIN_EXE_gitrpc-ssh"),
            self.address()
        )
    }

    /// The URL of `rel` through `gitrpc-ssh`.
    pub fn ssh_url(&self, rel: &str) -> String {
        format!("ssh://gitrpc.example/{STORAGE}/{rel}")
    }

    /// The test's own git as a client of this daemon (push, fetch through `gitrpc-ssh`).
    pub fn client_git(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.args(args)
            .current_dir(cwd)
            .env("GIT_SSH_COMMAND", self.ssh_command())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "C")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }

    /// Names of the `hooks-*` directories in the storage's private directory.
    pub fn hooks_dirs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.storage().join("+gitrpc"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("hooks-") && n != "hooks-run")
            .collect();
        v.sort();
        v
    }

    /// The daemon's git children whose command line contains `needle`.
    pub fn gits_running(&self, needle: &str) -> Vec<i32> {
        self.git_processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(needle))
            .map(|(pid, _)| pid)
            .collect()
    }
}

/// Send `sig` to `pid` (a negative pid: to that process group).
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2); no memory involved.
    unsafe { libc::kill(pid, sig) };
}

/// Is `pid` running (a zombie counts as dead)?
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rfind(')').is_some_and(|i| !s[i + 2..].starts_with('Z')),
        Err(_) => false,
    }
}

/// Set a file's or directory's modification time `age` into the past (what a leftover of a
/// crash long ago looks like).
pub fn backdate(path: &Path, age: Duration) {
    let when = std::time::SystemTime::now() - age;
    let f = std::fs::File::open(path).unwrap();
    f.set_times(
        std::fs::FileTimes::new()
            .set_modified(when)
            .set_accessed(when),
    )
    .unwrap_or_else(|e| panic!("backdate {}: {e}", path.display()));
}

/// Poll `f` every 50 ms until it holds; panic with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{git_ok, processes};
use crate::support::*;

pub const SIDE: &str = "/gitaly.SSHService/SSHUploadPackWithSidechannel";

/// A daemon with `[pack_objects_cache] enabled = true` and `cache` (more keys of that
/// table), then `tables` (other tables).
pub fn server(cache: &str, tables: &str) -> Server {
    Server::start(&format!(
        "[pack_objects_cache]\nenabled = true\n{cache}\n{tables}"
    ))
}

/// One series of `/metrics` (0 when absent).
pub fn metric(s: &Server, series: &str) -> f64 {
    sample(&s.metrics(), series)
}

pub fn lookups(s: &Server, result: &str) -> f64 {
    metric(
        s,
        &format!("gitrpc_pack_objects_cache_lookups_total{{result=\"{result}\"}}"),
    )
}

/// Requests answered from a finished entry: through upload-pack's hook (`hit`) or by the
/// fast path (`hit_direct`, which also counts joining a generation in flight).
pub fn hits(s: &Server) -> f64 {
    lookups(s, "hit") + lookups(s, "hit_direct")
}

/// Pack requests that reached the cache through upload-pack's pack-objects hook: each is
/// one upload-pack relaying a pack.
pub fn hook_lookups(s: &Server) -> f64 {
    lookups(s, "hit") + lookups(s, "coalesced") + lookups(s, "miss")
}

/// `pack-objects` processes the daemon's executor started.
pub fn pack_objects(s: &Server) -> f64 {
    s.started("pack-objects")
}

/// The cache's entries from `/diagnostics.json`.
pub fn entries(s: &Server) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&s.get("/diagnostics.json")).unwrap();
    v["pack_objects_cache"]
        .as_array()
        .cloned()
        .expect("the cache's entries on /diagnostics.json")
}

/// The entries of `repo` (`default/<rel>`).
pub fn entries_of(s: &Server, rel: &str) -> Vec<serde_json::Value> {
    let name = format!("{STORAGE_NAME}/{rel}");
    entries(s)
        .into_iter()
        .filter(|e| e["repository"] == name.as_str())
        .collect()
}

const STORAGE_NAME: &str = crate::harness::STORAGE;

/// How a client reaches the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `gitrpc-ssh --no-sidechannel`: SSHUploadPack.
    Stream,
    /// `gitrpc-ssh`: SSHUploadPackWithSidechannel.
    Sidechannel,
}

/// `git clone` (protocol v2) of `rel` into `into/<name>` through `path`, not yet started.
pub fn clone_cmd(s: &Server, path: Via, rel: &str, into: &Path, name: &str) -> Command {
    let extra = match path {
        Via::Stream => "--no-sidechannel",
        Via::Sidechannel => "",
    };
    let mut c = git_cmd(into);
    c.env("GIT_SSH_COMMAND", s.gitrpc_ssh(&s.unix, extra))
        .args([
            "-c",
            "ssh.variant=ssh",
            "-c",
            "protocol.version=2",
            "clone",
            "-q",
            "--bare",
            &format!("ssh://gitrpc.example/{STORAGE_NAME}/{rel}"),
            name,
        ]);
    c
}

/// git with a clean config and a fixed identity in `cwd` (stdout discarded, stderr kept).
pub fn git_cmd(cwd: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(cwd)
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

/// Start every command at once (each in its own process group), then wait for all.
pub fn run_all(cmds: Vec<Command>) -> Vec<Output> {
    use std::os::unix::process::CommandExt;
    let children: Vec<Child> = cmds
        .into_iter()
        .map(|mut c| c.process_group(0).spawn().unwrap())
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare clone that holds `want` as HEAD and passes `git fsck`.
pub fn assert_good_clone(clone: &Path, want: &str) {
    assert_eq!(rev(clone, "HEAD"), want, "{}", clone.display());
    git_ok(clone, &["fsck", "--no-progress", "--strict"]);
}

/// A repository at `rel` whose pack is `mb` MiB of incompressible data (one blob), packed
/// with a bitmap like a served repository.
pub fn packed_repo(s: &Server, rel: &str, mb: usize) -> PathBuf {
    big_repo(s, rel, mb);
    let bare = s.storage().join(rel);
    git_ok(&bare, &["repack", "-adq", "--write-bitmap-index"]);
    bare
}

/// A repository at `rel` with `files` blobs of 1 MiB random data each, all loose, and
/// config that makes pack-objects slow (level-9 compression, one thread): its generation
/// takes a while, so a test can stop it mid-way.
pub fn slow_repo(s: &Server, rel: &str, files: usize) -> PathBuf {
    let bare = s.storage().join(rel);
    std::fs::create_dir_all(&bare).unwrap();
    git_ok(&bare, &["init", "--bare", "-q", "-b", "main"]);
    for (k, v) in [
        ("pack.compression", "9"),
        ("pack.threads", "1"),
        ("pack.window", "250"),
    ] {
        git_ok(&bare, &["config", k, v]);
    }
    let work = tempfile::tempdir().unwrap();
    git_ok(work.path(), &["init", "-q", "-b", "main"]);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ rel.len() as u64;
    for f in 0..files {
        let mut data = Vec::with_capacity(1 << 20);
        while data.len() < 1 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        std::fs::write(work.path().join(format!("f{f}.bin")), &data).unwrap();
    }
    git_ok(work.path(), &["add", "."]);
    git_ok(work.path(), &["commit", "-qm", "random"]);
    // Fewer objects than receive.unpackLimit: they arrive loose.
    git_ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    bare
}

/// The generating `pack-objects` (a child of the daemon), once it runs; `None` after
/// `within`.
pub fn find_pack_objects(s: &Server, within: Duration) -> Option<i32> {
    let daemon = s.daemon.pid();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(p) = processes()
            .into_iter()
            .find(|(_, ppid, _, cmd)| *ppid == daemon && cmd.contains(" pack-objects "))
        {
            return Some(p.0);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// Descendants of `pid` whose command line contains `needle`.
pub fn descendants(pid: i32, needle: &str) -> Vec<i32> {
    let all = processes();
    let mut below = vec![pid];
    let mut out = Vec::new();
    while let Some(p) = below.pop() {
        for (child, ppid, _, cmd) in &all {
            if *ppid == p {
                below.push(*child);
                if cmd.contains(needle) {
                    out.push(*child);
                }
            }
        }
    }
    out
}

/// Poll `f` every 20 ms until it holds; panic with `what` (and the diagnostics) after
/// `within`.
pub fn until(s: &Server, what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting: {what}\n{}",
            s.get("/diagnostics")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Files in the cache's directories (every instance).
pub fn cache_files(s: &Server) -> Vec<PathBuf> {
    let root = s.storage().join("+gitrpc/pack-objects-cache");
    let mut out = Vec::new();
    for d in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

/// No per-session bridge left in `hooks-run`, no git left (but pooled cat-files), no cache
/// file other than those of kept entries.
pub fn assert_clean(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = s.daemon.internal_leftovers();
        let mut gits = s.daemon.git_processes();
        gits.retain(|(_, cmd)| !cmd.contains(" cat-file --batch"));
        if left.is_empty() && gits.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: {left:?}, git: {gits:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kept: Vec<String> = entries(s)
        .iter()
        .filter(|e| e["kept"] == true)
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    for f in cache_files(s) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            kept.iter().any(|k| name.starts_with(k.as_str())),
            "{name} is no kept entry's ({kept:?})"
        );
    }
}

/// `gitaly-sidechannel-client http`: a smart-HTTP front end (workhorse's path: the POST
/// through PostUploadPackWithSidechannel); killed when dropped.
pub struct HttpFront {
    child: Child,
    pub url: String,
}

impl HttpFront {
    pub fn start(s: &Server) -> HttpFront {
        let mut child = Command::new(go_client())
            .args(["http", "127.0.0.1:0"])
            .env("GITALY_ADDRESS", &s.unix)
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

    /// `git clone` (protocol v2) of `rel` into `into/<name>`, not yet started.
    pub fn clone_cmd(&self, rel: &str, into: &Path, name: &str) -> Command {
        let mut c = git_cmd(into);
        c.args([
            "-c",
            "protocol.version=2",
            "clone",
            "-q",
            "--bare",
            &format!("{}/{STORAGE_NAME}/{rel}", self.url),
            name,
        ]);
        c
    }
}

impl Drop for HttpFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Stop the generating pack-objects as soon as it runs: its pid, or `None` if it finished
/// before it could be stopped (the caller tries again with another repository).
pub fn stop_generation(s: &Server) -> Option<i32> {
    let pid = find_pack_objects(s, Duration::from_secs(60)).expect("a pack-objects started");
    crate::harness::signal(pid, libc::SIGSTOP);
    // The signal is delivered asynchronously: wait until the process shows as stopped (or
    // gone).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match state(pid) {
            Some('T' | 't') => return Some(pid),
            None | Some('Z' | 'X') => return None,
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    crate::harness::signal(pid, libc::SIGCONT);
    None
}

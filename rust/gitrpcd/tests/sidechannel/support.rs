//! A daemon serving a unix socket, a TLS port and `/metrics`; the Go client; git helpers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::harness::{git_ok, Baseline, Daemon};

/// A `gitrpcd` with `socket_path`, `tls_listen_addr` (certificate for localhost and
/// 127.0.0.1) and `prometheus_listen_addr`.
pub struct Server {
    pub daemon: Daemon,
    /// `unix:/…`
    pub unix: String,
    /// `tls://localhost:PORT`
    pub tls: String,
    pub monitor: String,
    pub ca: PathBuf,
    _certs: tempfile::TempDir,
}

impl Server {
    /// Start with `extra` config (top-level keys or whole tables).
    pub fn start(extra: &str) -> Server {
        let certs = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let ca = certs.path().join("cert.pem");
        let key = certs.path().join("key.pem");
        std::fs::write(&ca, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let config = format!(
            "tls_listen_addr = \"127.0.0.1:0\"\nprometheus_listen_addr = \"127.0.0.1:0\"\n{extra}\n\
             [tls]\ncertificate_path = \"{}\"\nkey_path = \"{}\"\n",
            ca.display(),
            key.display()
        );
        let daemon = Daemon::start(&config);
        let deadline = Instant::now() + Duration::from_secs(20);
        let (tls, monitor) = loop {
            let log = strip_ansi(&daemon.log());
            let tls = log
                .split_whitespace()
                .find_map(|w| w.strip_prefix("address=tls://"))
                .map(|a| a.replace("127.0.0.1", "localhost"));
            let monitor = log
                .split_whitespace()
                .find_map(|w| w.strip_prefix("url=")?.strip_suffix("/metrics"))
                .map(str::to_string);
            if let (Some(t), Some(m)) = (tls, monitor) {
                break (format!("tls://{t}"), m);
            }
            assert!(Instant::now() < deadline, "no addresses in the log: {log}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Server {
            unix: daemon.address(),
            daemon,
            tls,
            monitor,
            ca,
            _certs: certs,
        }
    }

    pub fn storage(&self) -> PathBuf {
        self.daemon.storage()
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics")
    }

    /// A page of the monitor (`/metrics`, `/diagnostics`, ...).
    pub fn get(&self, path: &str) -> String {
        let addr = self.monitor.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").unwrap().1.to_string()
    }

    /// Finished calls of `method` (`/gitaly.Service/Method`) with `code` (`OK`, ...).
    pub fn calls(&self, method: &str, code: &str) -> f64 {
        sample(
            &self.metrics(),
            &format!("gitrpc_rpc_requests_total{{method=\"{method}\",code=\"{code}\"}}"),
        )
    }

    /// git processes started, by subcommand.
    pub fn started(&self, subcommand: &str) -> f64 {
        sample(
            &self.metrics(),
            &format!("gitrpc_git_commands_started_total{{subcommand=\"{subcommand}\"}}"),
        )
    }

    /// Every `gitrpc_limit_in_flight` sample summed (there must be some).
    pub fn in_flight(&self) -> f64 {
        let text = self.metrics();
        let samples: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("gitrpc_limit_in_flight{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
            .collect();
        assert!(!samples.is_empty(), "no limiter in /metrics");
        samples.iter().sum()
    }

    /// Wait (up to `within`) until no slot is held and no git runs; panics otherwise.
    pub fn settled(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (held, gits) = (self.in_flight(), self.daemon.git_processes());
            if held == 0.0 && gits.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{held} slots held, git left: {gits:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Healthy after the group (see the harness).
    pub fn assert_healthy(&mut self, base: &Baseline) {
        self.daemon.assert_healthy(base, 64 * 1024);
    }

    /// `GIT_SSH_COMMAND` for `gitrpc-ssh` at `address` (`extra` flags appended).
    pub fn gitrpc_ssh(&self, address: &str, extra: &str) -> String {
        format!(
            "{} --address {address} --tls-ca-file {} {extra}",
            env!("CARGO_BIN_EXE_gitrpc-ssh"),
            self.ca.display()
        )
    }
}

/// The value of one series in a Prometheus text (0 when absent).
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The Go client (`interop/go/gitaly-sidechannel-client`), built once per test binary with
/// Debian's Go packages in GOPATH mode, offline (`script/setup` installs them).
pub fn go_client() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../interop/go/gitaly-sidechannel-client")
            .canonicalize()
            .unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("gitaly-sidechannel-client");
        // Several test binaries may build at once: build under a unique name, then rename.
        let tmp = dir.join(format!("gitaly-sidechannel-client.{}", std::process::id()));
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&tmp)
            .arg(".")
            .current_dir(&src)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOFLAGS", "")
            .env("GOPROXY", "off")
            .env("GOCACHE", dir.join("cache"))
            .output()
            .unwrap_or_else(|e| {
                panic!("go build: {e}: run script/setup (golang-go, golang-github-hashicorp-yamux-dev, golang-google-grpc-dev)")
            });
        assert!(
            out.status.success(),
            "go build failed: run script/setup (golang-go, golang-github-hashicorp-yamux-dev, golang-google-grpc-dev):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &bin).unwrap();
        bin
    })
}

/// git with a clean config and a fixed identity, `env` added.
pub fn git(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("git");
    c.args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// [`git`], which must succeed; its stdout.
pub fn git_env_ok(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = git(cwd, args, env);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn rev(repo: &Path, rev: &str) -> String {
    git_ok(repo, &["rev-parse", rev]).trim().to_string()
}

/// Add a commit to the server's repository `bare` (through the work tree it was seeded from).
pub fn commit_to(work: &Path, bare: &Path, message: &str) {
    std::fs::write(work.join(format!("{message}.txt")), message).unwrap();
    git_ok(work, &["add", "."]);
    git_ok(work, &["commit", "-qm", message]);
    git_ok(work, &["push", "-q", bare.to_str().unwrap(), "main"]);
}

/// A repository at `rel` with a `mb` MiB incompressible blob (a pack of about that size).
pub fn big_repo(server: &Server, rel: &str, mb: usize) {
    let bare = server.storage().join(rel);
    std::fs::create_dir_all(&bare).unwrap();
    git_ok(&bare, &["init", "--bare", "-q", "-b", "main"]);
    let work = tempfile::tempdir().unwrap();
    git_ok(work.path(), &["init", "-q", "-b", "main"]);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = Vec::with_capacity(mb << 20);
    while data.len() < mb << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(work.path().join("big.bin"), &data).unwrap();
    git_ok(work.path(), &["add", "."]);
    git_ok(work.path(), &["commit", "-qm", "big"]);
    git_ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
}

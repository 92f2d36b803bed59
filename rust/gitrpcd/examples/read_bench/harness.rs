//! What the history benchmarks (`llcft`, `blame`) share: git on PATH, a deterministic RNG,
//! repositories built once with `git fast-import` and cached under `target/bench-repos/`,
//! a `gitrpcd` child on a unix socket, and best-of-N timing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const STORAGE: &str = "default";

/// xorshift64*: deterministic, good enough to shape a history.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// In [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn find_git() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("git"))
                .find(|g| g.is_file())
        })
        .expect("git on PATH")
}

/// `git --git-dir <repo> <args>`'s stdout; panics if git fails.
pub fn git(git: &Path, repo: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(git)
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    out.stdout
}

/// Where cached repositories live: next to `--repo` (the `rpc_bench` repository, itself
/// under `target/bench-repos/`) if given, else `target/bench-repos/`.
pub fn cache_root(repo: Option<&Path>) -> PathBuf {
    if let Some(parent) = repo.and_then(Path::parent) {
        return parent.to_path_buf();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("bench-repos")
}

/// The bare repository `<cache>/<name>/repos/bench.git`, built by `write` (a fast-import
/// stream onto `refs/heads/main`) the first time; `--reachable` commit-graph without
/// changed-path filters, like `rpc_bench`'s repository.
pub fn cached_repo(cache: &Path, name: &str, write: impl FnOnce(&mut dyn Write)) -> PathBuf {
    let dir = cache.join(name);
    let repo = dir.join("repos").join("bench.git");
    if dir.join("done").exists() {
        return repo;
    }
    let gitbin = find_git();
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let tmp_repo = tmp.join("repos").join("bench.git");
    std::fs::create_dir_all(&tmp_repo).unwrap();
    let st = Command::new(&gitbin)
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&tmp_repo)
        .status()
        .unwrap();
    assert!(st.success());
    let mut fi = Command::new(&gitbin)
        .arg("--git-dir")
        .arg(&tmp_repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, fi.stdin.take().unwrap());
        write(&mut w);
        w.flush().unwrap();
    }
    assert!(fi.wait().unwrap().success(), "fast-import failed");
    git(&gitbin, &tmp_repo, &["repack", "-a", "-d", "-q"]);
    git(
        &gitbin,
        &tmp_repo,
        &["commit-graph", "write", "--reachable"],
    );
    std::fs::write(tmp.join("done"), "").unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).unwrap();
    repo
}

/// A `gitrpcd` child (the one of this example's profile) serving `storage` on a unix socket.
pub struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(storage: &Path) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("gitrpc-read-bench-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("d.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "socket_path = \"{}\"\n[[storage]]\nname = \"{STORAGE}\"\npath = \"{}\"\n",
                socket.display(),
                storage.display()
            ),
        )
        .unwrap();
        // target/<profile>/examples/read_bench → target/<profile>/gitrpcd
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().unwrap().parent().unwrap().join("gitrpcd");
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gitrpcd (build it first)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "gitrpcd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            child,
            socket,
            _dir: dir,
        }
    }

    pub async fn client(&self) -> gitrpc_client::Client {
        let opts = gitrpc_client::Options {
            timeout: Some(Duration::from_secs(600)),
            ..Default::default()
        };
        gitrpc_client::Client::connect(&format!("unix:{}", self.socket.display()), &opts)
            .await
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Seconds as `1.23 s` or `456 ms`.
pub fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

//! What the read benchmarks (`llcft`, `diff`, `blame`) share: repositories built once with
//! `git fast-import` and cached under `target/bench-repos/`, a `gitrpcd` child on a unix
//! socket; and, from `examples/support/bench.rs` (shared with `rpc_bench`), git on PATH, a
//! deterministic RNG and the formatting of times.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::bench;
pub use crate::bench::{find_git, git, secs, Rng};

pub const STORAGE: &str = "default";

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
        let child = Command::new(bench::bin_dir().join("gitrpcd"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gitrpcd (build it first)");
        bench::wait_for_socket(&socket);
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
        bench::stop(&mut self.child);
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

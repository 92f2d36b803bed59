//! Test harness: `TestServer::start()` runs `gitrpc_server::run` on a temp socket with one
//! temp storage; `Fixture` builds repositories with the git CLI.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use gitrpc_proto::gitaly::Repository;
use gitrpc_server::config::{Config, Storage};
use gitrpc_server::Deps;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub const STORAGE: &str = "default";

/// A config serving storage `STORAGE` from `<dir>/storage` on the socket `<dir>/s.sock`.
pub fn socket_config(dir: impl AsRef<Path>) -> Config {
    let dir = dir.as_ref();
    Config {
        socket_path: Some(dir.join("s.sock")),
        storage: vec![Storage {
            name: STORAGE.into(),
            path: dir.join("storage"),
        }],
        ..Default::default()
    }
}

/// A real server ([`gitrpc_server::Serving`]) on [`socket_config`], changed by `edit` first.
pub async fn serving(
    dir: impl AsRef<Path>,
    edit: impl FnOnce(&mut Config),
) -> gitrpc_server::Serving {
    let mut config = socket_config(dir);
    edit(&mut config);
    gitrpc_server::Serving::start(config).await.unwrap()
}

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub storage: PathBuf,
    pub socket: PathBuf,
    pub deps: Arc<Deps>,
    pub channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let socket = dir.path().join("gitrpc.sock");
        let config = Config {
            storage: vec![Storage {
                name: STORAGE.into(),
                path: storage.clone(),
            }],
            ..Default::default()
        };
        let deps = Deps::new(config.validate().unwrap()).await.unwrap();
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let (tx, rx) = oneshot::channel();
        let d = deps.clone();
        let handle = tokio::spawn(async move {
            gitrpc_server::run(d, incoming, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let channel = gitrpc_client::connect(
            &format!("unix:{}", socket.display()),
            &gitrpc_client::Options::default(),
        )
        .await
        .unwrap();
        TestServer {
            storage: storage.canonicalize().unwrap(),
            dir,
            socket,
            deps,
            channel,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn repo(&self, rel: &str) -> Repository {
        Repository {
            storage_name: STORAGE.into(),
            relative_path: rel.into(),
            ..Default::default()
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.storage.join(rel)
    }

    /// A fixture repository at `rel` (see [`Fixture`]).
    pub fn fixture(&self, rel: &str) -> Fixture {
        Fixture::create(&self.path(rel), "sha1")
    }

    pub fn fixture_sha256(&self, rel: &str) -> Fixture {
        Fixture::create(&self.path(rel), "sha256")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

/// Run git in `dir` with a deterministic identity; panics on failure; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn git_output(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Charles Babbage")
        .env("GIT_COMMITTER_EMAIL", "charles@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0130")
        .env("GIT_COMMITTER_DATE", "1700000100 -0800")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A bare repository with history made through a scratch work tree:
///
/// ```text
/// main:    c1 (README.md) -- c2 (src/lib.rs, README.md) -- c3 (merge of feature) -- c4 (docs/a b.txt)
/// feature:        \-- f1 (feature.txt) -/
/// tags: v1.0 (annotated, on c2), light (lightweight, on c1)
/// ```
pub struct Fixture {
    pub path: PathBuf,
    work: tempfile::TempDir,
}

impl Fixture {
    pub fn create(path: &Path, format: &str) -> Fixture {
        std::fs::create_dir_all(path).unwrap();
        git(
            path,
            &[
                "init",
                "--bare",
                "--quiet",
                "--initial-branch=main",
                &format!("--object-format={format}"),
            ],
        );
        let work = tempfile::tempdir().unwrap();
        let f = Fixture {
            path: path.to_path_buf(),
            work,
        };
        f.write("README.md", "hello\n");
        f.commit("c1: initial commit");
        f.git(&["tag", "light"]);
        f.write("README.md", "hello\nworld\n");
        f.write("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
        f.commit(
            "c2: add lib\n\nThe library answers.\n\nSigned-off-by: Ada Lovelace <ada@example.com>",
        );
        f.git(&["tag", "-a", "v1.0", "-m", "release 1.0"]);
        f.git(&["checkout", "--quiet", "-b", "feature", "HEAD~1"]);
        f.write("feature.txt", "feature\n");
        f.commit("f1: feature work");
        f.git(&["checkout", "--quiet", "main"]);
        f.git(&[
            "merge",
            "--quiet",
            "--no-ff",
            "-m",
            "c3: merge feature",
            "feature",
        ]);
        f.write("docs/a b.txt", "spaced name\n");
        f.commit("c4: docs");
        f
    }

    /// git with this repository as GIT_DIR and the scratch work tree.
    pub fn git(&self, args: &[&str]) -> String {
        let mut full = vec![
            "--git-dir".to_string(),
            self.path.display().to_string(),
            "--work-tree".to_string(),
            self.work.path().display().to_string(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        git(self.work.path(), &full)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.work.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.rev_parse("HEAD")
    }

    pub fn rev_parse(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", rev]).trim().to_string()
    }
}

/// pids of live processes whose command line contains `needle` and whose parent chain
/// includes this test process.
pub fn live_git_children() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').map(|i| i + 2).unwrap_or(0)..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() < 2 {
            continue;
        }
        let ppid: i32 = fields[1].parse().unwrap_or(0);
        if ppid == me {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            if cmd.contains("git") {
                out.push((pid, format!("{} {}", fields[0], cmd)));
            }
        }
    }
    out
}

/// git processes whose command line mentions both `dir` (a test's temp dir: other tests, and
/// other test runs on the machine, use the same ids) and `needle`.
pub fn git_processes(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let dir = dir.to_string_lossy();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true);
        if !zombie && cmd.contains("git") && cmd.contains(dir.as_ref()) && cmd.contains(needle) {
            out.push(cmd);
        }
    }
    out
}

/// A repository whose object store blocks every git that looks up an object: its
/// `objects/info/alternates` is a FIFO nobody writes.
pub fn hanging_repo(storage: &std::path::Path, rel: &str) {
    let path = storage.join(rel);
    std::fs::create_dir_all(&path).unwrap();
    git(&path, &["init", "--bare", "--quiet"]);
    let fifo = std::ffi::CString::new(
        path.join("objects/info/alternates")
            .to_str()
            .unwrap()
            .to_string(),
    )
    .unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
}

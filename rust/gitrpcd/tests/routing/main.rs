//! Storage routing over three real `gitrpcd` processes, one storage each (its own socket
//! and token): each storage's calls reach its server (read from that server's `/metrics`),
//! a repository moved with ReplicateRepository is equal (same refs, `git fsck`) and can be
//! cloned through `gitrpc-ssh --server`, and one server down fails only its storage's calls;
//! an operation (UserCommitFiles, UserCherryPick, UserRevert) whose `start_repository` is on
//! another storage reads it from that storage's server (named in `gitaly-servers`).
#![allow(clippy::disallowed_methods)] // starts the daemon binary and the git CLI

/// UserCommitFiles, UserCherryPick and UserRevert whose start repository is on another
/// server.
mod start;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gitrpc_client::client::repository;
use gitrpc_client::gitaly::User;
use gitrpc_client::routing::{Remote, StorageMap};
use gitrpc_client::{Client, Options};
use tonic::Code;

struct Daemon {
    name: &'static str,
    dir: PathBuf,
    child: Child,
}

impl Daemon {
    fn start(root: &Path, name: &'static str) -> Daemon {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "socket_path = \"{}/d.sock\"\nprometheus_listen_addr = \"127.0.0.1:0\"\n\
                 [auth]\ntoken = \"secret-{name}\"\n\
                 [[storage]]\nname = \"{name}\"\npath = \"{}/repos\"\n",
                dir.display(),
                dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gitrpcd"))
            .args(["--config", config.to_str().unwrap()])
            .stderr(log)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon { name, dir, child };
        wait_for("the socket", || d.dir.join("d.sock").exists());
        wait_for("the metrics address", || d.log().contains("http://"));
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn remote(&self) -> Remote {
        Remote {
            address: format!("unix:{}/d.sock", self.dir.display()),
            token: Some(format!("secret-{}", self.name)),
        }
    }

    fn repos(&self) -> PathBuf {
        self.dir.join("repos")
    }

    /// `gitrpc_rpc_requests_total` of `method` with `code` (0 if never counted).
    fn count(&self, method: &str, code: &str) -> f64 {
        use std::io::{Read, Write};
        let log = self.log();
        let at = log.find("http://").unwrap() + "http://".len();
        let addr = &log[at..at + log[at..].find('/').unwrap()];
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let key = format!("gitrpc_rpc_requests_total{{method=\"{method}\",code=\"{code}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key)?.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "A")
        .env("GIT_COMMITTER_EMAIL", "a@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A repository with history, branches and tags at `path`.
fn seed(path: &Path) {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    git(w, &["init", "--quiet", "--initial-branch=main"]);
    for i in 0..5 {
        std::fs::write(w.join(format!("f{i}.txt")), format!("{i}\n")).unwrap();
        git(w, &["add", "-A"]);
        git(w, &["commit", "--quiet", "-m", &format!("commit {i}")]);
        if i == 2 {
            git(w, &["tag", "-a", "v1", "-m", "v1"]);
            git(w, &["branch", "topic"]);
        }
    }
    git(
        w,
        &["clone", "--quiet", "--bare", ".", path.to_str().unwrap()],
    );
}

/// A new commit on `branch` of the bare repository `bare` (adding `file`), pushed there;
/// its id.
fn commit_on(bare: &Path, branch: &str, file: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let from = bare.to_str().unwrap();
    git(w, &["clone", "--quiet", "--branch", branch, from, "."]);
    std::fs::write(w.join(file), format!("{file}\n")).unwrap();
    git(w, &["add", file]);
    git(w, &["commit", "--quiet", "-m", file]);
    git(w, &["push", "--quiet", "origin", branch]);
    git(w, &["rev-parse", "HEAD"]).trim().to_string()
}

fn user() -> User {
    User {
        gl_id: "user-1".into(),
        gl_username: "jane".into(),
        name: b"Jane".to_vec(),
        email: b"jane@example.com".to_vec(),
        timezone: String::new(),
    }
}

/// A client with every daemon's storage in its map.
async fn client_of(servers: &[Daemon]) -> Client {
    let mut map = StorageMap::new();
    for d in servers {
        map.insert(d.name, d.remote()).unwrap();
    }
    let opts = Options {
        storages: map,
        ..Default::default()
    };
    Client::connect("", &opts).await.unwrap()
}

const CREATE: &str = "/gitaly.RepositoryService/CreateRepository";
const EXISTS: &str = "/gitaly.RepositoryService/RepositoryExists";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons() {
    let root = tempfile::tempdir().unwrap();
    let servers = [
        Daemon::start(root.path(), "s1"),
        Daemon::start(root.path(), "s2"),
        Daemon::start(root.path(), "s3"),
    ];
    let client = client_of(&servers).await;

    // Each storage's calls reach its own server.
    for (i, d) in servers.iter().enumerate() {
        for n in 0..=i {
            let repo = repository(d.name, &format!("new-{n}.git"));
            client.create_repository(&repo, "main").await.unwrap();
        }
    }
    for (i, d) in servers.iter().enumerate() {
        assert_eq!(d.count(CREATE, "OK"), (i + 1) as f64, "{}", d.name);
        assert!(d.repos().join(format!("new-{i}.git/HEAD")).exists());
    }
    // An unknown storage is refused by the client: no server sees a call.
    let err = client
        .repository_exists(&repository("s9", "x.git"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::InvalidArgument, "storage not found: \"s9\"")
    );
    for d in &servers {
        for code in ["OK", "INVALID_ARGUMENT"] {
            assert_eq!(d.count(EXISTS, code), 0.0, "{} {code}", d.name);
        }
    }

    // ReplicateRepository moves s1's repository to s2: equal and sound.
    seed(&servers[0].repos().join("group/moved.git"));
    let (source, target) = (
        repository("s1", "group/moved.git"),
        repository("s2", "group/moved.git"),
    );
    client.replicate_repository(&target, &source).await.unwrap();
    let refs = |d: &Daemon| {
        git(
            &d.repos().join("group/moved.git"),
            &["for-each-ref", "--format=%(objectname) %(refname)"],
        )
    };
    assert_eq!(refs(&servers[0]), refs(&servers[1]));
    assert!(refs(&servers[1]).contains("refs/tags/v1"));
    git(
        &servers[1].repos().join("group/moved.git"),
        &["fsck", "--full"],
    );
    assert_eq!(
        servers[1].count("/gitaly.RepositoryService/ReplicateRepository", "OK"),
        1.0
    );
    assert_eq!(
        servers[0].count("/gitaly.SSHService/SSHUploadPack", "OK"),
        1.0
    );
    assert!(client.repository_exists(&target).await.unwrap());

    // (s2 asked s1 whether the source exists, with s1's token from gitaly-servers.)
    assert_eq!(servers[0].count(EXISTS, "OK"), 1.0);

    // gitrpc-ssh with a storage map: a clone of `s2/...` goes to s2 (the moved repository,
    // with s2's token), and a storage not in the map fails before anything is dialed.
    let ssh = format!(
        "{} --server s1={} --server s2={}",
        env!("CARGO_BIN_EXE_gitrpc-ssh"),
        servers[0].remote().address,
        servers[1].remote().address
    );
    let t = tempfile::tempdir().unwrap();
    let clone = |url: &str, into: &str| {
        Command::new("git")
            .args(["clone", "-q", url, into])
            .current_dir(t.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_SSH_COMMAND", &ssh)
            .env("GITRPC_TOKEN", "secret-s2")
            .env_remove("GITRPC_ADDRESS")
            .env_remove("GITRPC_SERVERS")
            .output()
            .unwrap()
    };
    let out = clone("ssh://gitrpc/s2/group/moved.git", "c");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        git(&t.path().join("c"), &["rev-parse", "origin/topic"]),
        git(
            &servers[0].repos().join("group/moved.git"),
            &["rev-parse", "topic"]
        )
    );
    let fetches = |d: &Daemon| {
        d.count("/gitaly.SSHService/SSHUploadPackWithSidechannel", "OK")
            + d.count("/gitaly.SSHService/SSHUploadPack", "OK")
    };
    assert_eq!(fetches(&servers[1]), 1.0);
    assert_eq!(
        fetches(&servers[0]),
        1.0,
        "s1: only the replication's fetch"
    );
    let out = clone("ssh://gitrpc/s3/new-0.git", "d");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage not found: \"s3\""), "{err}");
    assert_eq!(fetches(&servers[2]), 0.0);

    // One server down: only its storage's calls fail.
    let [s1, s2, mut s3] = servers;
    s3.child.kill().unwrap();
    s3.child.wait().unwrap();
    let err = client
        .repository_exists(&repository("s3", "new-0.git"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(client
        .repository_exists(&repository("s1", "new-0.git"))
        .await
        .unwrap());
    assert!(client.repository_exists(&target).await.unwrap());
    assert_eq!(s1.count(EXISTS, "OK"), 2.0);
    assert_eq!(s2.count(EXISTS, "OK"), 2.0);
}

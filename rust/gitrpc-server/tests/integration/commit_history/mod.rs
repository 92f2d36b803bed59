//! CommitService's history reads (step 11) against git's own answers: ListLastCommitsForTree,
//! FindCommits, RawBlame, and the smaller ones (CountDivergingCommits, CommitStats,
//! CheckObjectsExist, CommitsByMessage, ListCommitsByRefName, GetCommitSignatures,
//! GetCommitMessages).

mod blame;
mod client;
mod find_commits;
mod last_commits;
mod objects;
mod signatures;
mod stats;

use std::cell::Cell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::{Code, Status};

use crate::common::TestServer;

pub type Client = CommitServiceClient<tonic::transport::Channel>;

pub fn client(s: &TestServer) -> Client {
    CommitServiceClient::new(s.channel.clone())
}

/// All messages of a server stream, or the status it (or the call) failed with.
pub async fn stream<T>(
    r: Result<tonic::Response<tonic::Streaming<T>>, Status>,
) -> Result<Vec<T>, Status> {
    let mut s = r?.into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await? {
        out.push(m);
    }
    Ok(out)
}

/// `(code, message)` of a failed call.
pub fn failure<T: std::fmt::Debug>(r: Result<T, Status>) -> (Code, String) {
    let e = r.expect_err("the call must fail");
    (e.code(), e.message().to_string())
}

/// Repositories every RPC must refuse, with the code.
pub fn bad_repos(s: &TestServer) -> Vec<(Option<Repository>, Code)> {
    let mut unknown = s.repo("r.git");
    unknown.storage_name = "nope".into();
    vec![
        (Some(unknown), Code::InvalidArgument),
        (Some(s.repo("../r.git")), Code::InvalidArgument),
        (None, Code::InvalidArgument),
        (Some(s.repo("missing.git")), Code::NotFound),
    ]
}

/// git run by hand, with a fixed identity and no user or system config.
pub fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Charles Babbage")
        .env("GIT_COMMITTER_EMAIL", "charles@example.com")
        .stdin(Stdio::null());
    c
}

/// Run `c`; its stdout (panics if git fails).
pub fn run(c: &mut Command) -> Vec<u8> {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A bare repository in the test server's storage, written through a scratch work tree;
/// every commit is a minute after the last unless a date is given (to go backwards).
pub struct Work {
    pub path: PathBuf,
    pub rel: String,
    work: tempfile::TempDir,
    time: Cell<i64>,
}

impl Work {
    pub fn new(s: &TestServer, rel: &str, format: &str) -> Work {
        let path = s.path(rel);
        std::fs::create_dir_all(&path).unwrap();
        run(git_cmd(&path).args([
            "init",
            "--bare",
            "--quiet",
            "--initial-branch=main",
            &format!("--object-format={format}"),
        ]));
        Work {
            path,
            rel: rel.to_string(),
            work: tempfile::tempdir().unwrap(),
            time: Cell::new(1_700_000_000),
        }
    }

    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// git with this repository and the work tree; arguments may be any bytes.
    pub fn cmd<I, A>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        let mut c = git_cmd(self.work.path());
        c.arg("--git-dir")
            .arg(&self.path)
            .arg("--work-tree")
            .arg(self.work.path())
            .args(args);
        c
    }

    pub fn git(&self, args: &[&str]) -> String {
        String::from_utf8(run(&mut self.cmd(args))).unwrap()
    }

    pub fn write(&self, rel: impl AsRef<[u8]>, content: impl AsRef<[u8]>) {
        let p = self.work.path().join(OsStr::from_bytes(rel.as_ref()));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    /// Commit everything, a minute after the last commit.
    pub fn commit(&self, message: &str) -> String {
        self.time.set(self.time.get() + 60);
        self.commit_at(message, self.time.get())
    }

    /// Commit everything with this date (seconds; may go backwards).
    pub fn commit_at(&self, message: &str, seconds: i64) -> String {
        run(&mut self.cmd(["add", "-A"]));
        let date = format!("{seconds} +0000");
        let file = message_file(message);
        run(self
            .cmd(["commit", "--quiet", "--allow-empty", "-F"])
            .arg(file.path())
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date));
        self.rev("HEAD")
    }

    /// `git merge --no-ff` of `other` into the checked-out branch, a minute later. With
    /// `resolve` (path, content), the merge is stopped before committing (conflicts or not),
    /// those files are written, and it is committed: an "evil" merge.
    pub fn merge(&self, other: &str, message: &str, resolve: &[(&str, &str)]) -> String {
        self.time.set(self.time.get() + 60);
        let date = format!("{} +0000", self.time.get());
        let mut m = self.cmd(["merge", "--quiet", "--no-ff", "-m", message]);
        m.env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date);
        if resolve.is_empty() {
            run(m.arg(other));
            return self.rev("HEAD");
        }
        let _ = m.arg("--no-commit").arg(other).output().unwrap();
        for (p, c) in resolve {
            self.write(p, c);
        }
        run(&mut self.cmd(["add", "-A"]));
        run(self
            .cmd(["commit", "--quiet", "--no-edit", "-m", message])
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date));
        self.rev("HEAD")
    }

    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", rev]).trim().to_string()
    }

    pub fn repo(&self) -> Repository {
        Repository {
            storage_name: crate::common::STORAGE.into(),
            relative_path: self.rel.clone(),
            ..Default::default()
        }
    }
}

/// A commit message in a file (for `git commit -F`: messages may be longer than an
/// argument can be).
pub fn message_file(message: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message).unwrap();
    file
}

/// What `git log -1 --format=%H <rev> -- <path>` prints (empty if nothing), with
/// `GIT_LITERAL_PATHSPECS` or not.
pub fn git_last_commit(repo: &Path, rev: &str, path: &[u8], literal: bool) -> String {
    let mut c = git_cmd(repo);
    c.args(["log", "-1", "--format=%H", rev, "--"])
        .arg(OsStr::from_bytes(path));
    if literal {
        c.env("GIT_LITERAL_PATHSPECS", "1");
    }
    String::from_utf8(run(&mut c)).unwrap().trim().to_string()
}

/// git processes (but the pool's cat-file) still running in `dir` (a test's temp dir)
/// whose command line holds `needle`, waited for up to 10 s (a killed git needs a moment).
pub async fn wait_no_git(dir: &Path, needle: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut left = crate::common::git_processes(dir, needle);
        left.retain(|c| !c.contains(" cat-file --batch-command"));
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "git left running: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

//! Long-lived `git cat-file --batch-command` processes, pooled per repository.
//!
//! Objects are immutable, and cat-file re-scans packs when it misses an object, so a process
//! can serve many requests. Ref names are resolved by git on every command (loose refs are
//! read from disk, packed-refs re-read when it changes), so answers match a fresh git.
//! A process handed back mid-object ("dirty") is killed rather than reused.
//!
//! A pooled process can die while idle (killed by an operator or the OOM killer). The pool
//! skips dead ones when it leases, and a command that finds its process gone before any
//! answer (its stdin closed, or EOF where the header should be) is sent once more to a fresh
//! process, if the old one had answered before: reads are idempotent, and a process that
//! never answered is a real failure, not a stale one.

mod pool;

pub use pool::{CatFilePool, CatFilePoolConfig, Lease};

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout};

use crate::{Command, Error, Git, Process, Result, Subcommand};

const SUB: &str = "cat-file";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    Commit,
    Tree,
    Blob,
    Tag,
}

impl ObjectType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "commit" => ObjectType::Commit,
            "tree" => ObjectType::Tree,
            "blob" => ObjectType::Blob,
            "tag" => ObjectType::Tag,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Commit => "commit",
            ObjectType::Tree => "tree",
            ObjectType::Blob => "blob",
            ObjectType::Tag => "tag",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub oid: String,
    pub kind: ObjectType,
    pub size: u64,
}

/// One `git cat-file --batch-command` process.
pub struct CatFile {
    git: Git,
    repo: PathBuf,
    /// Environment of ours for the process (a quarantine's object directories).
    env: Vec<(&'static str, OsString)>,
    process: Process,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Bytes of the current object's body (plus its trailing LF) not yet read.
    pending: u64,
    /// A command was sent and its answer not fully read.
    dirty: bool,
    last_used: Instant,
    /// Commands this process answered.
    served: u64,
}

/// How sending one command went.
enum Sent {
    Answered(Option<ObjectInfo>),
    /// The process was gone before it answered (EPIPE on its stdin, EOF on its stdout).
    Gone(Error),
}

fn proto(detail: impl Into<String>) -> Error {
    Error::Protocol {
        subcommand: SUB,
        detail: detail.into(),
    }
}

fn io(source: std::io::Error) -> Error {
    Error::Io {
        subcommand: SUB,
        source,
    }
}

impl CatFile {
    pub fn spawn(git: &Git, repo: &Path) -> Result<CatFile> {
        CatFile::spawn_with_env(git, repo, Vec::new())
    }

    /// A process with environment variables of ours, e.g. `GIT_OBJECT_DIRECTORY` and
    /// `GIT_ALTERNATE_OBJECT_DIRECTORIES` to read a quarantine (never pooled: see
    /// [`CatFilePool::dedicated`]).
    pub fn spawn_with_env(
        git: &Git,
        repo: &Path,
        env: Vec<(&'static str, OsString)>,
    ) -> Result<CatFile> {
        let mut cmd = Command::in_repo(repo, Subcommand::CatFile)
            .flag("--batch-command")
            .stdin();
        for (k, v) in &env {
            cmd = cmd.env(k, v.clone());
        }
        let mut process = git.spawn(&cmd)?;
        let stdin = process.take_stdin().expect("piped stdin");
        let stdout =
            BufReader::with_capacity(64 * 1024, process.take_stdout().expect("piped stdout"));
        Ok(CatFile {
            git: git.clone(),
            repo: repo.to_path_buf(),
            env,
            process,
            stdin,
            stdout,
            pending: 0,
            dirty: false,
            last_used: Instant::now(),
            served: 0,
        })
    }

    pub fn repo(&self) -> &Path {
        &self.repo
    }

    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// Was this process left in the middle of an answer?
    pub fn is_dirty(&self) -> bool {
        self.dirty || self.pending > 0
    }

    /// Has the process exited (it is of no use then)?
    pub fn has_exited(&self) -> bool {
        self.process.has_exited()
    }

    async fn command(&mut self, verb: &str, object: &str) -> Result<Option<ObjectInfo>> {
        if self.is_dirty() {
            return Err(proto("previous answer not consumed"));
        }
        if object.is_empty() || object.bytes().any(|b| b == b'\n' || b == 0) {
            return Err(Error::invalid(format!("invalid object name: {object:?}")));
        }
        if relative_path_syntax(object) {
            // `<rev>:./<path>` makes git die outside a work tree (ending this process); in a
            // bare repository such a name can never resolve.
            return Ok(None);
        }
        match self.send(verb, object).await? {
            Sent::Answered(info) => Ok(info),
            Sent::Gone(e) if self.served == 0 => Err(e),
            Sent::Gone(e) => {
                tracing::info!(pid = self.pid(), error = %e, "cat-file died while idle; retrying on a new one");
                // Dropping the old process reaps it (and kills what is left of its group).
                *self = CatFile::spawn_with_env(&self.git, &self.repo, self.env.clone())?;
                match self.send(verb, object).await? {
                    Sent::Answered(info) => Ok(info),
                    Sent::Gone(e) => Err(e),
                }
            }
        }
    }

    /// Send one command and read its header.
    async fn send(&mut self, verb: &str, object: &str) -> Result<Sent> {
        self.dirty = true;
        let line = format!("{verb} {object}\n");
        if let Err(e) = self.stdin.write_all(line.as_bytes()).await {
            return Ok(Sent::Gone(io(e)));
        }
        if let Err(e) = self.stdin.flush().await {
            return Ok(Sent::Gone(io(e)));
        }
        let mut header = String::new();
        let n = self.stdout.read_line(&mut header).await.map_err(io)?;
        if n == 0 {
            return Ok(Sent::Gone(proto(format!(
                "exited: {}",
                self.process.stderr()
            ))));
        }
        let header = header.trim_end_matches('\n');
        self.served += 1;
        if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            self.dirty = false;
            return Ok(Sent::Answered(None));
        }
        let mut parts = header.rsplitn(3, ' ');
        let (size, kind, oid) = match (parts.next(), parts.next(), parts.next()) {
            (Some(s), Some(k), Some(o)) => (s, k, o),
            _ => return Err(proto(format!("bad header {header:?}"))),
        };
        let info = ObjectInfo {
            oid: oid.to_string(),
            kind: ObjectType::parse(kind).ok_or_else(|| proto(format!("bad type {kind:?}")))?,
            size: size
                .parse()
                .map_err(|_| proto(format!("bad size {size:?}")))?,
        };
        if verb == "contents" {
            self.pending = info.size + 1;
        }
        self.dirty = false;
        Ok(Sent::Answered(Some(info)))
    }

    /// Type, size and id of an object; `None` if it doesn't exist.
    pub async fn info(&mut self, object: &str) -> Result<Option<ObjectInfo>> {
        self.last_used = Instant::now();
        self.command("info", object).await
    }

    /// Start reading an object: returns its header; then call [`CatFile::read_chunk`] until it
    /// returns 0 (or [`CatFile::skip_rest`]).
    pub async fn contents(&mut self, object: &str) -> Result<Option<ObjectInfo>> {
        self.last_used = Instant::now();
        self.command("contents", object).await
    }

    /// Read the next piece of the current object's body; 0 at its end. (A `CatFile` is an
    /// [`AsyncRead`] of the current object's body, so [`crate::fill`] works on it too.)
    pub async fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.read(buf).await.map_err(io)
    }

    /// Discard the rest of the current object. Large remainders are not drained: the process
    /// stays dirty and is killed when returned to the pool.
    pub async fn skip_rest(&mut self) -> Result<()> {
        if self.pending > 1024 * 1024 {
            return Ok(());
        }
        let mut buf = [0u8; 8192];
        while self.read_chunk(&mut buf).await? > 0 {}
        Ok(())
    }

    /// Read a whole object into memory.
    pub async fn read_object(&mut self, object: &str) -> Result<Option<(ObjectInfo, Vec<u8>)>> {
        let Some(info) = self.contents(object).await? else {
            return Ok(None);
        };
        let data = self.read_rest().await?;
        Ok(Some((info, data)))
    }

    /// Read the rest of the current object (after [`CatFile::contents`]) into memory.
    pub async fn read_rest(&mut self) -> Result<Vec<u8>> {
        let mut data = vec![0u8; self.pending.saturating_sub(1) as usize];
        self.stdout.read_exact(&mut data).await.map_err(io)?;
        self.pending = self.pending.min(1);
        let mut lf = [0u8; 1];
        self.read_chunk(&mut lf).await?;
        Ok(data)
    }
}

impl AsyncRead for CatFile {
    /// Reads the body of the object started with [`CatFile::contents`], then its trailing LF
    /// (not returned); at the end of the body it reads as EOF.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let truncated =
            || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object truncated");
        if this.pending == 0 || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.pending == 1 {
            let mut lf = [0u8; 1];
            let mut lf = ReadBuf::new(&mut lf);
            ready!(Pin::new(&mut this.stdout).poll_read(cx, &mut lf))?;
            if lf.filled().is_empty() {
                return Poll::Ready(Err(truncated()));
            }
            this.pending = 0;
            return Poll::Ready(Ok(()));
        }
        let want = buf.remaining().min((this.pending - 1) as usize);
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(want));
        ready!(Pin::new(&mut this.stdout).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        if n == 0 {
            return Poll::Ready(Err(truncated()));
        }
        buf.advance(n);
        this.pending -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Does `object` use `<rev>:./path` / `<rev>:../path` syntax, which git resolves relative to
/// the work tree (and dies on without one)?
fn relative_path_syntax(object: &str) -> bool {
    object.match_indices(':').any(|(i, _)| {
        let rest = &object[i + 1..];
        rest.starts_with("./") || rest.starts_with("../")
    })
}

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

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};

use crate::{Error, Git, Process, Result, Subcommand};

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
        let mut process = git
            .repo_command(repo, Subcommand::CatFile)
            .flag("--batch-command")
            .stdin()
            .spawn()?;
        let stdin = process.take_stdin().expect("piped stdin");
        let stdout =
            BufReader::with_capacity(64 * 1024, process.take_stdout().expect("piped stdout"));
        Ok(CatFile {
            git: git.clone(),
            repo: repo.to_path_buf(),
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
                *self = CatFile::spawn(&self.git, &self.repo)?;
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

    /// Read the next piece of the current object's body; 0 at its end.
    pub async fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.pending <= 1 {
            if self.pending == 1 {
                let mut lf = [0u8; 1];
                self.stdout.read_exact(&mut lf).await.map_err(io)?;
                self.pending = 0;
            }
            return Ok(0);
        }
        let want = buf.len().min((self.pending - 1) as usize);
        let n = self.stdout.read(&mut buf[..want]).await.map_err(io)?;
        if n == 0 {
            return Err(proto("object truncated"));
        }
        self.pending -= n as u64;
        Ok(n)
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
        let mut data = vec![0u8; info.size as usize];
        self.stdout.read_exact(&mut data).await.map_err(io)?;
        self.pending = 1;
        let mut buf = [0u8; 1];
        self.read_chunk(&mut buf).await?;
        Ok(Some((info, data)))
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

/// Pool settings.
#[derive(Clone, Debug)]
pub struct CatFilePoolConfig {
    /// Idle processes kept at most (over all repositories); the oldest is killed first.
    pub max_idle: usize,
    /// An idle process older than this is killed.
    pub idle_ttl: Duration,
}

impl Default for CatFilePoolConfig {
    fn default() -> Self {
        CatFilePoolConfig {
            max_idle: 64,
            idle_ttl: Duration::from_secs(60),
        }
    }
}

struct Shared {
    git: Git,
    config: CatFilePoolConfig,
    idle: Mutex<VecDeque<CatFile>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A bounded pool of idle cat-file processes, keyed by repository path.
#[derive(Clone)]
pub struct CatFilePool {
    shared: Arc<Shared>,
}

impl CatFilePool {
    /// Create a pool; inside a tokio runtime a sweeper kills processes idle past the TTL.
    pub fn new(git: Git, config: CatFilePoolConfig) -> Self {
        let shared = Arc::new(Shared {
            git,
            config,
            idle: Mutex::new(VecDeque::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&shared);
            let tick = (shared.config.idle_ttl / 2).max(Duration::from_millis(50));
            h.spawn(sweep(weak, tick));
        }
        CatFilePool { shared }
    }

    /// A process for `repo`: an idle one if there is one (skipping any that died while
    /// idle), else a new one.
    pub fn get(&self, repo: &Path) -> Result<Lease> {
        self.get_with(&self.shared.git, repo)
    }

    /// [`CatFilePool::get`], a new process started by `git` (the same installation with
    /// another observer, e.g. one call's), so its observer sees the spawn. The process is
    /// then the pool's like any other.
    pub fn get_with(&self, git: &Git, repo: &Path) -> Result<Lease> {
        let reused = loop {
            let found = {
                let mut idle = self.shared.idle.lock().unwrap();
                idle.iter()
                    .rposition(|c| c.repo == repo)
                    .and_then(|i| idle.remove(i))
            };
            match found {
                Some(c) if c.has_exited() => {
                    tracing::info!(pid = c.pid(), "idle cat-file died; dropping it");
                    drop(c);
                }
                other => break other,
            }
        };
        let cat = match reused {
            Some(c) => {
                self.shared.hits.fetch_add(1, Ordering::Relaxed);
                c
            }
            None => {
                self.shared.misses.fetch_add(1, Ordering::Relaxed);
                let mut c = CatFile::spawn(git, repo)?;
                // A replacement for it (after it died) is the pool's, not the caller's.
                c.git = self.shared.git.clone();
                c
            }
        };
        Ok(Lease {
            pool: Arc::downgrade(&self.shared),
            cat: Some(cat),
        })
    }

    /// (hits, misses, idle processes)
    pub fn stats(&self) -> (u64, u64, usize) {
        (
            self.shared.hits.load(Ordering::Relaxed),
            self.shared.misses.load(Ordering::Relaxed),
            self.shared.idle.lock().unwrap().len(),
        )
    }

    /// Kill idle processes of one repository (after it is removed, say).
    pub fn evict(&self, repo: &Path) {
        let evicted: VecDeque<CatFile> = {
            let mut idle = self.shared.idle.lock().unwrap();
            let (gone, keep) = idle.drain(..).partition(|c| c.repo.starts_with(repo));
            *idle = keep;
            gone
        };
        drop(evicted);
    }
}

async fn sweep(pool: Weak<Shared>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let Some(shared) = pool.upgrade() else { return };
        let ttl = shared.config.idle_ttl;
        let expired: VecDeque<CatFile> = {
            let mut idle = shared.idle.lock().unwrap();
            let (gone, keep) = idle.drain(..).partition(|c| c.last_used.elapsed() > ttl);
            *idle = keep;
            gone
        };
        drop(expired);
    }
}

/// A process borrowed from the pool; returned on drop if it is clean, killed otherwise.
pub struct Lease {
    pool: Weak<Shared>,
    cat: Option<CatFile>,
}

impl std::ops::Deref for Lease {
    type Target = CatFile;
    fn deref(&self) -> &CatFile {
        self.cat.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut CatFile {
        self.cat.as_mut().expect("present until drop")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(cat) = self.cat.take() else { return };
        let Some(shared) = self.pool.upgrade() else {
            return;
        };
        if cat.is_dirty() {
            tracing::debug!(pid = cat.pid(), "killing dirty cat-file process");
            return;
        }
        let evicted = {
            let mut idle = shared.idle.lock().unwrap();
            idle.push_back(cat);
            if idle.len() > shared.config.max_idle {
                idle.pop_front()
            } else {
                None
            }
        };
        drop(evicted);
    }
}

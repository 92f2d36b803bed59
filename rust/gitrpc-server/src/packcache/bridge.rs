//! The channel from git's pack-objects hook back to the server — without a listener, so it
//! works for an in-process server as for the daemon.
//!
//! git upload-pack runs `uploadpack.packObjectsHook` through the shell as `<hook> git
//! [--shallow-file ""] pack-objects <flags>`, writes what to pack on its stdin and reads the
//! pack from its stdout (progress from its stderr). The hook must exit non-zero when the
//! pack failed: that is how upload-pack learns it must abort (it holds back the pack's last
//! byte until then, so the client never takes a truncated pack for a good one).
//!
//! Per upload-pack session the server makes a private directory (`hooks-run/pack-<owner>-
//! <random>`) holding a FIFO `req`, opened read-write by the server (so it never blocks and
//! never sees EOF), and gives upload-pack its path as `GITRPC_PACK_DIR`. The hook ([`SCRIPT`],
//! written once per server) makes `<dir>/<its pid>/` with its arguments (`args`, one a line),
//! a copy of its stdin (`stdin`) and two FIFOs (`out`, `err`), then writes its pid to `req`
//! and copies `err` to its stderr and `out` to its stdout. The server, per request line:
//! opens `out` and `err` for writing, checks the arguments and input
//! (`gitrpc_git::packobjects`), keys the request, reads the cache's entry and writes the pack
//! and progress into the FIFOs, then writes `rc` (`0`, or `1` after a one-line reason on
//! `err`) before it closes them: the hook exits with `rc`.
//!
//! The pack itself goes, where the system allows it, straight into the pipe upload-pack reads
//! the hook's output from: the server opens `/proc/<hook pid>/fd/1` (the hook is its
//! grandchild, of the same user; its environment must name this session's directory) and
//! `splice`s the entry's file into it, so no process copies the bytes on the way (`out` then
//! carries nothing; its end still tells the hook the pack is complete). Where that fails (no
//! `/proc`, a stricter policy, another pid namespace, output that is no pipe), the pack goes
//! through `out` and the hook's `cat` ([`super::pipes`]). Dropping the [`Session`] (the
//! RPC ended) stops this and removes the directory; the hook and its `cat`s are in
//! upload-pack's process group and die with it. Only the server's user can write into
//! these directories.

use std::ffi::OsString;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

use gitrpc_git::packobjects::{PackObjectsArgs, StdinCheck};

use super::entry::{Failure, Next};
use super::generate::Job;
use super::key::KeyHasher;
use super::pipes::{copy_range, mkfifo, open_direct, open_fifo};
use super::Shared;

/// The `pack-objects` hook. Two shell facts matter here: a background job inherits every
/// open descriptor, so the background `cat` of `err` also holds the hook's stdout and
/// upload-pack sees the pack end only once the server has closed both FIFOs (it does, after
/// writing `rc`); and `sh` gives background jobs `/dev/null` as stdin, so the copy of stdin
/// runs in the foreground, before the request is sent.
pub const SCRIPT: &str = r#"#!/bin/sh
# gitrpc: hands `git pack-objects` to the server that started this upload-pack
# (rust/gitrpc-server/src/packcache/bridge.rs). argv: git [--shallow-file ""] pack-objects ...
d="$GITRPC_PACK_DIR"
if [ -z "$d" ] || [ ! -p "$d/req" ]; then
  echo "gitrpc: pack-objects bridge missing" >&2
  exit 1
fi
n="$d/$$"
mkdir "$n" && mkfifo "$n/out" "$n/err" || exit 1
printf '%s\n' "$@" > "$n/args" || exit 1
cat > "$n/stdin" || exit 1
printf '%s\n' "$$" > "$d/req" || exit 1
cat "$n/err" >&2 &
e=$!
cat "$n/out"
o=$?
wait "$e"
rc=1
[ -f "$n/rc" ] && read -r rc < "$n/rc"
[ "$o" -eq 0 ] || exit 1
exit "$rc"
"#;

/// The environment variable naming a session's directory.
pub const DIR_ENV: &str = "GITRPC_PACK_DIR";

/// Longest argument list and input the server takes from a hook.
const MAX_ARGS: u64 = 64 << 10;
const MAX_STDIN: u64 = 64 << 20;

/// The hook script, in its own directory under `hooks-run` (named after this process, so
/// housekeeping removes it if the server dies); removed when dropped.
pub struct HookScript {
    dir: PathBuf,
    path: PathBuf,
    /// `'<path>'`: git runs the hook with the shell.
    quoted: String,
}

impl HookScript {
    pub fn create(bridge_dir: &Path) -> std::io::Result<HookScript> {
        std::fs::create_dir_all(bridge_dir)?;
        let dir = bridge_dir.join(gitrpc_git::lifetime::owned_name(
            "packhook",
            &crate::tempdir::random_hex(6),
        ));
        let path = dir.join("pack-objects");
        let raw = path.to_str().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the hook's path is not UTF-8",
            )
        })?;
        if raw.contains(['\n', '\0']) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the hook's path contains a newline",
            ));
        }
        let hook = HookScript {
            quoted: format!("'{}'", raw.replace('\'', r"'\''")),
            dir,
            path,
        };
        hook.ensure()?;
        Ok(hook)
    }

    /// Write the script if it is missing (its storage was removed and made again).
    pub fn ensure(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if self.path.is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(".pack-objects.tmp");
        std::fs::write(&tmp, SCRIPT)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &self.path)
    }

    pub fn config_value(&self) -> &str {
        &self.quoted
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HookScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What every request of one session shares.
struct Context {
    cache: Arc<Shared>,
    dir: PathBuf,
    repo: PathBuf,
    label: String,
    protocol: String,
    limit_key: String,
    git: gitrpc_git::Git,
    /// A generation of this session refused by `[pack_objects_limiting]`.
    refused: Mutex<Option<tonic::Status>>,
    /// The kept (or generating) entry the last hook invocation read, for the fast path.
    learned: tokio::sync::watch::Sender<Option<(super::key::Key, u64)>>,
}

/// One upload-pack session's channel. Dropping it stops answering and removes its
/// directory.
pub struct Session {
    ctx: Arc<Context>,
    task: tokio::task::AbortHandle,
}

impl Session {
    pub(super) fn open(
        cache: Arc<Shared>,
        repo: PathBuf,
        label: String,
        protocol: String,
        limit_key: String,
        git: gitrpc_git::Git,
    ) -> std::io::Result<Session> {
        let base = cache.bridge_dir.clone();
        std::fs::create_dir_all(&base)?;
        let dir = base.join(gitrpc_git::lifetime::owned_name(
            "pack",
            &crate::tempdir::random_hex(8),
        ));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        }
        let rx = mkfifo(&dir.join("req")).and_then(|()| {
            pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(dir.join("req"))
        });
        let rx = match rx {
            Ok(rx) => rx,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let ctx = Arc::new(Context {
            cache,
            dir,
            repo,
            label,
            protocol,
            limit_key,
            git,
            refused: Mutex::new(None),
            learned: tokio::sync::watch::channel(None).0,
        });
        let task = tokio::spawn(listen(rx, ctx.clone())).abort_handle();
        Ok(Session { ctx, task })
    }

    /// `GITRPC_PACK_DIR` for upload-pack.
    pub fn env(&self) -> (&'static str, OsString) {
        (DIR_ENV, self.ctx.dir.clone().into_os_string())
    }

    /// Changes to the entry (cache key, id) a hook invocation of this session read, if the
    /// cache's index holds it (an entry streamed from memory can't be read again).
    pub fn learned(&self) -> tokio::sync::watch::Receiver<Option<(super::key::Key, u64)>> {
        self.ctx.learned.subscribe()
    }

    /// `RESOURCE_EXHAUSTED` if `[pack_objects_limiting]` refused a pack of this session.
    pub fn refusal(&self) -> Option<tonic::Status> {
        self.ctx
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.ctx.dir);
    }
}

/// Answer every request line (a hook's pid) until the session is dropped.
async fn listen(rx: pipe::Receiver, ctx: Arc<Context>) {
    let mut lines = BufReader::new(rx).lines();
    let mut serving = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(pid)) if !pid.is_empty() && pid.len() <= 10 && pid.bytes().all(|b| b.is_ascii_digit()) => {
                    serving.spawn(invocation(ctx.clone(), pid));
                }
                Ok(Some(other)) => tracing::warn!(line = %other, "pack-objects hook: malformed request"),
                Ok(None) | Err(_) => return,
            },
            Some(_) = serving.join_next(), if !serving.is_empty() => {}
        }
    }
}

/// Serve one hook invocation (`<session>/<pid>/`).
async fn invocation(ctx: Arc<Context>, pid: String) {
    let dir = ctx.dir.join(&pid);
    // Made by the hook inside our private directory: a real directory, not a link.
    if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        return;
    }
    let (mut out, mut err) = match (
        open_fifo(&dir.join("out")).await,
        open_fifo(&dir.join("err")).await,
    ) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(dir = %dir.display(), error = %e, "pack-objects hook: can't open its pipes");
            return;
        }
    };
    // Straight into upload-pack's pipe if we may (see the module docs), else through `out`.
    let mut direct = open_direct(&pid, &ctx.dir);
    tracing::debug!(hook = %pid, direct = direct.is_some(), "pack-objects hook");
    let target = direct.as_mut().unwrap_or(&mut out);
    let rc = match serve(&ctx, &dir, target, &mut err).await {
        Ok(()) => "0",
        Err(why) => {
            let _ = err.write_all(format!("gitrpc: {why}\n").as_bytes()).await;
            "1"
        }
    };
    // The exit status goes before the pipes close: the hook reads it once they have.
    let tmp = dir.join("rc.tmp");
    if std::fs::write(&tmp, format!("{rc}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join("rc"));
    }
}

/// Check the request, find or make its pack, and copy it to the hook.
async fn serve(
    ctx: &Context,
    dir: &Path,
    out: &mut pipe::Sender,
    err: &mut pipe::Sender,
) -> Result<(), String> {
    let job = tokio::task::spawn_blocking({
        let (dir, repo, label, protocol, limit_key, git) = (
            dir.to_path_buf(),
            ctx.repo.clone(),
            ctx.label.clone(),
            ctx.protocol.clone(),
            ctx.limit_key.clone(),
            ctx.git.clone(),
        );
        move || read_request(&dir, repo, label, &protocol, limit_key, git)
    })
    .await
    .map_err(|e| format!("reading the request: {e}"))??;
    let (mut reader, lookup) = ctx.cache.fetch(job);
    if !reader.entry().in_memory() {
        ctx.learned
            .send_replace(Some((reader.entry().key, reader.entry().id)));
    }
    tracing::debug!(repo = %ctx.label, entry = %super::key::short(&reader.entry().key), lookup = lookup.as_str(), "pack-objects cache lookup");
    loop {
        match reader.next().await {
            Next::Stderr(b) => {
                // Progress only: a hook whose stderr is gone may still take the pack.
                let _ = err.write_all(&b).await;
            }
            Next::Pack(b) => out
                .write_all(&b)
                .await
                .map_err(|e| format!("writing the pack: {e}"))?,
            Next::File { at, len } => {
                let file = reader.file().ok_or("cache file missing")?;
                copy_range(file, at, len, out)
                    .await
                    .map_err(|e| format!("writing the pack: {e}"))?;
                reader.advance(len);
            }
            Next::Done => return Ok(()),
            Next::Failed(f) => {
                if let Failure::Refused(status) = &f {
                    *ctx.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(status.clone());
                }
                return Err(f.message());
            }
        }
    }
}

/// Read and check the hook's arguments and input; key them. Blocking (file I/O).
fn read_request(
    dir: &Path,
    repo: PathBuf,
    label: String,
    protocol: &str,
    limit_key: String,
    git: gitrpc_git::Git,
) -> Result<Job, String> {
    let open = |name: &str| {
        std::fs::File::open(dir.join(name)).map_err(|e| format!("pack-objects hook: {name}: {e}"))
    };
    let mut args = String::new();
    open("args")?
        .take(MAX_ARGS)
        .read_to_string(&mut args)
        .map_err(|e| format!("pack-objects hook: args: {e}"))?;
    let argv: Vec<&str> = match args.strip_suffix('\n') {
        Some(a) => a.split('\n').collect(),
        None => return Err("pack-objects hook: args: not terminated".into()),
    };
    let parsed = PackObjectsArgs::parse(&argv).map_err(|e| e.to_string())?;
    let mut stdin = open("stdin")?;
    let mut hasher = KeyHasher::new(&repo, &parsed, protocol);
    let mut check = StdinCheck::default();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = stdin
            .read(&mut buf)
            .map_err(|e| format!("pack-objects hook: stdin: {e}"))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_STDIN {
            return Err(format!("pack-objects input over {MAX_STDIN} bytes"));
        }
        hasher.update(&buf[..n]);
        check.feed(&buf[..n]);
    }
    check.finish().map_err(|e| e.to_string())?;
    stdin
        .rewind()
        .map_err(|e| format!("pack-objects hook: stdin: {e}"))?;
    // Open: the files can go (generation keeps its descriptor).
    let _ = std::fs::remove_file(dir.join("stdin"));
    let _ = std::fs::remove_file(dir.join("args"));
    Ok(Job {
        key: hasher.finish(),
        repo,
        label,
        args: parsed,
        stdin,
        limit_key,
        git,
    })
}

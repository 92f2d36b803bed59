//! What SSHService and SmartHTTPService share: checking the client's protocol and config
//! options (against the allowlist of `gitrpc_git::client_config`), starting
//! upload-pack/receive-pack/upload-archive, and pumping bytes between the gRPC streams and
//! git (stdout through the spool).
//!
//! Two bounds apply to every session:
//! - `[pack_objects_limiting]`: the slot is taken when the client asks for the pack (or the
//!   archive), not when the session opens: the input is followed by
//!   [`gitrpc_git::pktline::PackRequest`] and the line that starts generation is held back
//!   until a slot is granted. A client idling before that holds no slot.
//!   With `[pack_objects_cache]` an upload-pack session takes no slot: only a generation
//!   the cache starts for a miss does (`crate::packcache`), keyed like the session's would be.
//! - `[transport] idle_timeout`: a session in which the client neither sends nor reads
//!   anything for that long ends with `DEADLINE_EXCEEDED` and its git is killed. Time spent
//!   queued for a pack slot doesn't count (the client is waiting for us then).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gitrpc_git::pktline::{self, PackRequest};
use gitrpc_git::spool::spool;
use gitrpc_git::{Process, Subcommand};
use gitrpc_proto::identity::Identity;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;
use tonic::{Code, Status};

use super::activity::Activity;
use crate::deps::{Deps, Repo};
use crate::error::{Error, Result};
use crate::hooks::bridge::{Bridge, Push};
use crate::hooks::User;
use crate::limiter::Permit;
use crate::limits::Limits;
use crate::packcache::DirectPack;
use crate::pusher::Pusher;
use crate::stream::Sink;

/// `git_protocol` → `GIT_PROTOCOL`: only `version=1` and `version=2`.
pub fn protocol(p: &str) -> Result<Option<&str>> {
    match p {
        "" => Ok(None),
        "version=1" | "version=2" => Ok(Some(p)),
        other => Err(Error::invalid(format!(
            "unsupported git_protocol {other:?}"
        ))),
    }
}

/// Which git service to start.
#[derive(Clone, Copy)]
pub enum Service {
    UploadPack,
    ReceivePack,
    UploadArchive,
}

/// A started transport process and, for a push with a pre-receive hook in code, the bridge
/// that answers the hook (dropped with the push).
pub struct Started {
    pub process: Process,
    pub bridge: Option<Bridge>,
    /// With `[pack_objects_limiting]`: where in the input to take a slot.
    pack: Option<PackGate>,
    /// With `[pack_objects_cache]`: the channel upload-pack's pack-objects hook reaches the
    /// cache by (dropped with the session).
    packs: Option<crate::packcache::Session>,
    /// A protocol-v2 upload-pack with the cache: its fetches may take the fast path.
    fast: Option<super::fastpath::FastPath>,
    /// A push: the cache forgets the repository's packs when it ends.
    _push: Option<Pushed>,
}

/// Takes a pack slot when the client's input asks for generation.
struct PackGate {
    limits: Arc<Limits>,
    request: PackRequest,
    caller: Identity,
}

/// Tells the pack-objects cache that a repository changed, when dropped.
struct Pushed(Arc<crate::packcache::PackCache>, std::path::PathBuf);

impl Drop for Pushed {
    fn drop(&mut self) {
        self.0.invalidate(&self.1);
    }
}

/// How a transport git runs.
#[derive(Clone, Copy, Debug)]
pub struct Flags {
    /// Smart HTTP's `--stateless-rpc` (SSH runs full duplex).
    pub stateless: bool,
    /// `--advertise-refs` (smart HTTP's `info/refs`).
    pub advertise: bool,
    /// git's stderr is streamed to the caller (else captured for the error message).
    pub relay_stderr: bool,
}

impl Flags {
    /// SSHService: full duplex, stderr relayed.
    pub const SSH: Flags = Flags {
        stateless: false,
        advertise: false,
        relay_stderr: true,
    };
    /// `info/refs`.
    pub const ADVERTISE: Flags = Flags {
        stateless: true,
        advertise: true,
        relay_stderr: false,
    };
    /// A smart-HTTP POST.
    pub const STATELESS: Flags = Flags {
        stateless: true,
        advertise: false,
        relay_stderr: false,
    };
}

/// Start a transport git process for `repo`. A push's `pusher` reaches its hooks through
/// receive-pack's environment ([`Pusher::env`]).
pub fn start(
    repo: &Repo<'_>,
    service: Service,
    flags: Flags,
    config: &[String],
    git_protocol: &str,
    pusher: Option<&Pusher>,
) -> Result<Started> {
    let Flags {
        stateless,
        advertise,
        relay_stderr,
    } = flags;
    let options = config;
    let config = gitrpc_git::client_config::check(config)?;
    let mut bridge = None;
    let proto = protocol(git_protocol)?;
    let sub = match service {
        Service::UploadPack => Subcommand::UploadPack,
        Service::ReceivePack => Subcommand::ReceivePack,
        Service::UploadArchive => Subcommand::UploadArchive,
    };
    let mut cmd = repo.cmd(sub);
    let caller = crate::accounting::Call::current()
        .map(|c| c.caller())
        .unwrap_or_default();
    let cache = repo.deps.packcache.as_ref();
    let mut packs = None;
    let mut fast = None;
    let mut push = None;
    match (service, cache) {
        (Service::UploadPack, Some(cache)) if !advertise => {
            let label = format!(
                "{}/{}",
                repo.repository.storage_name, repo.repository.relative_path
            );
            let s = cache
                .session(repo.path(), label, git_protocol, &caller, &repo.git)
                .map_err(|e| Error::internal(format!("pack-objects hook bridge: {e}")))?;
            let (name, value) = s.env();
            cmd = cmd
                .env(name, value)
                .config("uploadpack.packObjectsHook", cache.hook_config());
            if proto == Some("version=2") && repo.deps.config.pack_objects_cache.direct {
                fast = Some(super::fastpath::FastPath::new(
                    cache.clone(),
                    repo.git.clone(),
                    repo.path(),
                    repo.cmd(Subcommand::ShowRef).flag("--head"),
                    git_protocol,
                    options,
                    &s,
                ));
            }
            packs = Some(s);
        }
        (Service::ReceivePack, Some(cache)) => {
            push = Some(Pushed(cache.clone(), repo.path().to_path_buf()));
        }
        _ => {}
    }
    // The subcommand's default config (what Gitaly sets for fetches and pushes) comes from
    // its description in gitrpc-git.
    if let Service::ReceivePack = service {
        // Every git gets `core.hooksPath` (see `Deps`); the directory lives in the
        // storage, so put it back if the storage was removed and recreated meanwhile.
        repo.deps
            .hooks_dir
            .ensure()
            .map_err(|e| Error::internal(format!("hooks dir: {e}")))?;
    }
    if let (Service::ReceivePack, false, Some(pusher)) = (service, advertise, pusher) {
        // What git passes on to every hook it runs (Gitaly's hook environment); push
        // options reach the hooks only when advertised.
        cmd = cmd.config("receive.advertisePushOptions", "true");
        for (key, value) in pusher.env() {
            cmd = cmd.env(key, value);
        }
        if repo.deps.hooks.any() {
            let push = Push {
                hooks: repo.deps.hooks.clone(),
                timeout: repo.deps.config.hooks.timeout,
                user: User {
                    gl_id: pusher.gl_id.clone(),
                    gl_username: pusher.username.clone(),
                    ..Default::default()
                },
                protocol: match pusher.protocol {
                    crate::pusher::Protocol::Ssh => crate::hooks::Protocol::Ssh,
                    crate::pusher::Protocol::Http => crate::hooks::Protocol::Http,
                },
                repository: gitrpc_proto::gitaly::Repository {
                    gl_repository: pusher.gl_repository.clone(),
                    ..repo.repository.clone()
                },
                repo_path: repo.path.clone(),
            };
            let b = Bridge::open(&repo.deps.bridge_dir, push)
                .map_err(|e| Error::internal(format!("hook bridge: {e}")))?;
            cmd = cmd.env("GITRPC_HOOK_DIR", b.dir().as_os_str().to_owned());
            bridge = Some(b);
        }
    }
    cmd = cmd.client_config(&config);
    if stateless {
        cmd = cmd.flag("--stateless-rpc");
    }
    if advertise {
        cmd = cmd.flag("--advertise-refs");
    }
    if let Some(p) = proto {
        cmd = cmd.env("GIT_PROTOCOL", p);
    }
    if relay_stderr {
        cmd = cmd.stderr_to_caller();
    }
    let gated = match service {
        // With the cache, generations take slots (misses only), not sessions.
        Service::UploadPack if !advertise && packs.is_none() => Some(pktline::Service::UploadPack),
        Service::UploadArchive => Some(pktline::Service::UploadArchive),
        _ => None,
    };
    let pack = gated
        .filter(|_| repo.deps.limits.pack_objects.is_some())
        .map(|s| PackGate {
            limits: repo.deps.limits.clone(),
            request: PackRequest::new(s),
            caller,
        });
    let process = repo.spawn(&cmd.arg(repo.path()).stdin())?;
    Ok(Started {
        process,
        bridge,
        pack,
        packs,
        fast,
        _push: push,
    })
}

/// How git's output becomes response messages.
pub struct Outputs<T> {
    pub stdout: fn(Bytes) -> T,
    /// `None`: stderr is captured for the error message instead of relayed.
    pub stderr: Option<fn(Bytes) -> T>,
    /// `Some`: finish with an exit status message (SSH); `None`: a failed git is an error.
    pub exit: Option<fn(i32) -> T>,
}

/// Feed `input` to git's stdin while streaming its stdout (spooled) and stderr to `sink`;
/// returns when git has exited. Dropping this future (client gone) kills git's group, as
/// does a failure reading the input (e.g. a refused pack slot) or an idle session.
pub async fn pump<T, S>(
    started: Started,
    input: S,
    sink: Sink<T>,
    deps: &Deps,
    out: Outputs<T>,
) -> Result<()>
where
    T: Send + 'static,
    S: Stream<Item = Result<Bytes, Status>> + Send + Unpin + 'static,
{
    let Started {
        mut process,
        bridge: _bridge,
        pack,
        packs,
        fast,
        _push,
    } = started;
    let direct: Arc<Mutex<Option<DirectPack>>> = Default::default();
    let activity = Arc::new(Activity::new(deps.config.transport.idle_timeout));
    let slot = SlotHolder::default();
    let failure: Arc<Mutex<Option<Status>>> = Default::default();
    let stdin = process.take_stdin();
    let mut feeder = Some(tokio::spawn({
        let (activity, slot, failure) = (activity.clone(), slot.0.clone(), failure.clone());
        let direct = direct.clone();
        async move {
            let res = match fast {
                Some(fast) => super::fastpath::feed(input, stdin, fast, &activity, &direct).await,
                None => {
                    let mut stdin = stdin;
                    feed(input, stdin.as_mut(), pack, &activity, &slot).await
                }
            };
            if let Err(status) = res {
                // Recorded before stdin closes, so it is seen once git exits.
                *lock(&failure) = Some(status);
            }
        }
    }));
    let _abort = AbortOnDrop(feeder.as_ref().expect("just set").abort_handle());
    let failed = |failure: &Mutex<Option<Status>>| lock(failure).take().map(input_error);
    let mut stdout = spool(process.take_stdout().expect("piped stdout"), &deps.spool);
    let mut stderr = process.take_stderr();
    let mut err_buf = vec![0u8; 16 * 1024];
    let mut out_done = false;
    while !out_done || stderr.is_some() {
        tokio::select! {
            chunk = stdout.next_chunk(), if !out_done => match chunk.map_err(Error::from)? {
                Some(c) => send(&sink, (out.stdout)(c), &activity).await?,
                None => out_done = true,
            },
            n = async { stderr.as_mut().unwrap().read(&mut err_buf).await }, if stderr.is_some() => match n {
                Ok(0) | Err(_) => stderr = None,
                Ok(n) => {
                    if let Some(f) = out.stderr {
                        send(&sink, f(Bytes::copy_from_slice(&err_buf[..n])), &activity).await?;
                    }
                }
            },
            _ = async { feeder.as_mut().unwrap().await }, if feeder.is_some() => {
                feeder = None;
                if let Some(e) = failed(&failure) {
                    return Err(e);
                }
            },
            _ = activity.expired() => return Err(activity.error()),
        }
    }
    let (status, captured) = process.wait_status().await?;
    if let Some(e) = failed(&failure) {
        return Err(e);
    }
    // A fetch answered from the cache: upload-pack has exited at the end of its input, and
    // everything it wrote before is out; the pack follows.
    let served = lock(&direct).take();
    if let (Some(mut pack), true) = (served, status.success()) {
        loop {
            match pack.next().await {
                Ok(Some(b)) => send(&sink, (out.stdout)(b), &activity).await?,
                Ok(None) => break,
                Err(why) => return Err(Error::internal(format!("pack-objects cache: {why}"))),
            }
        }
    }
    // The cache's generation for this session was refused: answer as a refused slot would.
    if let Some(status) = packs.as_ref().and_then(|p| p.refusal()) {
        return Err(Error::Status(Box::new(status)));
    }
    match out.exit {
        Some(exit) => sink.send(exit(status.code().unwrap_or(255))).await,
        None if status.success() => Ok(()),
        None => Err(Error::internal(format!(
            "git failed ({status}): {captured}"
        ))),
    }
}

/// Copy the client's input to git, taking the pack slot where the input asks for a pack.
async fn feed<S>(
    mut input: S,
    stdin: Option<&mut ChildStdin>,
    mut pack: Option<PackGate>,
    activity: &Activity,
    slot: &Mutex<Option<Permit>>,
) -> Result<(), Status>
where
    S: Stream<Item = Result<Bytes, Status>> + Unpin,
{
    let Some(stdin) = stdin else {
        return Ok(());
    };
    while let Some(chunk) = input.next().await {
        let chunk = chunk?;
        activity.touch();
        let mut rest = &chunk[..];
        if let Some(gate) = &mut pack {
            if let Some(at) = gate.request.feed(&chunk) {
                if stdin.write_all(&chunk[..at]).await.is_err() {
                    break;
                }
                activity.set_busy(true);
                let permit = gate.limits.pack_slot(&gate.caller).await;
                activity.set_busy(false);
                *lock(slot) = permit?;
                pack = None;
                rest = &chunk[at..];
            }
        }
        if stdin.write_all(rest).await.is_err() {
            break; // git closed its stdin; its exit status tells why
        }
    }
    Ok(())
}

/// A failure reading the client's input: refusals (pack slot, message size) keep their
/// status and details; anything else is an internal error.
fn input_error(status: Status) -> Error {
    match status.code() {
        Code::ResourceExhausted => Error::Status(Box::new(status)),
        _ => Error::internal(format!("reading request: {}", status.message())),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Send to the client, as long as the session is not idle meanwhile.
async fn send<T>(sink: &Sink<T>, item: T, activity: &Activity) -> Result<()> {
    tokio::select! {
        r = sink.send(item) => {
            activity.touch();
            r
        }
        _ = activity.expired() => Err(activity.error()),
    }
}

/// The pack slot of a session, released when the session ends (whatever holds a clone).
#[derive(Default)]
struct SlotHolder(Arc<Mutex<Option<Permit>>>);

impl Drop for SlotHolder {
    fn drop(&mut self) {
        lock(&self.0).take();
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert!(protocol("version=2").unwrap().is_some());
        assert!(protocol("").unwrap().is_none());
        assert!(protocol("version=3").is_err());
        assert!(protocol("version=2\nX=y").is_err());
    }
}

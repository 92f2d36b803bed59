//! What SSHService and SmartHTTPService share: checking the client's protocol and config
//! options (against the allowlist of `gitrpc_git::client_config`), starting
//! upload-pack/receive-pack/upload-archive, and pumping bytes between the gRPC streams and
//! git (stdout through the spool).

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gitrpc_git::spool::spool;
use gitrpc_git::{Process, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Status;

use crate::deps::Repo;
use crate::error::{Error, Result};
use crate::hooks::Bridge;
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
    /// A `[pack_objects_limiting]` slot, held while git may generate a pack.
    pub slot: Option<crate::limiter::Permit>,
}

/// Start a transport git process for `repo`. `stateless`/`advertise` select smart HTTP's
/// `--stateless-rpc [--advertise-refs]`; SSH runs full duplex.
pub fn start(
    repo: &Repo<'_>,
    service: Service,
    config: &[String],
    git_protocol: &str,
    stateless: bool,
    advertise: bool,
    relay_stderr: bool,
) -> Result<Started> {
    let config = gitrpc_git::client_config::check(config)?;
    let mut bridge = None;
    let proto = protocol(git_protocol)?;
    let sub = match service {
        Service::UploadPack => Subcommand::UploadPack,
        Service::ReceivePack => Subcommand::ReceivePack,
        Service::UploadArchive => Subcommand::UploadArchive,
    };
    let mut cmd = repo.cmd(sub);
    match service {
        // What Gitaly enables for every fetch: partial clone filters and fetching any
        // reachable object (shallow and partial clones need it).
        Service::UploadPack => {
            cmd = cmd
                .config("uploadpack.allowFilter", "true")
                .config("uploadpack.allowAnySHA1InWant", "true")
        }
        Service::ReceivePack => {
            // Every git gets `core.hooksPath` (see `Deps`); the directory lives in the
            // storage, so put it back if the storage was removed and recreated meanwhile.
            repo.deps
                .hooks_dir
                .ensure()
                .map_err(|e| Error::internal(format!("hooks dir: {e}")))?;
            cmd = cmd.config("receive.denyCurrentBranch", "ignore");
            if let Some(hook) = &repo.deps.hooks.pre_receive {
                let b = Bridge::open(
                    &repo.deps.bridge_dir,
                    hook.clone(),
                    &repo.repository.storage_name,
                    &repo.repository.relative_path,
                )
                .map_err(|e| Error::internal(format!("pre-receive bridge: {e}")))?;
                cmd = cmd.env("GITRPC_HOOK_DIR", b.dir().as_os_str().to_owned());
                bridge = Some(b);
            }
        }
        Service::UploadArchive => {}
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
    let process = cmd.arg(repo.path()).stdin().spawn()?;
    Ok(Started {
        process,
        bridge,
        slot: None,
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
/// returns when git has exited. Dropping this future (client gone) kills git's group.
pub async fn pump<T, S>(
    started: Started,
    input: S,
    sink: Sink<T>,
    spool_config: &gitrpc_git::spool::SpoolConfig,
    out: Outputs<T>,
) -> Result<()>
where
    T: Send + 'static,
    S: Stream<Item = Result<Bytes, Status>> + Send + Unpin + 'static,
{
    let Started {
        mut process,
        bridge: _bridge,
        slot: _slot,
    } = started;
    let stdin = process.take_stdin();
    let feeder = tokio::spawn(async move {
        let mut input = input;
        let Some(mut stdin) = stdin else {
            return Ok(());
        };
        while let Some(chunk) = input.next().await {
            let chunk = chunk?;
            if stdin.write_all(&chunk).await.is_err() {
                break; // git closed its stdin; its exit status tells why
            }
        }
        Ok::<(), Status>(())
    });
    let _abort = AbortOnDrop(feeder.abort_handle());
    let mut stdout = spool(process.take_stdout().expect("piped stdout"), spool_config);
    let mut stderr = process.take_stderr();
    let mut err_buf = vec![0u8; 16 * 1024];
    let mut out_done = false;
    while !out_done || stderr.is_some() {
        tokio::select! {
            chunk = stdout.next_chunk(), if !out_done => match chunk.map_err(Error::from)? {
                Some(c) => sink.send((out.stdout)(c)).await?,
                None => out_done = true,
            },
            n = async { stderr.as_mut().unwrap().read(&mut err_buf).await }, if stderr.is_some() => match n {
                Ok(0) | Err(_) => stderr = None,
                Ok(n) => {
                    if let Some(f) = out.stderr {
                        sink.send(f(Bytes::copy_from_slice(&err_buf[..n]))).await?;
                    }
                }
            },
        }
    }
    let (status, captured) = process.wait_status().await?;
    // git has exited: the rest of the client's input no longer matters, and a client may
    // keep its input open until the response ends (a sidechannel client without its `0000`).
    feeder.abort();
    match feeder.await {
        Ok(Err(status)) if status.code() != tonic::Code::Ok => {
            return Err(Error::internal(format!(
                "reading request: {}",
                status.message()
            )))
        }
        _ => {}
    }
    match out.exit {
        Some(exit) => sink.send(exit(status.code().unwrap_or(255))).await,
        None if status.success() => Ok(()),
        None => Err(Error::internal(format!(
            "git failed ({status}): {captured}"
        ))),
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

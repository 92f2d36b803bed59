//! What SSHService and SmartHTTPService share: checking the client's protocol and config
//! options, starting upload-pack/receive-pack/upload-archive, and pumping bytes between the
//! gRPC streams and git (stdout through the spool).

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

/// Config sections a client may set with `git_config_options`, and keys it may not even
/// inside them (they run code or point git outside the repository).
const ALLOWED_SECTIONS: &[&str] = &["uploadpack.", "transfer.", "receive.", "pack.", "repack."];
const DENIED_KEYS: &[&str] = &["uploadpack.packobjectshook", "receive.procreceiverefs"];

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

/// Check client config options against the policy above.
pub fn check_config(options: &[String]) -> Result<()> {
    for opt in options {
        let (key, _) = gitrpc_git::validate::config_pair(opt)?;
        let key = key.to_ascii_lowercase();
        let allowed = ALLOWED_SECTIONS.iter().any(|s| key.starts_with(s))
            && !DENIED_KEYS.contains(&key.as_str())
            && !key.ends_with("hookspath")
            && !key.contains("command");
        if !allowed {
            return Err(Error::invalid(format!(
                "git config option not allowed: {key:?}"
            )));
        }
    }
    Ok(())
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
    check_config(config)?;
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
            let hooks = repo.deps.hooks_dir.path().to_string_lossy().into_owned();
            cmd = cmd
                .config("core.hooksPath", hooks)
                .config("receive.denyCurrentBranch", "ignore");
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
    for opt in config {
        cmd = cmd.config_checked(opt);
    }
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
    fn config_policy() {
        for ok in [
            "uploadpack.allowFilter=true",
            "receive.maxInputSize=100",
            "pack.threads=1",
        ] {
            assert!(check_config(&[ok.to_string()]).is_ok(), "{ok}");
        }
        for bad in [
            "core.sshCommand=touch /tmp/x",
            "core.hooksPath=/tmp",
            "uploadpack.packObjectsHook=evil",
            "uploadPack.PackObjectsHook=evil",
            "alias.x=!sh",
            "receive.procReceiveRefs=refs",
            "include.path=/etc/gitconfig",
            "noequals",
            "-c=x",
        ] {
            assert!(check_config(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(protocol("version=2").unwrap().is_some());
        assert!(protocol("").unwrap().is_none());
        assert!(protocol("version=3").is_err());
        assert!(protocol("version=2\nX=y").is_err());
    }
}

//! Running a hook executable (a configured `pre-receive`, `update` or `post-receive`) for an
//! operation, under the same rules as git: an absolute program path started with
//! `posix_spawn` (no `pre_exec`, no uid/gid), a cleared environment plus the executor's
//! allowlist and the variables the caller gives, its own process group (killed as a whole
//! when the hook times out or its caller gives up), and the server process named in
//! [`crate::lifetime::OWNER_ENV`]. Its output is kept up to [`OUTPUT_CAP`] bytes a stream.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::{lifetime, Git};

/// Bytes of a hook's stdout, and of its stderr, that are kept.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// A hook to run: the program, its arguments, the variables it gets beside the allowlist,
/// where it runs and what it reads on stdin.
#[derive(Clone, Debug, Default)]
pub struct HookCommand {
    /// Absolute path of the executable.
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub stdin: Vec<u8>,
}

/// How a hook ended.
#[derive(Debug)]
pub enum HookOutcome {
    Exited(ExitStatus),
    /// Still running at the timeout: its process group was killed.
    TimedOut,
}

/// What a hook did.
#[derive(Debug)]
pub struct HookOutput {
    pub outcome: HookOutcome,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Kills the group of a hook that is still running when its run is dropped.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        crate::process::kill_group(self.0, libc::SIGKILL);
    }
}

impl Git {
    /// Run `hook` to completion, or until `timeout` (its process group is killed then).
    /// Fails only if it can't be started.
    pub async fn run_hook(
        &self,
        hook: &HookCommand,
        timeout: Duration,
    ) -> std::io::Result<HookOutput> {
        if !hook.program.is_absolute() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("hook path must be absolute: {}", hook.program.display()),
            ));
        }
        // posix_spawn is kept: an absolute program path, no pre_exec, no uid/gid.
        #[allow(clippy::disallowed_methods)]
        let mut cmd = tokio::process::Command::new(&hook.program);
        cmd.args(&hook.args)
            .env_clear()
            .envs(self.allowed_env().iter().map(|(k, v)| (k, v)))
            .envs(hook.env.iter().map(|(k, v)| (k, v)))
            .env(lifetime::OWNER_ENV, lifetime::Owner::current().tag())
            .current_dir(&hook.cwd)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let group = Group(child.id().map_or(0, |p| p as i32));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let input = hook.stdin.clone();
        let run = async {
            let feed = async move {
                if let Some(mut w) = stdin {
                    // A hook that doesn't read its input is fine (EPIPE ignored).
                    let _ = w.write_all(&input).await;
                }
            };
            let pgid = group.0;
            let wait = async move {
                let status = child.wait().await;
                // Whatever the hook left running in its group goes with it (and so do the
                // pipes they held, which ends the reads).
                crate::process::kill_group(pgid, libc::SIGKILL);
                status
            };
            let (_, out, err, status) = tokio::join!(feed, capped(stdout), capped(stderr), wait);
            (status, out, err)
        };
        match tokio::time::timeout(timeout, run).await {
            Ok((status, stdout, stderr)) => {
                drop(group);
                Ok(HookOutput {
                    outcome: HookOutcome::Exited(status?),
                    stdout,
                    stderr,
                })
            }
            Err(_) => {
                drop(group);
                Ok(HookOutput {
                    outcome: HookOutcome::TimedOut,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                })
            }
        }
    }
}

/// Read `r` to its end, keeping the first [`OUTPUT_CAP`] bytes.
async fn capped(r: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut r) = r else { return kept };
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

//! Programs other than git that gitrpc's tools run: `gitrpc-shell`'s access check and key
//! lookup (an operator's executables). The same door as git's: an absolute path (so
//! `posix_spawn` is kept), a cleared environment plus what the caller sets, stdin from
//! `/dev/null`, its own process group — killed, group-wide, at its timeout or when the run is
//! dropped — and its output kept up to a cap.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::process::{kill_group, TERM_GRACE};

/// Bytes of stdout and of stderr kept (the rest is read and dropped).
pub const OUTPUT_CAP: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("{0}: program path must be absolute")]
    NotAbsolute(PathBuf),
    #[error("start {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no answer within {timeout:?}")]
    TimedOut { path: PathBuf, timeout: Duration },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A program to run, built up like a command line.
#[derive(Clone, Debug)]
pub struct Program {
    path: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

/// How a run ended, with its (capped) output.
#[derive(Clone, Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Program {
    /// `path` must be absolute. The default timeout is 30 s.
    pub fn new(path: impl Into<PathBuf>) -> Result<Program, ExternalError> {
        let path = path.into();
        if !path.is_absolute() {
            return Err(ExternalError::NotAbsolute(path));
        }
        Ok(Program {
            path,
            args: Vec::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(30),
        })
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Program {
        self.args.push(arg.into());
        self
    }

    /// Set a variable (the environment starts empty).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Program {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Program {
        self.timeout = timeout;
        self
    }

    /// Run to completion (or the timeout, which kills its process group).
    pub async fn run(&self) -> Result<Finished, ExternalError> {
        // posix_spawn is kept: the path is absolute and nothing forces a fork.
        #[allow(clippy::disallowed_methods)]
        let mut cmd = tokio::process::Command::new(&self.path);
        cmd.args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| ExternalError::Spawn {
            path: self.path.clone(),
            source,
        })?;
        let group = Group(child.id().map_or(0, |p| p as i32));
        let out = child.stdout.take();
        let err = child.stderr.take();
        let run = async {
            let (stdout, stderr, status) = tokio::join!(capped(out), capped(err), child.wait());
            (stdout, stderr, status)
        };
        let (stdout, stderr, status) =
            tokio::time::timeout(self.timeout, run)
                .await
                .map_err(|_| ExternalError::TimedOut {
                    path: self.path.clone(),
                    timeout: self.timeout,
                })?;
        let status = status.map_err(|source| ExternalError::Io {
            path: self.path.clone(),
            source,
        })?;
        group.done();
        Ok(Finished {
            status,
            stdout,
            stderr,
        })
    }
}

/// The program's process group: killed if the run ends any other way than by its exit.
struct Group(i32);

impl Group {
    /// The leader exited and was reaped: its id may be reused, so the group is left alone.
    fn done(mut self) {
        self.0 = 0;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.0 > 0 {
            kill_group(self.0, libc::SIGTERM);
            let pgid = self.0;
            // The leader is killed and reaped by tokio (kill_on_drop); give the rest of the
            // group the same grace as git's.
            std::thread::spawn(move || {
                std::thread::sleep(TERM_GRACE);
                kill_group(pgid, libc::SIGKILL);
            });
        }
    }
}

/// Read all of `r`, keeping the first [`OUTPUT_CAP`] bytes.
async fn capped(r: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut r) = r else { return kept };
    let mut buf = [0u8; 4096];
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

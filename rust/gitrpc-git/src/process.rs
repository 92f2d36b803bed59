use std::ffi::OsString;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use crate::observer::{Tracked, Usage};
use crate::{Error, Result, Subcommand};

/// How much of git's stderr we keep for error messages.
pub const STDERR_CAP: usize = 10 * 1024;

/// How long a cancelled git gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_millis(500);

/// Collected stdout of a finished command.
#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
}

/// A running git process in its own process group.
///
/// Dropping it before [`Process::wait`] returned cancels it: the whole group gets SIGTERM,
/// then SIGKILL after [`TERM_GRACE`], and the leader is reaped. So a cancelled RPC, whose
/// future is dropped, leaves no git behind.
pub struct Process {
    child: Option<Child>,
    pid: i32,
    sub: Subcommand,
    subcommand: &'static str,
    args: Vec<OsString>,
    started: Instant,
    /// Its row in its `Git`'s process table and its observer; finished when reaped.
    tracked: Option<Tracked>,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    stderr_pipe: Option<ChildStderr>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    /// A pidfd for the child: readable once it has exited, so its rusage can be read before
    /// tokio reaps it. `None` where pidfd_open is unavailable (no usage recorded then).
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("subcommand", &self.subcommand)
            .finish()
    }
}

impl Process {
    pub(crate) fn new(
        mut child: Child,
        sub: Subcommand,
        tracked: Tracked,
        capture_stderr: bool,
    ) -> Self {
        let pid = tracked.info.pid;
        let (subcommand, args) = (tracked.info.subcommand, tracked.info.args.clone());
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut stderr_pipe = child.stderr.take();
        let stderr_task = if capture_stderr {
            stderr_pipe.take().map(|err| {
                let buf = stderr.clone();
                tokio::spawn(drain_capped(err, buf))
            })
        } else {
            None
        };
        Process {
            tracked: Some(tracked),
            pidfd: pidfd_open(pid),
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr_pipe,
            child: Some(child),
            pid,
            sub,
            subcommand,
            args,
            started: Instant::now(),
            stderr,
            stderr_task,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn subcommand(&self) -> Subcommand {
        self.sub
    }

    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Has git exited (killed, say) while we weren't looking? Checked without reaping it.
    pub fn has_exited(&self) -> bool {
        self.child.is_none() || exited(self.pid)
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// stderr, when the command was built with `stderr_to_caller()`.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stderr_pipe.take()
    }

    fn io_err(&self, source: std::io::Error) -> Error {
        Error::Io {
            subcommand: self.subcommand,
            source,
        }
    }

    /// Read all of stdout. Only for commands whose output is known to be small.
    pub async fn read_stdout_to_end(&mut self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        if let Some(mut out) = self.stdout.take() {
            out.read_to_end(&mut buf)
                .await
                .map_err(|e| self.io_err(e))?;
        }
        Ok(buf)
    }

    /// Write `input` to stdin and close it.
    pub async fn write_stdin_and_close(&mut self, input: &[u8]) -> Result<()> {
        if let Some(mut stdin) = self.stdin.take() {
            // A broken pipe means git exited early; its exit status will tell why.
            match stdin.write_all(input).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(self.io_err(e)),
            }
        }
        Ok(())
    }

    /// The captured (capped) stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap())
            .trim()
            .to_string()
    }

    /// Wait for git to exit and reap it; returns its status and captured stderr.
    pub async fn wait_status(mut self) -> Result<(ExitStatus, String)> {
        drop(self.stdin.take());
        // The child stays in `self` while we wait: if this future is dropped (the caller gave
        // up), `Drop` still finds it and kills the group.
        let usage = exit_usage(self.pidfd.take(), self.pid).await;
        let status = self
            .child
            .as_mut()
            .expect("child present until waited")
            .wait()
            .await;
        self.child = None;
        // The group may hold children of git (e.g. pack-objects): make sure none outlive it.
        kill_group(self.pid, libc::SIGKILL);
        if let Some(t) = self.tracked.take() {
            t.finish(usage);
        }
        let status = status.map_err(|e| self.io_err(e))?;
        if let Some(t) = self.stderr_task.take() {
            let _ = t.await;
        }
        Ok((status, self.stderr()))
    }

    /// Wait for git to exit; a non-zero exit becomes an error with stderr, classified by
    /// [`Error::failed`].
    pub async fn wait(self) -> Result<()> {
        let sub = self.sub;
        let (status, stderr) = self.wait_status().await?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::failed(sub, status.to_string(), stderr))
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = self.pid;
        let sub = self.subcommand;
        let pidfd = self.pidfd.take();
        let tracked = self.tracked.take();
        drop(self.stdin.take());
        drop(self.stdout.take());
        drop(self.stderr_pipe.take());
        if let Some(t) = self.stderr_task.take() {
            t.abort();
        }
        tracing::debug!(pid, git = sub, "cancelling git process group");
        kill_group(pid, libc::SIGTERM);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let deadline = Instant::now() + TERM_GRACE;
                    while Instant::now() < deadline && !exited(pid) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    kill_group(pid, libc::SIGKILL);
                    // A cancelled git's CPU and memory count too (it is dead: no wait here).
                    let usage = exit_usage(pidfd, pid).await;
                    let _ = child.wait().await;
                    if let Some(t) = tracked {
                        t.finish(usage);
                    }
                });
            }
            Err(_) => {
                kill_group(pid, libc::SIGKILL);
                let mut status = 0;
                // SAFETY: plain waitpid on our own child, which was just SIGKILLed.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                if let Some(t) = tracked {
                    t.finish(None);
                }
            }
        }
    }
}

fn pidfd_open(pid: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if pid <= 0 {
        return None;
    }
    // SAFETY: pidfd_open(2) on our own unreaped child; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::PIDFD_NONBLOCK) };
    // SAFETY: a fresh fd we own.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Wait (asynchronously) for our child `pid` to exit and read its rusage without reaping it,
/// so tokio's own wait still reaps it normally (`None` without a pidfd). The rusage comes
/// from the raw waitid(2) syscall, whose fifth argument glibc's wrapper doesn't expose.
async fn exit_usage(pidfd: Option<std::os::fd::OwnedFd>, pid: i32) -> Option<Usage> {
    let pidfd = pidfd?;
    // SAFETY: an OwnedFd, moved in: it stays open and the same until the AsyncFd drops it.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }
    .ok()?;
    let _ready = fd.readable().await.ok()?;
    // SAFETY: plain data out-parameters; WNOWAIT leaves the zombie for tokio to reap.
    let ru = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let mut ru: libc::rusage = std::mem::zeroed();
        let r = libc::syscall(
            libc::SYS_waitid,
            libc::P_PID,
            pid,
            &mut info as *mut libc::siginfo_t,
            libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            &mut ru as *mut libc::rusage,
        );
        if r != 0 || info.si_pid() == 0 {
            return None;
        }
        ru
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Some(Usage {
        user: tv(ru.ru_utime),
        system: tv(ru.ru_stime),
        max_rss: ru.ru_maxrss.max(0) as u64 * 1024,
    })
}

/// Signal every process in the group led by `pgid` (ESRCH ignored).
pub(crate) fn kill_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// Has our child `pid` exited? Checked without reaping it, so its pid (and so the process
/// group id) stays reserved until we reap.
fn exited(pid: i32) -> bool {
    // SAFETY: waitid with WNOWAIT only inspects; siginfo is zeroed plain data.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r != 0 || info.si_pid() != 0
    }
}

async fn drain_capped(mut r: impl AsyncRead + Unpin, buf: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut b = buf.lock().unwrap();
                let room = STDERR_CAP.saturating_sub(b.len());
                b.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

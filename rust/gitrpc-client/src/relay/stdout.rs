//! This process's stdout for the relay: when it is a pipe or a socket (sshd's, git's), written
//! without blocking through the tokio reactor — no blocking-pool thread and no extra copy per
//! write, which tokio's `Stdout` costs — else (a terminal, a file) tokio's `Stdout`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::AsyncWrite;

pub struct Stdout(Inner);

enum Inner {
    /// A duplicate of fd 1 (same open file), registered with the reactor.
    Reactor(AsyncFd<OwnedFd>),
    Tokio(tokio::io::Stdout),
}

/// Is fd 1 a pipe or a socket?
fn pipe_or_socket() -> bool {
    // SAFETY: fstat into a zeroed stat of ours.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(1, &mut st) } != 0 {
        return false;
    }
    matches!(st.st_mode & libc::S_IFMT, libc::S_IFIFO | libc::S_IFSOCK)
}

/// Make fd 1 (our end of a pipe or socket: nobody else writes it) non-blocking, or blocking
/// again.
fn set_nonblocking(on: bool) -> bool {
    // SAFETY: fcntl on fd 1 with plain integer arguments.
    unsafe {
        let flags = libc::fcntl(1, libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        flags >= 0 && libc::fcntl(1, libc::F_SETFL, flags) == 0
    }
}

impl Drop for Stdout {
    /// Blocking again, for whoever writes fd 1 next (the streaming relay, after a fallback).
    fn drop(&mut self) {
        if let Inner::Reactor(_) = self.0 {
            set_nonblocking(false);
        }
    }
}

impl Stdout {
    /// Must be called inside a tokio runtime.
    pub fn new() -> Stdout {
        if pipe_or_socket() && set_nonblocking(true) {
            // SAFETY: duplicates fd 1; the new fd is ours alone.
            let dup = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
            if dup >= 0 {
                // SAFETY: `dup` is a fresh fd nothing else owns.
                let owned = unsafe { OwnedFd::from_raw_fd(dup) };
                // SAFETY: the OwnedFd stays open and the same until the AsyncFd drops it.
                let registered = unsafe {
                    AsyncFd::register_with_interest(owned, tokio::io::Interest::WRITABLE)
                };
                if let Ok(fd) = registered {
                    return Stdout(Inner::Reactor(fd));
                }
            }
        }
        Stdout(Inner::Tokio(tokio::io::stdout()))
    }
}

impl AsyncWrite for Stdout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            Inner::Tokio(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Reactor(fd) => loop {
                let mut ready = std::task::ready!(fd.poll_write_ready(cx))?;
                let r = ready.try_io(|fd| {
                    let raw = fd.get_ref().as_raw_fd();
                    // SAFETY: writes from a valid slice to our own fd.
                    let n = unsafe { libc::write(raw, buf.as_ptr().cast(), buf.len()) };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                });
                if let Ok(r) = r {
                    return Poll::Ready(r);
                }
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Tokio(s) => Pin::new(s).poll_flush(cx),
            Inner::Reactor(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Tokio(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Reactor(_) => Poll::Ready(Ok(())),
        }
    }
}

//! The pipes between the server and a pack-objects hook: the FIFOs of a session, and the
//! hook's own standard output reached through `/proc` (see [`open_direct`]).

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;

/// How long the hook has to open its FIFOs after sending its request.
const OPEN_WITHIN: Duration = Duration::from_secs(10);

pub fn mkfifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Open a FIFO the hook is about to read, without blocking: `ENXIO` until it opened it.
pub async fn open_fifo(path: &Path) -> std::io::Result<pipe::Sender> {
    let started = Instant::now();
    loop {
        match pipe::OpenOptions::new().open_sender(path) {
            Ok(tx) => {
                grow_pipe(&tx);
                return Ok(tx);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && started.elapsed() < OPEN_WITHIN => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The standard output of hook `pid` — the pipe upload-pack reads the pack from — opened
/// through `/proc`, if that process is this session's hook (its environment names the
/// session's directory `dir`: a pid seen from another pid namespace, or reused, is not
/// written to) and its output is a pipe we may open. `None` otherwise: the pack then goes
/// through the hook's `out` FIFO and `cat`.
///
/// The hook stays alive while we serve it (it waits for `out` to close), so the pid can't
/// be reused between the check and the open.
pub fn open_direct(pid: &str, dir: &Path) -> Option<pipe::Sender> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let mut want = format!("{}=", super::bridge::DIR_ENV).into_bytes();
    want.extend_from_slice(dir.as_os_str().as_bytes());
    if !environ.split(|&b| b == 0).any(|var| var == want.as_slice()) {
        return None;
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/fd/1"))
        .ok()?;
    // Refuses anything but a FIFO (a hook writing to a file gets its pack through `out`).
    let tx = pipe::Sender::from_file(f).ok()?;
    grow_pipe(&tx);
    Some(tx)
}

/// Copy `[at, at + len)` of `file` into the pipe `out`: `splice` (no copy through our
/// memory), or `pread` and `write` where the file can't be spliced.
pub async fn copy_range(
    file: &std::fs::File,
    at: u64,
    len: u64,
    out: &mut pipe::Sender,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut done = 0u64;
    while done < len {
        out.writable().await?;
        let spliced = out.try_io(|| {
            let mut off = (at + done) as libc::loff_t;
            // SAFETY: splice(2) between two descriptors we hold open, with a valid offset
            // pointer for the file and none for the pipe.
            let n = unsafe {
                libc::splice(
                    file.as_raw_fd(),
                    &mut off,
                    out.as_raw_fd(),
                    std::ptr::null_mut(),
                    (len - done) as usize,
                    libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                )
            };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
        });
        match spliced {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "cache file shorter than its entry",
                ))
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                use std::os::unix::fs::FileExt;
                // At most one reader's chunk (`READ_CHUNK`).
                let mut buf = vec![0u8; (len - done) as usize];
                file.read_exact_at(&mut buf, at + done)?;
                out.write_all(&buf).await?;
                done = len;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ask for a 1 MiB pipe (fewer wake-ups per pack); the default stays if refused.
pub fn grow_pipe(tx: &pipe::Sender) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int.
    unsafe { libc::fcntl(tx.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
}

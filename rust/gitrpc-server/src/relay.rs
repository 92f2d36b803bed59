//! Fetching from another server's upload-pack with a plain `git fetch`: git's ssh transport
//! runs our relay script ([`crate::hooks::RELAY_SCRIPT`]) as `GIT_SSH_COMMAND`; the script
//! and a task of ours meet in a private directory of FIFOs (`ctl`, `in`, `out`, `err`), and
//! the task relays git's requests to the other server's `SSHUploadPack` and its answers
//! back. No helper binary is needed, so embedded servers (C, Ruby) fetch the same way as
//! `gitrpcd`. The directory and task go with the [`Relay`] (dropped with the call); the
//! directory's name carries this process, so housekeeping removes one a crash left.
//!
//! The handshake: the script opens `in` read-write (fd 3, so its last close is the end of
//! git's input), writes `start <GIT_PROTOCOL>` to `ctl`, and reads `err` and `out` in the
//! background. We then open `in` for reading (it has a writer), open `out` and `err` for
//! writing (retrying until the script's readers are there), call upload-pack, and write its
//! exit status to `rc` before closing `out` and `err`; the script exits with it.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gitrpc_git::Command;
use gitrpc_proto::gitaly::{Repository, SshUploadPackRequest};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use crate::hooks::RELAY;
use crate::remote::RemoteServer;
use crate::tempdir::random_hex;

/// The URL git fetches from (any ssh URL: the script ignores its arguments).
pub const URL: &str = "ssh://gitrpc/internal.git";

/// How long the script gets to open its ends of `out` and `err`.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// One fetch's relay (see the module docs).
pub struct Relay {
    dir: PathBuf,
    task: tokio::task::AbortHandle,
}

impl Relay {
    /// Make the FIFOs under `base` and start relaying to `remote`'s upload-pack of `source`.
    pub fn open(base: &Path, remote: RemoteServer, source: Repository) -> std::io::Result<Relay> {
        std::fs::create_dir_all(base)?;
        let dir = base.join(gitrpc_git::lifetime::owned_name("relay", &random_hex(8)));
        std::fs::create_dir(&dir)?;
        let ctl = (|| {
            for f in ["ctl", "in", "out", "err"] {
                mkfifo(&dir.join(f))?;
            }
            pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(dir.join("ctl"))
        })();
        let ctl = match ctl {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let d = dir.clone();
        let task = tokio::spawn(async move {
            let mut lines = BufReader::new(ctl).lines();
            // git connects once per fetch; each `start` line is one connection.
            while let Ok(Some(line)) = lines.next_line().await {
                let protocol = line.strip_prefix("start").unwrap_or_default().trim();
                if let Err(e) = session(&d, protocol, &remote, &source).await {
                    tracing::warn!(error = %e, "fetch relay failed");
                }
            }
        });
        Ok(Relay {
            dir,
            task: task.abort_handle(),
        })
    }

    /// `cmd` (a `git fetch` from [`URL`]) set up to go through this relay; `hooks` is the
    /// server's hooks directory, which holds the script.
    pub fn apply(&self, cmd: Command, hooks: &Path) -> Command {
        cmd.config("protocol.version", "2")
            .env("GIT_SSH_COMMAND", sq_quote(&hooks.join(RELAY)))
            // With `simple`, git falls back to protocol v0 and exports no GIT_PROTOCOL.
            .env("GIT_SSH_VARIANT", "ssh")
            .env("GITRPC_RELAY_DIR", self.dir.as_os_str().to_os_string())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `'path'` for `sh`, with `'` as `'\''`.
fn sq_quote(path: &Path) -> std::ffi::OsString {
    let mut out = b"'".to_vec();
    for &b in path.as_os_str().as_bytes() {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    std::ffi::OsString::from(std::ffi::OsStr::from_bytes(&out))
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Open a FIFO for writing once its reader is there (`ENXIO` until then).
async fn open_writer(path: &Path) -> std::io::Result<pipe::Sender> {
    let start = Instant::now();
    loop {
        match pipe::OpenOptions::new().open_sender(path) {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && start.elapsed() < OPEN_TIMEOUT => {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            other => return other,
        }
    }
}

/// One connection: git's input from `in` to the other server's upload-pack, its output to
/// `out` and `err`, its exit status to `rc`.
async fn session(
    dir: &Path,
    protocol: &str,
    remote: &RemoteServer,
    source: &Repository,
) -> std::io::Result<()> {
    let _ = std::fs::remove_file(dir.join("rc"));
    let mut input = pipe::OpenOptions::new().open_receiver(dir.join("in"))?;
    let mut out = open_writer(&dir.join("out")).await?;
    let mut err = open_writer(&dir.join("err")).await?;
    let (tx, rx) = mpsc::channel(4);
    let first = SshUploadPackRequest {
        repository: Some(source.clone()),
        // Only what git's ssh transport would pass (`version=2`).
        git_protocol: Some(protocol)
            .filter(|p| p.starts_with("version="))
            .unwrap_or_default()
            .to_string(),
        git_config_options: vec!["uploadpack.allowAnySHA1InWant=true".into()],
        ..Default::default()
    };
    let _ = tx.send(first).await;
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match input.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let msg = SshUploadPackRequest {
                        stdin: buf[..n].to_vec(),
                        ..Default::default()
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut rc = 128;
    match remote.ssh_upload_pack(requests).await {
        Ok(mut responses) => loop {
            match responses.message().await {
                Ok(Some(m)) => {
                    if !m.stdout.is_empty() && out.write_all(&m.stdout).await.is_err() {
                        break; // git went away
                    }
                    if !m.stderr.is_empty() {
                        let _ = err.write_all(&m.stderr).await;
                    }
                    if let Some(s) = m.exit_status {
                        rc = s.value;
                    }
                }
                Ok(None) => break,
                Err(s) => {
                    let msg = format!("gitrpc: server {}: {}\n", remote.address(), s.message());
                    let _ = err.write_all(msg.as_bytes()).await;
                    rc = 128;
                    break;
                }
            }
        },
        Err(e) => {
            let _ = err.write_all(format!("gitrpc: {e}\n").as_bytes()).await;
        }
    }
    reader.abort();
    // The status first: the script reads it once `out` and `err` are closed.
    let tmp = dir.join("rc.tmp");
    std::fs::write(&tmp, format!("{rc}\n"))?;
    std::fs::rename(&tmp, dir.join("rc"))?;
    drop(out);
    drop(err);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_for_sh() {
        assert_eq!(
            super::sq_quote(std::path::Path::new("/a b/it's")),
            "'/a b/it'\\''s'"
        );
    }
}

//! Pre-receive hooks implemented by the embedding program (a Rust closure; the Ruby gem turns
//! a block into one) instead of an executable.
//!
//! git runs hooks as child processes of `receive-pack`, so the hook must reach back into the
//! server that started the push. For each push we make a private directory with two FIFOs and
//! pass it to git as `GITRPC_HOOK_DIR`; the `pre-receive` script in our hooks directory
//! ([`SCRIPT`]) writes the ref updates (and push options) into `in`, terminated by a `.` line,
//! and reads the verdict from `out`: `ok` or `reject`, then message lines shown to the pusher,
//! then `.`. A task of ours ([`Bridge`]) answers by calling the [`PreReceiveHook`]. Both FIFOs
//! are opened read-write by the server, so opening them never blocks the script and the
//! verdict waits in the pipe until the script reads it. The bridge (task, FIFOs, directory)
//! is dropped with the push: nothing is left behind if git, the hook or the client dies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

use crate::tempdir::random_hex;

/// One ref update of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefChange {
    pub old_oid: String,
    pub new_oid: String,
    pub reference: String,
}

/// What a pre-receive hook decides on: the repository and every ref update of one push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreReceive {
    pub storage: String,
    pub relative_path: String,
    pub changes: Vec<RefChange>,
    /// `git push -o ...` values (only when the repository sets `receive.advertisePushOptions`).
    pub push_options: Vec<String>,
}

/// A pre-receive hook's refusal: the message shown to the pusher (empty: a generic one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

impl From<String> for Rejected {
    fn from(message: String) -> Rejected {
        Rejected(message)
    }
}

impl From<&str> for Rejected {
    fn from(message: &str) -> Rejected {
        Rejected(message.to_string())
    }
}

/// Accepts (`Ok`) or rejects (`Err`, with the message for the pusher) a push.
pub type PreReceiveHook =
    Arc<dyn Fn(PreReceive) -> BoxFuture<'static, Result<(), Rejected>> + Send + Sync>;

/// Hooks an embedder supplies in code.
#[derive(Clone, Default)]
pub struct Hooks {
    pub pre_receive: Option<PreReceiveHook>,
}

/// `GIT_SSH_COMMAND` of a fetch from another server (`crate::relay`): git's ssh transport,
/// relayed through FIFOs in `$GITRPC_RELAY_DIR` to a task of ours that calls that server's
/// upload-pack. Installed in the hooks directory as [`RELAY`] (git runs no file of that
/// name as a hook). Two traps: the background `cat`s must not inherit fd 3 (the server would
/// never see the end of git's input), and the stdin-copying `cat` must run in the foreground
/// (`sh` gives background jobs `/dev/null` as stdin).
pub const RELAY_SCRIPT: &str = r#"#!/bin/sh
# gitrpc: git's ssh transport for server-to-server fetches (see rust/gitrpc-server/src/relay.rs)
d="$GITRPC_RELAY_DIR"
if [ -z "$d" ] || [ ! -p "$d/ctl" ]; then
  echo "gitrpc: relay bridge missing" >&2
  exit 128
fi
exec 3<>"$d/in"
printf 'start %s\n' "${GIT_PROTOCOL:-}" > "$d/ctl"
cat "$d/err" >&2 3>&- &
e=$!
cat "$d/out" 3>&- &
o=$!
cat >&3
exec 3>&-
wait "$o"
wait "$e"
rc=128
[ -f "$d/rc" ] && read -r rc < "$d/rc"
exit "$rc"
"#;

/// The file name of [`RELAY_SCRIPT`] in the hooks directory.
pub const RELAY: &str = "ssh-relay";

/// The `pre-receive` executable installed when a [`PreReceiveHook`] is set.
pub const SCRIPT: &str = r#"#!/bin/sh
# gitrpc: hands this push's ref updates to the server that started it and waits for its
# verdict (see rust/gitrpc-server/src/hooks.rs).
d="$GITRPC_HOOK_DIR"
if [ -z "$d" ] || [ ! -p "$d/in" ]; then
  echo "gitrpc: pre-receive bridge missing; push refused" >&2
  exit 1
fi
{
  i=0
  while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
    eval "v=\"\$GIT_PUSH_OPTION_$i\""
    printf 'option %s\n' "$v"
    i=$((i + 1))
  done
  cat
  echo .
} > "$d/in"
verdict=
{
  IFS= read -r verdict
  while IFS= read -r line && [ "$line" != . ]; do
    printf '%s\n' "$line" >&2
  done
} < "$d/out"
[ "$verdict" = ok ]
"#;

/// Longest rejection message passed on to the pusher.
const MAX_MESSAGE: usize = 4096;

/// The server side of one push's hook channel. Dropping it stops the task and removes the
/// FIFOs.
pub struct Bridge {
    dir: PathBuf,
    task: tokio::task::AbortHandle,
}

impl Bridge {
    /// Make the FIFOs under `base` and start answering them with `hook`.
    pub fn open(
        base: &Path,
        hook: PreReceiveHook,
        storage: &str,
        relative_path: &str,
    ) -> std::io::Result<Bridge> {
        std::fs::create_dir_all(base)?;
        let dir = base.join(gitrpc_git::lifetime::owned_name("push", &random_hex(8)));
        std::fs::create_dir(&dir)?;
        let bridge = |dir: &Path| -> std::io::Result<(pipe::Receiver, pipe::Sender)> {
            mkfifo(&dir.join("in"))?;
            mkfifo(&dir.join("out"))?;
            let rx = pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(dir.join("in"))?;
            let tx = pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(dir.join("out"))?;
            Ok((rx, tx))
        };
        let (rx, tx) = match bridge(&dir) {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let storage = storage.to_string();
        let relative_path = relative_path.to_string();
        let task = tokio::spawn(async move {
            let _ = answer(rx, tx, hook, storage, relative_path).await;
        });
        Ok(Bridge {
            dir,
            task: task.abort_handle(),
        })
    }

    /// The value for `GITRPC_HOOK_DIR`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Read one request from the script, ask the hook, write the verdict.
async fn answer(
    rx: pipe::Receiver,
    mut tx: pipe::Sender,
    hook: PreReceiveHook,
    storage: String,
    relative_path: String,
) -> std::io::Result<()> {
    let mut lines = BufReader::new(rx).lines();
    let mut event = PreReceive {
        storage,
        relative_path,
        changes: Vec::new(),
        push_options: Vec::new(),
    };
    let mut malformed = None;
    while let Some(line) = lines.next_line().await? {
        if line == "." {
            break;
        }
        if let Some(opt) = line.strip_prefix("option ") {
            event.push_options.push(opt.to_string());
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(old), Some(new), Some(name)) => event.changes.push(RefChange {
                old_oid: old.to_string(),
                new_oid: new.to_string(),
                reference: name.to_string(),
            }),
            _ => malformed = Some(line),
        }
    }
    let verdict = match malformed {
        Some(line) => Err(Rejected(format!("gitrpc: malformed hook input {line:?}"))),
        // A panicking hook rejects the push rather than leaving the script waiting.
        None => match tokio::spawn(hook(event)).await {
            Ok(v) => v,
            Err(_) => Err(Rejected::from("pre-receive hook failed")),
        },
    };
    let reply = match verdict {
        Ok(()) => "ok\n.\n".to_string(),
        Err(Rejected(msg)) => {
            let mut msg = if msg.is_empty() {
                "push rejected by pre-receive hook".to_string()
            } else {
                msg
            };
            if msg.len() > MAX_MESSAGE {
                let mut cut = MAX_MESSAGE;
                while !msg.is_char_boundary(cut) {
                    cut -= 1;
                }
                msg.truncate(cut);
            }
            let body: String = msg
                .lines()
                .map(|l| if l == "." { ". " } else { l })
                .flat_map(|l| [l, "\n"])
                .collect();
            format!("reject\n{body}.\n")
        }
    };
    tx.write_all(reply.as_bytes()).await?;
    tx.flush().await?;
    // Keep our end open until the push ends (the bridge is dropped): closing the last writer
    // before the script has read would discard the verdict.
    std::future::pending::<()>().await;
    Ok(())
}

/// A per-server hooks directory, removed when the server's dependencies are dropped. Every
/// git the server starts gets it as `core.hooksPath`, so repositories' own hooks never run.
pub struct HooksDir {
    path: PathBuf,
    pre_receive: Option<PathBuf>,
    bridged: bool,
}

impl HooksDir {
    pub(crate) fn create(
        base: &Path,
        pre_receive: Option<&Path>,
        bridged: bool,
    ) -> std::io::Result<HooksDir> {
        let hooks = HooksDir {
            path: // Named after this process, so housekeeping can remove it once we are gone.
            base.join(gitrpc_git::lifetime::owned_name(
                "hooks",
                &crate::tempdir::random_hex(6),
            )),
            pre_receive: pre_receive.map(|p| p.canonicalize()).transpose()?,
            bridged,
        };
        hooks.fill()?;
        Ok(hooks)
    }

    fn fill(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.path)?;
        let relay = self.path.join(RELAY);
        std::fs::write(&relay, RELAY_SCRIPT)?;
        std::fs::set_permissions(&relay, std::fs::Permissions::from_mode(0o755))?;
        let target = self.path.join("pre-receive");
        if self.bridged {
            std::fs::write(&target, SCRIPT)?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        } else if let Some(exe) = &self.pre_receive {
            std::os::unix::fs::symlink(exe, target)?;
        }
        Ok(())
    }

    /// Re-create the directory if it is gone (its storage was removed and recreated while
    /// the server ran), so a configured pre-receive hook keeps deciding pushes.
    pub fn ensure(&self) -> std::io::Result<()> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.fill(),
            Err(e) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HooksDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

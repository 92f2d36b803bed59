//! Hooks in code for pushes: git runs hooks as child processes of `receive-pack`, so a hook
//! given in code must be reached from there.
//!
//! For each push with a callback we make a private directory with two FIFOs and pass it to
//! git as `GITRPC_HOOK_DIR`; the hook script in our hooks directory ([`SCRIPT`], installed
//! under the name of each hook that has a callback) writes a request into `in`: `hook
//! <name>`, `quarantine <dir>` (pre-receive: git's `GIT_QUARANTINE_PATH`), `option <value>`
//! lines, the ref updates (`<old> <new> <ref>`), and `.`; then it reads the verdict from
//! `out`: `ok` or `reject`, message lines shown to the pusher, `.`. A task of ours
//! ([`Bridge`]) answers the requests one by one (git runs a push's hooks one after
//! another). Both FIFOs are opened read-write by the server, so opening them never blocks
//! the script and a verdict waits in the pipe until the script reads it. The bridge (task,
//! FIFOs, directory) is dropped with the push: nothing is left behind if git, the hook or
//! the client dies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gitrpc_proto::gitaly::Repository;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

use super::run::run_callback;
use super::{HookEvent, HookKind, Hooks, Protocol, RefChange, User};
use crate::tempdir::random_hex;

/// The hook executable installed for a hook given in code; `$0`'s name says which hook.
pub const SCRIPT: &str = r#"#!/bin/sh
# gitrpc: hands this hook's input to the server that started the push and waits for its
# verdict (see rust/gitrpc-server/src/hooks/bridge.rs).
d="$GITRPC_HOOK_DIR"
hook=${0##*/}
if [ -z "$d" ] || [ ! -p "$d/in" ]; then
  echo "gitrpc: $hook bridge missing; push refused" >&2
  exit 1
fi
{
  printf 'hook %s\n' "$hook"
  if [ -n "$GIT_QUARANTINE_PATH" ]; then
    printf 'quarantine %s\n' "$GIT_QUARANTINE_PATH"
  fi
  i=0
  while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
    eval "v=\"\$GIT_PUSH_OPTION_$i\""
    printf 'option %s\n' "$v"
    i=$((i + 1))
  done
  if [ "$hook" = update ]; then
    printf '%s %s %s\n' "$2" "$3" "$1"
  else
    cat
  fi
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

/// Longest message passed on to the pusher.
const MAX_MESSAGE: usize = 4096;

/// What every hook event of one push shares.
pub struct Push {
    pub hooks: Hooks,
    pub timeout: Duration,
    pub user: User,
    pub protocol: Protocol,
    /// The repository of the push as the request named it.
    pub repository: Repository,
    /// Its path (quarantines named by git must be inside it).
    pub repo_path: PathBuf,
}

/// The server side of one push's hook channel. Dropping it stops the task and removes the
/// FIFOs.
pub struct Bridge {
    dir: PathBuf,
    task: tokio::task::AbortHandle,
}

impl Bridge {
    /// Make the FIFOs under `base` and start answering them.
    pub fn open(base: &Path, push: Push) -> std::io::Result<Bridge> {
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
        let task = tokio::spawn(async move {
            let _ = answer(rx, tx, push).await;
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

/// One request of the script, as read from `in`.
#[derive(Default)]
struct Request {
    hook: Option<HookKind>,
    quarantine: Option<String>,
    options: Vec<String>,
    changes: Vec<RefChange>,
    malformed: Option<String>,
}

/// Read one request up to its `.` line; `None` at EOF.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> std::io::Result<Option<Request>> {
    let mut r = Request::default();
    let mut any = false;
    while let Some(line) = lines.next_line().await? {
        any = true;
        if line == "." {
            return Ok(Some(r));
        }
        if let Some(h) = line.strip_prefix("hook ") {
            r.hook = HookKind::from_name(h);
            if r.hook.is_none() {
                r.malformed = Some(line);
            }
        } else if let Some(q) = line.strip_prefix("quarantine ") {
            r.quarantine = Some(q.to_string());
        } else if let Some(opt) = line.strip_prefix("option ") {
            r.options.push(opt.to_string());
        } else {
            let mut parts = line.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(old), Some(new), Some(name)) => r.changes.push(RefChange {
                    old_oid: old.to_string(),
                    new_oid: new.to_string(),
                    reference: name.to_string(),
                }),
                _ => r.malformed = Some(line),
            }
        }
    }
    Ok(any.then_some(r))
}

/// `git_object_directory` of a push's quarantine (`objects/tmp_objdir-incoming-...`), if
/// `dir` (what git named) is a quarantine directory of the repository at `repo`.
fn quarantine_dir(repo: &Path, dir: &str) -> Option<String> {
    let real = Path::new(dir).canonicalize().ok()?;
    let objects = repo.join("objects").canonicalize().ok()?;
    let name = real.file_name()?.to_str()?;
    (real.parent()? == objects && name.starts_with("tmp_objdir-"))
        .then(|| format!("objects/{name}"))
}

/// Answer the script's requests until the push ends.
async fn answer(rx: pipe::Receiver, mut tx: pipe::Sender, push: Push) -> std::io::Result<()> {
    let mut lines = BufReader::new(rx).lines();
    while let Some(req) = read_request(&mut lines).await? {
        let kind = req.hook.unwrap_or(HookKind::PreReceive);
        let verdict = match (&req.malformed, push.hooks.get(kind)) {
            (Some(line), _) => Err(format!("gitrpc: malformed hook input {line:?}")),
            (None, None) => Ok(()),
            (None, Some(f)) => {
                let mut repository = push.repository.clone();
                if let Some(q) = req
                    .quarantine
                    .as_deref()
                    .and_then(|q| quarantine_dir(&push.repo_path, q))
                {
                    repository.git_object_directory = q;
                    repository.git_alternate_object_directories = vec!["objects".to_string()];
                }
                let event = HookEvent {
                    kind,
                    user: push.user.clone(),
                    protocol: push.protocol,
                    repository,
                    changes: req.changes,
                    push_options: if kind == HookKind::Update {
                        Vec::new()
                    } else {
                        req.options
                    },
                };
                run_callback(f, event, push.timeout)
                    .await
                    .map_err(|r| r.message)
            }
        };
        let reply = match verdict {
            Ok(()) => "ok\n.\n".to_string(),
            // post-receive can't reject: its message is only shown.
            Err(msg) if kind == HookKind::PostReceive => format!("ok\n{}.\n", lines_of(msg)),
            Err(msg) if msg.is_empty() => {
                format!("reject\npush rejected by {} hook\n.\n", kind.as_str())
            }
            Err(msg) => format!("reject\n{}.\n", lines_of(msg)),
        };
        tx.write_all(reply.as_bytes()).await?;
        tx.flush().await?;
    }
    // Keep our end open until the push ends (the bridge is dropped): closing the last writer
    // before the script has read would discard the verdict.
    std::future::pending::<()>().await;
    Ok(())
}

/// A message as lines for the script (capped; a line `.` would end it early).
fn lines_of(mut msg: String) -> String {
    if msg.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
    }
    msg.lines()
        .map(|l| if l == "." { ". " } else { l })
        .flat_map(|l| [l, "\n"])
        .collect()
}

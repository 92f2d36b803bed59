//! Reference transactions over `git update-ref --stdin -z` (Gitaly's `updateref.Updater`).
//!
//! [`RefTransaction::start`] starts git and a transaction; updates are queued and sent with
//! [`RefTransaction::prepare`], which locks every reference and checks every old value (git
//! answers `prepare: ok`, or exits with a message [`RefError`] classifies);
//! [`RefTransaction::commit`] writes them all, or none. Between prepare and commit the
//! references stay locked, so a caller can do more work under the locks (moving quarantined
//! objects into place, say). A transaction dropped before it was committed is abandoned: git
//! is killed, and it removes its locks on the way out; [`RefTransaction::abort`] does the
//! same politely.

use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};

use crate::{Command, Error, Git, Process, Result, Subcommand};

const SUB: &str = "update-ref";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Started,
    Prepared,
}

/// A running reference transaction; see the module documentation.
pub struct RefTransaction {
    process: Option<Process>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Updates not yet sent (they go with `prepare`).
    queued: Vec<u8>,
    state: State,
}

impl std::fmt::Debug for RefTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefTransaction")
            .field("state", &self.state)
            .finish()
    }
}

fn proto(detail: impl Into<String>) -> Error {
    Error::Protocol {
        subcommand: SUB,
        detail: detail.into(),
    }
}

/// A field of a command: no NUL (it separates fields with `-z`).
fn field<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    if value.contains('\0') {
        return Err(Error::invalid(format!("{what} can't contain NUL")));
    }
    Ok(value)
}

/// An object id: hex digits (the zero id included), or nothing (`""`: any value).
fn oid<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(format!("invalid {what}: {value:?}")));
    }
    Ok(value)
}

impl RefTransaction {
    /// Start a transaction in the repository at `git_dir`.
    pub async fn start(git: &Git, git_dir: &Path) -> Result<RefTransaction> {
        RefTransaction::start_with(git, Command::in_repo(git_dir, Subcommand::UpdateRef)).await
    }

    /// Start a transaction with `cmd`, an `update-ref` command of the caller's making (its
    /// repository, and environment such as a quarantine's object directories); `--stdin -z`
    /// is added.
    pub async fn start_with(git: &Git, cmd: Command) -> Result<RefTransaction> {
        if cmd.subcommand() != Subcommand::UpdateRef {
            return Err(Error::invalid(format!(
                "a reference transaction runs update-ref, not {}",
                cmd.subcommand()
            )));
        }
        let mut process = git.spawn(&cmd.flag("--stdin").flag("-z").stdin())?;
        let stdin = process.take_stdin();
        let stdout = process
            .take_stdout()
            .ok_or_else(|| proto("stdout not captured"))?;
        let mut tx = RefTransaction {
            process: Some(process),
            stdin,
            stdout: BufReader::new(stdout),
            queued: Vec::new(),
            state: State::Started,
        };
        tx.send("start").await?;
        Ok(tx)
    }

    fn queue(&mut self, parts: &[&str]) -> Result<()> {
        if self.state != State::Started {
            return Err(proto("updates after prepare"));
        }
        for p in parts {
            self.queued.extend_from_slice(p.as_bytes());
            self.queued.push(0);
        }
        Ok(())
    }

    /// Set `reference` to `new`, if it is at `old` now: `None` for any value (or none), the
    /// zero id for "must not exist yet". A zero `new` deletes it.
    pub fn update(&mut self, reference: &str, new: &str, old: Option<&str>) -> Result<()> {
        let command = format!("update {}", field("reference", reference)?);
        let new = oid("new object id", new)?;
        let old = oid("old object id", old.unwrap_or(""))?;
        self.queue(&[&command, new, old])
    }

    /// Delete `reference`, if it is at `old` now (`None`: whatever its value).
    pub fn delete(&mut self, reference: &str, old: Option<&str>) -> Result<()> {
        let command = format!("delete {}", field("reference", reference)?);
        let old = oid("old object id", old.unwrap_or(""))?;
        self.queue(&[&command, old])
    }

    /// Send the queued updates and lock every reference, checking the old values. On
    /// failure git has exited and the error says why ([`Error::Ref`]).
    pub async fn prepare(&mut self) -> Result<()> {
        if self.state != State::Started {
            return Err(proto("prepare twice"));
        }
        self.send("prepare").await?;
        self.state = State::Prepared;
        Ok(())
    }

    /// Write every update (preparing first if that wasn't done), and end git.
    pub async fn commit(mut self) -> Result<()> {
        if self.state == State::Started {
            self.prepare().await?;
        }
        self.send("commit").await?;
        self.finish().await
    }

    /// Drop every update and release the locks, and end git.
    pub async fn abort(mut self) -> Result<()> {
        self.send("abort").await?;
        self.finish().await
    }

    /// Close git's input and wait for it.
    async fn finish(&mut self) -> Result<()> {
        drop(self.stdin.take());
        match self.process.take() {
            Some(p) => p.wait().await,
            None => Ok(()),
        }
    }

    /// Send the queued updates and `<verb>`, and read git's `<verb>: ok`.
    async fn send(&mut self, verb: &str) -> Result<()> {
        let mut input = std::mem::take(&mut self.queued);
        input.extend_from_slice(verb.as_bytes());
        input.push(0);
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(proto("transaction already ended"));
        };
        let written = match stdin.write_all(&input).await {
            Ok(()) => stdin.flush().await,
            Err(e) => Err(e),
        };
        let mut line = String::new();
        let read = match written {
            // A broken pipe means git exited: its status and stderr say why.
            Err(_) => Ok(0),
            Ok(()) => self.stdout.read_line(&mut line).await,
        };
        match read {
            Ok(_) if line == format!("{verb}: ok\n") => Ok(()),
            Ok(_) => Err(self.failure(verb, &line).await),
            Err(e) => Err(Error::Io {
                subcommand: SUB,
                source: e,
            }),
        }
    }

    /// Why git didn't answer `<verb>: ok`: its classified failure once it has exited.
    async fn failure(&mut self, verb: &str, line: &str) -> Error {
        drop(self.stdin.take());
        let Some(p) = self.process.take() else {
            return proto("transaction already ended");
        };
        match p.wait().await {
            Err(e) => e,
            Ok(()) => proto(format!("{verb}: unexpected answer {line:?}")),
        }
    }
}

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::client_config::ClientConfig;
use crate::executor::Git;
use crate::observer::{LiveProcess, Tracked};
use crate::process::{Output, Process};
use crate::{lifetime, validate, Error, Result};

/// Longest single argument, and all of them together. The kernel refuses one argument over
/// 128 KiB (`MAX_ARG_STRLEN`) and a command line over ~2 MiB with `E2BIG`; past these bounds
/// the request is refused as invalid instead of failing to spawn.
const MAX_ARG: usize = 64 * 1024;
const MAX_ARGS_TOTAL: usize = 1024 * 1024;

/// The git subcommands gitrpc may run. Nothing else can be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subcommand {
    Archive,
    CatFile,
    CountObjects,
    Diff,
    DiffTree,
    ForEachRef,
    FormatPatch,
    Init,
    Log,
    LsTree,
    MergeBase,
    ReceivePack,
    RevList,
    RevParse,
    ShowRef,
    SymbolicRef,
    UpdateRef,
    UploadArchive,
    UploadPack,
    Version,
}

impl Subcommand {
    /// Subcommands that don't parse options with parse-options, so `--end-of-options` would
    /// be taken as an argument. They get no client revisions at all.
    fn takes_end_of_options(self) -> bool {
        !matches!(self, Subcommand::UploadArchive)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Subcommand::Archive => "archive",
            Subcommand::CatFile => "cat-file",
            Subcommand::CountObjects => "count-objects",
            Subcommand::Diff => "diff",
            Subcommand::DiffTree => "diff-tree",
            Subcommand::ForEachRef => "for-each-ref",
            Subcommand::FormatPatch => "format-patch",
            Subcommand::Init => "init",
            Subcommand::Log => "log",
            Subcommand::LsTree => "ls-tree",
            Subcommand::MergeBase => "merge-base",
            Subcommand::ReceivePack => "receive-pack",
            Subcommand::RevList => "rev-list",
            Subcommand::RevParse => "rev-parse",
            Subcommand::ShowRef => "show-ref",
            Subcommand::SymbolicRef => "symbolic-ref",
            Subcommand::UpdateRef => "update-ref",
            Subcommand::UploadArchive => "upload-archive",
            Subcommand::UploadPack => "upload-pack",
            Subcommand::Version => "version",
        }
    }
}

/// A validated git command line:
/// `git [-c k=v]... [--git-dir=D] <sub> <flags>... [--end-of-options <revs>...] [-- <paths>...]`.
///
/// Flags are constants from our code; values are attached with `=`; everything that comes
/// from a client is either a revision (validated, after `--end-of-options`) or a path (after
/// `--`). A validation error is kept and returned by `spawn`, so building stays chainable.
#[must_use]
pub struct Command {
    git: Git,
    sub: Subcommand,
    git_dir: Option<PathBuf>,
    config: Vec<OsString>,
    flags: Vec<OsString>,
    revs: Vec<OsString>,
    trailing: Vec<OsString>,
    paths: Option<Vec<OsString>>,
    env: Vec<(&'static str, OsString)>,
    cwd: Option<PathBuf>,
    stdin: bool,
    stdout: bool,
    stderr_to_caller: bool,
    error: Option<Error>,
}

impl Command {
    pub(crate) fn new(git: Git, sub: Subcommand) -> Self {
        Command {
            git,
            sub,
            git_dir: None,
            config: Vec::new(),
            flags: Vec::new(),
            revs: Vec::new(),
            trailing: Vec::new(),
            paths: None,
            env: Vec::new(),
            cwd: None,
            stdin: false,
            stdout: true,
            stderr_to_caller: false,
            error: None,
        }
    }

    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    pub fn subcommand(&self) -> Subcommand {
        self.sub
    }

    pub fn git_dir(mut self, dir: &Path) -> Self {
        self.git_dir = Some(dir.to_path_buf());
        self
    }

    /// Run in this working directory (e.g. `init` of a new repository).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// `git -c key=value`: key is ours, value is checked for NUL/newline.
    pub fn config(mut self, key: &'static str, value: impl AsRef<str>) -> Self {
        let value = value.as_ref();
        if value.bytes().any(|b| b == 0 || b == b'\n') {
            self.fail(Error::invalid(format!("invalid value for {key}")));
        } else {
            self.config.push(format!("{key}={value}").into());
        }
        self
    }

    /// A client's `git_config_options`, as allowed by [`crate::client_config::check`]
    /// (after ours, so they apply; they can't name a key of ours such as `core.hooksPath`).
    pub fn client_config(mut self, config: &ClientConfig) -> Self {
        self.config
            .extend(config.pairs().iter().map(|p| OsString::from(p.as_str())));
        self
    }

    /// A constant flag, e.g. `--batch-check`.
    pub fn flag(mut self, flag: &'static str) -> Self {
        self.flags.push(flag.into());
        self
    }

    /// A constant flag with a value, attached with `=`: `--max-count=10`.
    pub fn flag_value(mut self, flag: &'static str, value: impl std::fmt::Display) -> Self {
        let v = value.to_string();
        if v.contains('\0') {
            self.fail(Error::invalid(format!("invalid value for {flag}")));
        } else {
            self.flags.push(format!("{flag}={v}").into());
        }
        self
    }

    /// A flag built by our code from validated parts (e.g. `--sort=-committerdate`,
    /// `--exclude=refs/heads/x`). Must start with `--`; checked for NUL.
    pub fn arg_flag(mut self, flag: impl AsRef<str>) -> Self {
        let f = flag.as_ref();
        if !f.starts_with("--") || f.contains('\0') {
            self.fail(Error::invalid(format!("invalid flag {f:?}")));
        } else {
            self.flags.push(f.into());
        }
        self
    }

    /// A client-supplied revision, validated, placed after `--end-of-options`.
    pub fn rev(mut self, rev: impl AsRef<[u8]>) -> Self {
        match validate::revision(rev.as_ref()) {
            Ok(r) => self.revs.push(r.into()),
            Err(e) => self.fail(e),
        }
        self
    }

    pub fn revs<I: IntoIterator<Item = R>, R: AsRef<[u8]>>(mut self, revs: I) -> Self {
        for r in revs {
            self = self.rev(r);
        }
        self
    }

    /// A positional argument of our own making after `--end-of-options` (e.g. a ref pattern
    /// for `for-each-ref`). Checked for NUL only.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        let a = arg.as_ref();
        if a.as_encoded_bytes().contains(&0) {
            self.fail(Error::invalid("argument can't contain NUL"));
        } else {
            self.trailing.push(a.to_os_string());
        }
        self
    }

    /// A pathspec, placed after `--`.
    pub fn path(mut self, path: impl AsRef<[u8]>) -> Self {
        match validate::tree_path(path.as_ref()) {
            Ok(p) => self.paths.get_or_insert_with(Vec::new).push(p.into()),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Emit `--` even with no paths (so revisions can't be taken for paths).
    pub fn no_paths(mut self) -> Self {
        self.paths.get_or_insert_with(Vec::new);
        self
    }

    /// An environment variable of ours for this command (e.g. `GIT_PROTOCOL`).
    pub fn env(mut self, key: &'static str, value: impl Into<OsString>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    /// Give git a stdin pipe (default: /dev/null).
    pub fn stdin(mut self) -> Self {
        self.stdin = true;
        self
    }

    /// Hand stderr to the caller ([`Process::take_stderr`]) instead of capturing it (for
    /// transports that relay git's progress messages to the client).
    pub fn stderr_to_caller(mut self) -> Self {
        self.stderr_to_caller = true;
        self
    }

    /// Discard stdout (default: piped).
    pub fn no_stdout(mut self) -> Self {
        self.stdout = false;
        self
    }

    /// The full argument vector after `git`, for logs and tests. The server-wide config of
    /// [`Git`] (e.g. `core.hooksPath`) comes first.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        for c in self.git.config().iter().chain(&self.config) {
            a.push("-c".into());
            a.push(c.clone());
        }
        if let Some(d) = &self.git_dir {
            let mut s = OsString::from("--git-dir=");
            s.push(d);
            a.push(s);
        }
        a.push(self.sub.as_str().into());
        a.extend(self.flags.iter().cloned());
        if !self.revs.is_empty() || !self.trailing.is_empty() {
            if self.sub.takes_end_of_options() {
                a.push("--end-of-options".into());
            }
            a.extend(self.revs.iter().cloned());
            a.extend(self.trailing.iter().cloned());
        }
        if let Some(paths) = &self.paths {
            a.push("--".into());
            a.extend(paths.iter().cloned());
        }
        a
    }

    /// Start git. The child runs in its own process group and is killed (group-wide) if the
    /// returned [`Process`] is dropped before it was waited for.
    pub fn spawn(mut self) -> Result<Process> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.sub.takes_end_of_options() && !self.revs.is_empty() {
            return Err(Error::invalid(format!(
                "git {} takes no revisions",
                self.sub.as_str()
            )));
        }
        let args = self.args();
        let total: usize = args.iter().map(|a| a.len() + 1).sum();
        if total > MAX_ARGS_TOTAL || args.iter().any(|a| a.len() > MAX_ARG) {
            return Err(Error::invalid(format!(
                "arguments too long for git {}: {total} bytes",
                self.sub.as_str()
            )));
        }
        // The only place a process is built. posix_spawn is kept because: the program is an
        // absolute path (so env_clear() doesn't force a fork), and no pre_exec/uid/gid is set.
        #[allow(clippy::disallowed_methods)]
        let mut cmd = tokio::process::Command::new(self.git.bin());
        cmd.args(&args)
            .env_clear()
            .envs(self.git.env())
            .envs(Git::fixed_env().iter().copied())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // Names this server process, so git left running after it died can be found.
            .env(lifetime::OWNER_ENV, lifetime::Owner::current().tag())
            .process_group(0)
            .stdin(if self.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if self.stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let started = std::time::Instant::now();
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            subcommand: self.sub.as_str(),
            source,
        })?;
        let info = LiveProcess {
            pid: child.id().map(|p| p as i32).unwrap_or(0),
            subcommand: self.sub.as_str(),
            args,
            started: std::time::Instant::now(),
        };
        let tracked = Tracked::start(
            self.git.processes(),
            self.git.observer(),
            info,
            started.elapsed(),
        );
        tracing::debug!(git = ?tracked.info.args, "spawned git");
        Ok(Process::new(child, tracked, !self.stderr_to_caller))
    }

    /// Run to completion and collect stdout (for commands with small output). Fails with
    /// [`Error::Failed`] if git exits non-zero.
    pub async fn output(self) -> Result<Output> {
        let mut p = self.spawn()?;
        let stdout = p.read_stdout_to_end().await?;
        p.wait().await?;
        Ok(Output { stdout })
    }

    /// Run to completion with `input` on stdin; collects stdout.
    pub async fn output_with_input(self, input: &[u8]) -> Result<Output> {
        let mut p = self.stdin().spawn()?;
        p.write_stdin_and_close(input).await?;
        let stdout = p.read_stdout_to_end().await?;
        p.wait().await?;
        Ok(Output { stdout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn git() -> Git {
        Git::discover(None).await.unwrap()
    }

    #[tokio::test]
    async fn builds_end_of_options_and_paths() {
        let g = git().await;
        let c = g
            .repo_command(Path::new("/r.git"), Subcommand::Log)
            .config("core.quotePath", "false")
            .flag("--format=%H")
            .flag_value("--max-count", 3)
            .rev("main")
            .path("a b.txt");
        let args: Vec<String> = c
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "-c",
                "core.quotePath=false",
                "--git-dir=/r.git",
                "log",
                "--format=%H",
                "--max-count=3",
                "--end-of-options",
                "main",
                "--",
                "a b.txt"
            ]
        );
    }

    #[tokio::test]
    async fn injected_options_are_refused_before_spawn() {
        let g = git().await;
        for bad in ["--output=/tmp/x", "-p", "a\0b", "a b"] {
            let err = g
                .command(Subcommand::RevParse)
                .rev(bad)
                .spawn()
                .unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn server_config_first_and_oversized_arguments_refused() {
        let g = git().await.with_hooks_path(Path::new("/srv/hooks"));
        let args = g
            .repo_command(Path::new("/r.git"), Subcommand::UpdateRef)
            .config("core.quotePath", "false")
            .args();
        assert_eq!(
            args[..4],
            [
                "-c",
                "core.hooksPath=/srv/hooks",
                "-c",
                "core.quotePath=false"
            ]
        );
        for cmd in [
            g.command(Subcommand::RevParse).arg("x".repeat(MAX_ARG + 1)),
            (0..20).fold(g.command(Subcommand::RevParse), |c, _| {
                c.arg("x".repeat(MAX_ARG))
            }),
        ] {
            let err = cmd.spawn().unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("arguments too long for git rev-parse"),
                "{err}"
            );
        }
    }
}

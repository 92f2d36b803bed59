//! A git command line as plain data. Building one checks client input; [`Command::args`]
//! turns it into an argument vector with a pure function (tested without git), and
//! [`crate::Git::spawn`] is the one place that starts it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::client_config::ClientConfig;
use crate::description::{Revisions, Subcommand};
use crate::{validate, Error, Result};

/// Longest single argument, and all of them together. The kernel refuses one argument over
/// 128 KiB (`MAX_ARG_STRLEN`) and a command line over ~2 MiB with `E2BIG`; past these bounds
/// the request is refused as invalid instead of failing to spawn.
pub const MAX_ARG: usize = 64 * 1024;
pub const MAX_ARGS_TOTAL: usize = 1024 * 1024;

/// A validated git command line:
/// `git [-c k=v]... [--git-dir=D] [--shallow-file ""] <sub> <flags>... [--end-of-options] [<revs>...] [<args>...] [-- <paths>...]`.
///
/// Flags are constants from our code; values are attached with `=` (or stuck to a short
/// flag, [`Command::short_flag_value`]); everything that comes from a client is either a
/// revision (checked by the subcommand's [`Revisions`] rule, after `--end-of-options` where
/// the subcommand knows it), a flag value, or a path (after `--`, any bytes but NUL). A
/// validation error is kept and returned by [`Command::args`] (so by `spawn`), so building
/// stays chainable.
#[derive(Clone, Debug)]
#[must_use]
pub struct Command {
    sub: Subcommand,
    git_dir: Option<PathBuf>,
    /// `--shallow-file ""`: ignore the repository's `shallow` file (what upload-pack asks of
    /// the pack-objects it runs for a shallow fetch).
    no_shallow_file: bool,
    config: Vec<OsString>,
    client_config: Option<ClientConfig>,
    flags: Vec<OsString>,
    revs: Vec<OsString>,
    trailing: Vec<OsString>,
    paths: Option<Vec<OsString>>,
    pub(crate) env: Vec<(&'static str, OsString)>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) stdin: bool,
    /// stdin read from this file (from its current offset) instead of a pipe.
    pub(crate) stdin_file: Option<std::sync::Arc<std::fs::File>>,
    pub(crate) stdout: bool,
    pub(crate) stderr_to_caller: bool,
    /// The first thing building found wrong (always invalid client input).
    error: Option<String>,
}

impl Command {
    pub fn new(sub: Subcommand) -> Self {
        Command {
            sub,
            git_dir: None,
            no_shallow_file: false,
            config: Vec::new(),
            client_config: None,
            flags: Vec::new(),
            revs: Vec::new(),
            trailing: Vec::new(),
            paths: None,
            env: Vec::new(),
            cwd: None,
            stdin: false,
            stdin_file: None,
            stdout: true,
            stderr_to_caller: false,
            error: None,
        }
    }

    /// A command that runs in `git_dir` (`git --git-dir=<dir>`).
    pub fn in_repo(git_dir: &Path, sub: Subcommand) -> Self {
        Command::new(sub).git_dir(git_dir)
    }

    fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e.to_string());
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
    /// Only subcommands whose description allows it take them.
    pub fn client_config(mut self, config: &ClientConfig) -> Self {
        self.client_config = Some(config.clone());
        self
    }

    /// A constant flag, e.g. `--batch-check`.
    pub fn flag(mut self, flag: &'static str) -> Self {
        self.flags.push(flag.into());
        self
    }

    /// A constant flag with a value, attached with `=`: `--max-count=10`.
    pub fn flag_value(self, flag: &'static str, value: impl std::fmt::Display) -> Self {
        self.flag_value_bytes(flag, value.to_string())
    }

    /// [`Command::flag_value`] with a value of any bytes but NUL (a client's pattern, e.g.
    /// `--author=<bytes>`; it can't be read as another option: it is part of this word).
    pub fn flag_value_bytes(mut self, flag: &'static str, value: impl AsRef<[u8]>) -> Self {
        let v = value.as_ref();
        if v.contains(&0) {
            self.fail(Error::invalid(format!("invalid value for {flag}")));
        } else {
            let mut a = format!("{flag}=").into_bytes();
            a.extend_from_slice(v);
            self.flags.push(OsString::from_vec(a));
        }
        self
    }

    /// A constant short flag with its value stuck to it: `-L1,5`, `-e<pattern>`. git's
    /// parse-options takes the rest of the word as the value even if it starts with `-`
    /// (`-L=1,5` would be the value `=1,5`). Any bytes but NUL.
    pub fn short_flag_value(mut self, flag: &'static str, value: impl AsRef<[u8]>) -> Self {
        let v = value.as_ref();
        let short = flag.len() == 2 && flag.starts_with('-') && flag.as_bytes()[1] != b'-';
        if !short || v.contains(&0) {
            self.fail(Error::invalid(format!("invalid value for {flag}")));
        } else {
            let mut a = flag.as_bytes().to_vec();
            a.extend_from_slice(v);
            self.flags.push(OsString::from_vec(a));
        }
        self
    }

    /// A constant flag whose value is a client revision, checked by the subcommand's rule:
    /// `--source=<rev>` (check-attr), `--contains=<rev>`.
    pub fn rev_flag(mut self, flag: &'static str, rev: impl AsRef<[u8]>) -> Self {
        match self.rule().check(rev.as_ref()) {
            Ok(r) => self.flags.push(format!("{flag}={r}").into()),
            Err(e) => self.fail(e),
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

    /// The rule for revisions in the argument vector.
    fn rule(&self) -> Revisions {
        match self.sub.description().revisions {
            // Pseudo revisions can't be positional (see `Revisions::AllowPseudo`).
            Revisions::AllowPseudo => Revisions::Plain,
            r => r,
        }
    }

    fn takes_no_revisions(&mut self) -> bool {
        let none = self.rule() == Revisions::None;
        if none {
            let sub = self.sub;
            self.fail(Error::invalid(format!("git {sub} takes no revisions")));
        }
        none
    }

    /// A client-supplied revision, checked by the subcommand's rule ([`Revisions`]) and
    /// placed after `--end-of-options` where the subcommand knows it.
    pub fn rev(mut self, rev: impl AsRef<[u8]>) -> Self {
        if self.takes_no_revisions() {
            return self;
        }
        match self.rule().check(rev.as_ref()) {
            Ok(r) => self.revs.push(r.into()),
            Err(e) => self.fail(e),
        }
        self
    }

    /// A client revision that may be path-scoped, `<rev>:<path>`
    /// ([`validate::scoped_revision`]: the part before the first `:` checked as a revision,
    /// the path any bytes but NUL), placed with the revisions.
    pub fn rev_scoped(mut self, rev: impl AsRef<[u8]>) -> Self {
        if self.takes_no_revisions() {
            return self;
        }
        match validate::scoped_revision(rev.as_ref(), false) {
            Ok(r) => self.revs.push(OsStr::from_bytes(r).to_os_string()),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Standard input for `--stdin`: `revisions` checked by this subcommand's rule (with
    /// pseudo revisions where it allows them), one a line, in order. `path_scoped`: they may
    /// be `<rev>:<path>` ([`Revisions::stdin_scoped`]).
    pub fn stdin_revisions<R: AsRef<[u8]>>(
        &self,
        revisions: &[R],
        path_scoped: bool,
    ) -> Result<Vec<u8>> {
        let rule = self.sub.description().revisions;
        match path_scoped {
            false => rule.stdin(revisions),
            true => rule.stdin_scoped(revisions),
        }
    }

    pub fn revs<I: IntoIterator<Item = R>, R: AsRef<[u8]>>(mut self, revs: I) -> Self {
        for r in revs {
            self = self.rev(r);
        }
        self
    }

    /// A positional argument of our own making, after the revisions (e.g. a ref pattern
    /// for `for-each-ref`). Checked for NUL; for a subcommand without `--end-of-options` it
    /// may not start with `-` either (it would be read as an option).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        let a = arg.as_ref();
        if a.as_encoded_bytes().contains(&0) {
            self.fail(Error::invalid("argument can't contain NUL"));
        } else if !self.sub.description().end_of_options && a.as_encoded_bytes().starts_with(b"-") {
            self.fail(Error::invalid("argument can't start with '-'"));
        } else {
            self.trailing.push(a.to_os_string());
        }
        self
    }

    /// A pathspec, placed after `--`: any bytes but NUL ([`validate::arg_path`]; paths may
    /// be non-UTF-8 and hold newlines).
    pub fn path(mut self, path: impl AsRef<[u8]>) -> Self {
        match validate::arg_path(path.as_ref()) {
            Ok(p) => self
                .paths
                .get_or_insert_with(Vec::new)
                .push(OsStr::from_bytes(p).to_os_string()),
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

    /// git reads stdin from `file`, from the file's current offset (shared with every
    /// other handle of the same open file).
    pub fn stdin_file(mut self, file: std::fs::File) -> Self {
        self.stdin = false;
        self.stdin_file = Some(std::sync::Arc::new(file));
        self
    }

    /// `git --shallow-file "" <sub>`: the repository's `shallow` file is ignored (its value
    /// is a separate, empty argument: git refuses `--shallow-file=`).
    pub fn no_shallow_file(mut self) -> Self {
        self.no_shallow_file = true;
        self
    }

    /// Hand stderr to the caller ([`crate::Process::take_stderr`]) instead of capturing it
    /// (for transports that relay git's progress messages to the client).
    pub fn stderr_to_caller(mut self) -> Self {
        self.stderr_to_caller = true;
        self
    }

    /// Discard stdout (default: piped).
    pub fn no_stdout(mut self) -> Self {
        self.stdout = false;
        self
    }

    /// The full argument vector after `git`: `server_config` (the `-c` pairs of the
    /// [`crate::Git`] that runs it, e.g. `core.hooksPath`) first, then the subcommand's
    /// default config, ours, the client's. Fails with what building found wrong, or if the
    /// subcommand takes no client config or the command line is too long.
    pub fn args(&self, server_config: &[OsString]) -> Result<Vec<OsString>> {
        if let Some(e) = &self.error {
            return Err(Error::invalid(e.clone()));
        }
        let d = self.sub.description();
        if self.client_config.is_some() && !d.client_config {
            return Err(Error::invalid(format!(
                "git {} takes no client config",
                self.sub
            )));
        }
        let defaults = d.config_pairs().map(OsString::from);
        let client = self
            .client_config
            .iter()
            .flat_map(|c| c.pairs())
            .map(OsString::from);
        let mut a: Vec<OsString> = Vec::new();
        for c in server_config
            .iter()
            .cloned()
            .chain(defaults)
            .chain(self.config.iter().cloned())
            .chain(client)
        {
            a.push("-c".into());
            a.push(c);
        }
        if let Some(dir) = &self.git_dir {
            let mut s = OsString::from("--git-dir=");
            s.push(dir);
            a.push(s);
        }
        if self.no_shallow_file {
            a.push("--shallow-file".into());
            a.push("".into());
        }
        a.push(d.name.into());
        a.extend(self.flags.iter().cloned());
        if d.end_of_options && (!self.revs.is_empty() || !self.trailing.is_empty()) {
            a.push("--end-of-options".into());
        }
        a.extend(self.revs.iter().cloned());
        a.extend(self.trailing.iter().cloned());
        if let Some(paths) = &self.paths {
            a.push("--".into());
            a.extend(paths.iter().cloned());
        }
        let total: usize = a.iter().map(|x| x.len() + 1).sum();
        if total > MAX_ARGS_TOTAL || a.iter().any(|x| x.len() > MAX_ARG) {
            return Err(Error::invalid(format!(
                "arguments too long for git {}: {total} bytes",
                self.sub
            )));
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use crate::command::Command;
use crate::description::{Subcommand, GLOBAL_CONFIG};
use crate::observer::{LiveProcess, Observer, Processes, Tracked, Unobserved};
use crate::process::{Output, Process};
use crate::{lifetime, Error, Result};

/// Environment variables passed through from our own environment to git; everything else
/// is cleared. Names ending in `*` are prefixes.
pub const ENV_ALLOWLIST: &[&str] = &[
    "HOME",
    "PATH",
    "TZ",
    "LANG",
    "LC_ALL",
    "GIT_EXEC_PATH",
    "GIT_TRACE*",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// Variables we always set: no global/system config can change git's behaviour, and git
/// never prompts.
const ENV_FIXED: &[(&str, &str)] = &[
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("GIT_ADVICE", "0"),
];

/// A resolved git installation. Cheap to clone; shared by every service. Every process it
/// starts is in its [`Processes`] table until reaped, and reported to its [`Observer`].
#[derive(Clone)]
pub struct Git {
    inner: Arc<Inner>,
    observer: Arc<dyn Observer>,
}

struct Inner {
    bin: PathBuf,
    env: Vec<(OsString, OsString)>,
    version: String,
    /// `key=value` given with `-c` to every command, before the command's own:
    /// [`GLOBAL_CONFIG`], then `core.hooksPath` ([`Git::with_hooks_path`]). The cat-file pool
    /// spawns through [`Git::spawn`] too, so its processes get them.
    config: Vec<OsString>,
    /// Shared by every `Git` made from this one (`with_hooks_path`, `with_observer`).
    processes: Processes,
}

impl std::fmt::Debug for Git {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git")
            .field("bin", &self.inner.bin)
            .field("version", &self.inner.version)
            .finish()
    }
}

impl Git {
    /// Resolve git once: `bin` if given (must be absolute), else the first `git` on PATH.
    /// Runs `git version` to check it works. Nobody observes its processes.
    pub async fn discover(bin: Option<&Path>) -> Result<Git> {
        Git::discover_observed(bin, Arc::new(Unobserved)).await
    }

    /// [`Git::discover`], every process (`git version` included) reported to `observer`.
    pub async fn discover_observed(bin: Option<&Path>, observer: Arc<dyn Observer>) -> Result<Git> {
        let bin = match bin {
            Some(p) if p.is_absolute() => p.to_path_buf(),
            Some(p) => {
                return Err(Error::Setup(format!(
                    "git path must be absolute: {}",
                    p.display()
                )))
            }
            None => find_in_path("git").ok_or_else(|| Error::Setup("no git in PATH".into()))?,
        };
        let env = allowed_env(std::env::vars_os());
        let config = GLOBAL_CONFIG
            .iter()
            .map(|(k, v)| OsString::from(format!("{k}={v}")))
            .collect();
        let mut git = Git {
            inner: Arc::new(Inner {
                bin,
                env,
                version: String::new(),
                config,
                processes: Processes::default(),
            }),
            observer,
        };
        let out = git.output(&Command::new(Subcommand::Version)).await?;
        let version = String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("git version ")
            .to_string();
        Arc::get_mut(&mut git.inner).expect("fresh Arc").version = version;
        Ok(git)
    }

    /// Absolute path of the git binary.
    pub fn bin(&self) -> &Path {
        &self.inner.bin
    }

    /// `git version` output without the prefix, e.g. `2.47.3`.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// This git with `-c core.hooksPath=<dir>` on every command it starts, so no command
    /// runs a repository's own hooks (`reference-transaction` of update-ref, `post-update` of
    /// receive-pack, ...): only the hooks the server put in `dir` run.
    pub fn with_hooks_path(&self, dir: &Path) -> Git {
        let mut pair = OsString::from("core.hooksPath=");
        pair.push(dir);
        let mut config = self.inner.config.clone();
        config.push(pair);
        Git {
            inner: Arc::new(Inner {
                bin: self.inner.bin.clone(),
                env: self.inner.env.clone(),
                version: self.inner.version.clone(),
                config,
                processes: self.inner.processes.clone(),
            }),
            observer: self.observer.clone(),
        }
    }

    /// The variables of our environment every child gets (the allowlist) and the fixed ones.
    pub(crate) fn allowed_env(&self) -> Vec<(OsString, OsString)> {
        let mut env = self.inner.env.clone();
        env.extend(ENV_FIXED.iter().map(|(k, v)| (k.into(), v.into())));
        env
    }

    /// This git with its processes reported to `observer` instead (e.g. one that also
    /// records them for one call). They stay in the same [`Processes`] table.
    pub fn with_observer(&self, observer: Arc<dyn Observer>) -> Git {
        Git {
            inner: self.inner.clone(),
            observer,
        }
    }

    pub fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    /// The processes this git (and every `Git` made from it) started and hasn't reaped.
    pub fn processes(&self) -> &Processes {
        &self.inner.processes
    }

    /// The `-c` pairs every command of this git gets.
    pub fn config(&self) -> &[OsString] {
        &self.inner.config
    }

    /// Start `cmd`: the only place gitrpc starts a process. The child runs in its own
    /// process group and is killed (group-wide) if the returned [`Process`] is dropped before
    /// it was waited for.
    pub fn spawn(&self, cmd: &Command) -> Result<Process> {
        self.start(cmd, cmd.stdin)
    }

    fn start(&self, cmd: &Command, stdin: bool) -> Result<Process> {
        let sub = cmd.subcommand();
        let args = cmd.args(&self.inner.config)?;
        // posix_spawn is kept because: the program is an absolute path (so env_clear()
        // doesn't force a fork), and no pre_exec/uid/gid is set.
        #[allow(clippy::disallowed_methods)]
        let mut child = tokio::process::Command::new(self.bin());
        child
            .args(&args)
            .env_clear()
            .envs(self.inner.env.iter().map(|(k, v)| (k, v)))
            .envs(ENV_FIXED.iter().copied())
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            // Names this server process, so git left running after it died can be found.
            .env(lifetime::OWNER_ENV, lifetime::Owner::current().tag())
            .process_group(0)
            .stdin(match &cmd.stdin_file {
                Some(f) => Stdio::from(f.try_clone().map_err(|source| Error::Spawn {
                    subcommand: sub.as_str(),
                    source,
                })?),
                None if stdin => Stdio::piped(),
                None => Stdio::null(),
            })
            .stdout(if cmd.stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        if let Some(d) = &cmd.cwd {
            child.current_dir(d);
        }
        let started = std::time::Instant::now();
        let child = child.spawn().map_err(|source| Error::Spawn {
            subcommand: sub.as_str(),
            source,
        })?;
        let info = LiveProcess {
            pid: child.id().map(|p| p as i32).unwrap_or(0),
            subcommand: sub.as_str(),
            args,
            started: std::time::Instant::now(),
        };
        let tracked = Tracked::start(self.processes(), &self.observer, info, started.elapsed());
        tracing::debug!(git = ?tracked.info.args, "spawned git");
        Ok(Process::new(child, sub, tracked, !cmd.stderr_to_caller))
    }

    /// Run `cmd` to completion and collect stdout (for commands with small output). Fails
    /// with [`Error::Failed`] (or the classified error) if git exits non-zero.
    pub async fn output(&self, cmd: &Command) -> Result<Output> {
        let mut p = self.spawn(cmd)?;
        let stdout = p.read_stdout_to_end().await?;
        p.wait().await?;
        Ok(Output { stdout })
    }

    /// Run `cmd` to completion with `input` on stdin; collects stdout.
    pub async fn output_with_input(&self, cmd: &Command, input: &[u8]) -> Result<Output> {
        let mut p = self.start(cmd, true)?;
        p.write_stdin_and_close(input).await?;
        let stdout = p.read_stdout_to_end().await?;
        p.wait().await?;
        Ok(Output { stdout })
    }
}

fn allowed_env(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    vars.filter(|(k, _)| {
        let Some(k) = k.to_str() else { return false };
        ENV_ALLOWLIST.iter().any(|a| match a.strip_suffix('*') {
            Some(prefix) => k.starts_with(prefix),
            None => k == *a,
        })
    })
    .collect()
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_allowlist_filters() {
        let vars = [
            ("HOME", "/h"),
            ("GIT_TRACE2_EVENT", "1"),
            ("GIT_DIR", "/evil"),
            ("LD_PRELOAD", "x.so"),
            ("https_proxy", "p"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept: Vec<_> = allowed_env(vars.into_iter())
            .into_iter()
            .map(|(k, _)| k.into_string().unwrap())
            .collect();
        assert_eq!(kept, ["HOME", "GIT_TRACE2_EVENT", "https_proxy"]);
    }
}

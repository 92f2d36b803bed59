//! Running one hook of an operation (or, for callbacks, of a push through the bridge):
//! the configured executable with Gitaly's environment, or the callback, each bounded by
//! `[hooks] timeout`. A refusal, a failure and a timeout all end as [`HookRejected`].

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use gitrpc_git::hook::{HookCommand, HookOutcome};

use gitrpc_git::Git;

use super::{Executables, HookEvent, HookFn, HookKind, Hooks};

/// A hook refused the change (or failed, or timed out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRejected {
    pub kind: HookKind,
    /// What an executable wrote (empty for a callback).
    pub stdout: Vec<u8>,
    /// What an executable wrote to stderr, or a callback's message.
    pub stderr: Vec<u8>,
    /// The message for the user (Gitaly's: stderr if it says something, else stdout, else
    /// what went wrong).
    pub message: String,
}

impl HookRejected {
    fn new(kind: HookKind, message: String) -> HookRejected {
        HookRejected {
            kind,
            stdout: Vec::new(),
            stderr: message.clone().into_bytes(),
            message,
        }
    }
}

/// `1s`, `1500ms`.
fn human(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn timed_out(kind: HookKind, timeout: Duration) -> HookRejected {
    HookRejected::new(
        kind,
        format!("{} hook timed out after {}", kind.as_str(), human(timeout)),
    )
}

/// What runs the hooks of a server: its git, its hooks in code and in the config, and
/// `[hooks] timeout`.
pub struct HookContext<'a> {
    pub git: &'a Git,
    pub code: &'a Hooks,
    pub executables: &'a Executables,
    pub timeout: Duration,
}

/// Run the hook configured for `event.kind` (executable or callback); `Ok` if there is none.
/// `repo` is the repository's path; `quarantine` the operation's quarantine directory, made
/// visible to an executable's git (for `pre-receive` and `update`).
pub async fn run(
    ctx: &HookContext<'_>,
    repo: &Path,
    event: HookEvent,
    quarantine: Option<&Path>,
) -> Result<(), HookRejected> {
    let timeout = ctx.timeout;
    if let Some(f) = ctx.code.get(event.kind) {
        return run_callback(f, event, timeout).await;
    }
    let Some(program) = ctx.executables.get(event.kind) else {
        return Ok(());
    };
    let kind = event.kind;
    let cmd = command(ctx.git, repo, program, &event, quarantine);
    let out = match ctx.git.run_hook(&cmd, timeout).await {
        Ok(out) => out,
        Err(e) => {
            return Err(HookRejected::new(
                kind,
                format!("error executing {:?}: {e}", program.display().to_string()),
            ))
        }
    };
    let status = match out.outcome {
        HookOutcome::TimedOut => return Err(timed_out(kind, timeout)),
        HookOutcome::Exited(status) if status.success() => return Ok(()),
        HookOutcome::Exited(status) => status,
    };
    let says = |b: &[u8]| !String::from_utf8_lossy(b).trim().is_empty();
    let message = if says(&out.stderr) {
        String::from_utf8_lossy(&out.stderr).into_owned()
    } else if says(&out.stdout) {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        let why = match status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        format!("error executing {:?}: {why}", program.display().to_string())
    };
    Err(HookRejected {
        kind,
        stdout: out.stdout,
        stderr: out.stderr,
        message,
    })
}

/// The executable's command line and environment (Gitaly's `customHooksEnv`).
fn command(
    git: &Git,
    repo: &Path,
    program: &Path,
    event: &HookEvent,
    quarantine: Option<&Path>,
) -> HookCommand {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |k: &str, v: OsString| env.push((k.into(), v));
    // git of the server first on PATH, so `git` in the hook is ours.
    let mut path = git
        .bin()
        .parent()
        .map(|d| d.as_os_str().to_os_string())
        .unwrap_or_default();
    if let Some(p) = std::env::var_os("PATH") {
        path.push(":");
        path.push(p);
    }
    set("PATH", path);
    set("GIT_DIR", repo.as_os_str().to_os_string());
    set("GL_ID", event.user.gl_id.clone().into());
    set("GL_USERNAME", event.user.gl_username.clone().into());
    set("GL_PROTOCOL", event.protocol.as_str().into());
    set(
        "GL_REPOSITORY",
        event.repository.gl_repository.clone().into(),
    );
    set(
        "GL_PROJECT_PATH",
        event.repository.gl_project_path.clone().into(),
    );
    if event.kind != HookKind::Update && !event.push_options.is_empty() {
        set(
            "GIT_PUSH_OPTION_COUNT",
            event.push_options.len().to_string().into(),
        );
        for (i, o) in event.push_options.iter().enumerate() {
            env.push((format!("GIT_PUSH_OPTION_{i}").into(), o.into()));
        }
    }
    if let (Some(q), true) = (quarantine, event.kind != HookKind::PostReceive) {
        let mut set = |k: &str, v: OsString| env.push((k.into(), v));
        set("GIT_OBJECT_DIRECTORY", q.as_os_str().to_os_string());
        set(
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            repo.join("objects").into_os_string(),
        );
        // As receive-pack does: git refuses to update refs from inside the hook.
        set("GIT_QUARANTINE_PATH", q.as_os_str().to_os_string());
    }
    let (args, stdin) = match event.kind {
        HookKind::Update => {
            let c = event.changes.first();
            let field = |f: fn(&super::RefChange) -> &String| {
                c.map(|c| OsString::from(f(c))).unwrap_or_default()
            };
            (
                vec![
                    field(|c| &c.reference),
                    field(|c| &c.old_oid),
                    field(|c| &c.new_oid),
                ],
                Vec::new(),
            )
        }
        _ => (Vec::new(), event.stdin()),
    };
    HookCommand {
        program: program.to_path_buf(),
        args,
        env,
        cwd: repo.to_path_buf(),
        stdin,
    }
}

/// Call a hook given in code, on a task of its own (a panic is a refusal, not a crash),
/// for at most `timeout` (then it is dropped).
pub(crate) async fn run_callback(
    f: &HookFn,
    event: HookEvent,
    timeout: Duration,
) -> Result<(), HookRejected> {
    let kind = event.kind;
    let task = tokio::spawn(f(event));
    let abort = task.abort_handle();
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(rejected))) => {
            let message = match rejected.0 {
                m if m.is_empty() => format!("rejected by {} hook", kind.as_str()),
                m => m,
            };
            Err(HookRejected::new(kind, message))
        }
        Ok(Err(_)) => Err(HookRejected::new(
            kind,
            format!("{} hook failed", kind.as_str()),
        )),
        Err(_) => {
            abort.abort();
            Err(timed_out(kind, timeout))
        }
    }
}

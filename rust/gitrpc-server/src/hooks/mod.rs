//! The hook chain that decides ref updates, for pushes and operations alike: `pre-receive`
//! (all changes at once; may reject), `update` (one ref; may reject), `post-receive` (after
//! the refs moved; can't reject). Each hook is either an executable (`[hooks] pre_receive`,
//! `update`, `post_receive`) or a callback given in code ([`Hooks`]: a Rust closure; the
//! Ruby gem turns a block into one), never both.
//!
//! - Operations ([`run`]): the server runs the hook itself, with Gitaly's environment, the
//!   operation's quarantine visible, and `[hooks] timeout`.
//! - Pushes: git runs the hooks of the server's hooks directory ([`HooksDir`], every git's
//!   `core.hooksPath`): a configured executable is linked there (git runs it in receive-pack's
//!   process group, with the environment receive-pack was given and git's own quarantine
//!   variables); a callback is reached through [`bridge`], a script that hands git's input to
//!   the server and waits for the verdict.

pub mod bridge;
pub mod run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use gitrpc_proto::gitaly::Repository;

pub use run::{run, HookContext, HookRejected};

/// Which hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookKind {
    PreReceive,
    Update,
    PostReceive,
}

impl HookKind {
    pub const ALL: [HookKind; 3] = [
        HookKind::PreReceive,
        HookKind::Update,
        HookKind::PostReceive,
    ];

    /// The name git knows it by (`pre-receive`...).
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::PreReceive => "pre-receive",
            HookKind::Update => "update",
            HookKind::PostReceive => "post-receive",
        }
    }

    /// Its config key under `[hooks]` (`pre_receive`...).
    pub fn config_key(self) -> &'static str {
        match self {
            HookKind::PreReceive => "pre_receive",
            HookKind::Update => "update",
            HookKind::PostReceive => "post_receive",
        }
    }

    pub fn from_name(name: &str) -> Option<HookKind> {
        HookKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// How the change arrived (`GL_PROTOCOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// An operation (OperationService).
    #[default]
    Web,
    /// A push over SSHReceivePack.
    Ssh,
    /// A push over PostReceivePack.
    Http,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Web => "web",
            Protocol::Ssh => "ssh",
            Protocol::Http => "http",
        }
    }
}

/// Who makes the change: the request's `User` for operations; for pushes the request's
/// `gl_id`/`gl_username` (name and email are empty then).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    pub gl_id: String,
    pub gl_username: String,
    pub name: Vec<u8>,
    pub email: Vec<u8>,
    pub timezone: String,
}

impl User {
    pub fn from_proto(u: &gitrpc_proto::gitaly::User) -> User {
        User {
            gl_id: u.gl_id.clone(),
            gl_username: u.gl_username.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            timezone: u.timezone.clone(),
        }
    }
}

/// One ref update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefChange {
    pub old_oid: String,
    pub new_oid: String,
    pub reference: String,
}

/// What a hook decides on.
#[derive(Clone, Debug)]
pub struct HookEvent {
    pub kind: HookKind,
    pub user: User,
    pub protocol: Protocol,
    /// The repository (storage, relative path, `gl_repository`, `gl_project_path`). For
    /// `pre-receive` and `update` of an operation, and `pre-receive` of a push, it also names
    /// the quarantine (`git_object_directory`, `git_alternate_object_directories`): read RPCs
    /// called with it see the new objects.
    pub repository: Repository,
    /// Every change (`update`: exactly one).
    pub changes: Vec<RefChange>,
    /// `git push -o` values (none for `update`, nor for operations).
    pub push_options: Vec<String>,
}

impl HookEvent {
    pub fn storage(&self) -> &str {
        &self.repository.storage_name
    }

    pub fn relative_path(&self) -> &str {
        &self.repository.relative_path
    }

    /// `<old> <new> <ref>\n` per change: what git gives `pre-receive` and `post-receive`.
    pub fn stdin(&self) -> Vec<u8> {
        self.changes
            .iter()
            .map(|c| format!("{} {} {}\n", c.old_oid, c.new_oid, c.reference))
            .collect::<String>()
            .into_bytes()
    }
}

/// A hook's refusal: the message for the user (empty: a generic one).
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

/// A hook in code: accepts (`Ok`) or rejects (`Err`) a change. (A `post-receive` refusal
/// is only logged.)
pub type HookFn = Arc<dyn Fn(HookEvent) -> BoxFuture<'static, Result<(), Rejected>> + Send + Sync>;

/// Hooks an embedder supplies in code.
#[derive(Clone, Default)]
pub struct Hooks {
    pub pre_receive: Option<HookFn>,
    pub update: Option<HookFn>,
    pub post_receive: Option<HookFn>,
}

impl Hooks {
    pub fn get(&self, kind: HookKind) -> Option<&HookFn> {
        match kind {
            HookKind::PreReceive => self.pre_receive.as_ref(),
            HookKind::Update => self.update.as_ref(),
            HookKind::PostReceive => self.post_receive.as_ref(),
        }
    }

    /// Is any hook given in code?
    pub fn any(&self) -> bool {
        HookKind::ALL.iter().any(|k| self.get(*k).is_some())
    }
}

/// What runs for each hook: a configured executable (canonical path) or a callback.
#[derive(Clone, Debug, Default)]
pub struct Executables {
    pub pre_receive: Option<PathBuf>,
    pub update: Option<PathBuf>,
    pub post_receive: Option<PathBuf>,
}

impl Executables {
    pub fn get(&self, kind: HookKind) -> Option<&Path> {
        match kind {
            HookKind::PreReceive => self.pre_receive.as_deref(),
            HookKind::Update => self.update.as_deref(),
            HookKind::PostReceive => self.post_receive.as_deref(),
        }
    }

    /// The `[hooks]` executables, checked: each must be an executable regular file (its
    /// canonical path is kept); none may also be given in code. An error names the key
    /// (`hooks.update`) and what is wrong.
    pub fn from_config(
        config: &crate::config::HooksConfig,
        code: &Hooks,
    ) -> Result<Executables, (String, String)> {
        let check = |kind: HookKind, path: &Option<PathBuf>| {
            let Some(path) = path else { return Ok(None) };
            let key = format!("hooks.{}", kind.config_key());
            if code.get(kind).is_some() {
                return Err((key, "set in the config and in code; choose one".to_string()));
            }
            let not_exe = || {
                (
                    key.clone(),
                    format!("{} is not an executable file", path.display()),
                )
            };
            let real = path.canonicalize().map_err(|_| not_exe())?;
            let meta = std::fs::metadata(&real).map_err(|_| not_exe())?;
            use std::os::unix::fs::PermissionsExt;
            if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                return Err(not_exe());
            }
            Ok(Some(real))
        };
        Ok(Executables {
            pre_receive: check(HookKind::PreReceive, &config.pre_receive)?,
            update: check(HookKind::Update, &config.update)?,
            post_receive: check(HookKind::PostReceive, &config.post_receive)?,
        })
    }
}

/// A per-server hooks directory, removed when the server's dependencies are dropped. Every
/// git the server starts gets it as `core.hooksPath`, so repositories' own hooks never run:
/// it holds, per hook, a link to the configured executable or the bridge script for a
/// callback (see the module documentation), or nothing.
pub struct HooksDir {
    path: PathBuf,
    executables: Executables,
    bridged: [bool; 3],
}

impl HooksDir {
    pub(crate) fn create(
        base: &Path,
        executables: &Executables,
        code: &Hooks,
    ) -> std::io::Result<HooksDir> {
        let hooks = HooksDir {
            path: // Named after this process, so housekeeping can remove it once we are gone.
            base.join(gitrpc_git::lifetime::owned_name(
                "hooks",
                &crate::tempdir::random_hex(6),
            )),
            executables: executables.clone(),
            bridged: HookKind::ALL.map(|k| code.get(k).is_some()),
        };
        hooks.fill()?;
        Ok(hooks)
    }

    fn fill(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.path)?;
        for (i, kind) in HookKind::ALL.into_iter().enumerate() {
            let target = self.path.join(kind.as_str());
            if self.bridged[i] {
                std::fs::write(&target, bridge::SCRIPT)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
            } else if let Some(exe) = self.executables.get(kind) {
                std::os::unix::fs::symlink(exe, target)?;
            }
        }
        Ok(())
    }

    /// Re-create the directory if it is gone (its storage was removed and recreated while
    /// the server ran), so the configured hooks keep deciding pushes.
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

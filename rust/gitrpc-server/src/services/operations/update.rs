//! Moving one ref through the hook chain (Gitaly's `UpdaterWithHooks`), in this order:
//!
//! 1. `pre-receive`, then `update`, both seeing the quarantine (objects not yet in the
//!    repository);
//! 2. `update-ref --stdin` with the quarantine's object directories: `start`, `update`,
//!    `prepare` (the ref is locked and its old value checked; a stale lock of a killed git
//!    is removed and the transaction retried once);
//! 3. the quarantine's objects migrate into the repository (the ref still locked);
//! 4. `commit`, then `post-receive` (whose refusal is only logged).
//!
//! So a refused change, and the loser of a race, leave neither a ref change nor objects
//! (stricter than Gitaly, which migrates right after pre-receive).

use gitrpc_git::{RefError, RefTransaction};

use crate::deps::Repo;
use crate::error::Error;
use crate::hooks::{self, HookEvent, HookKind, HookRejected, Protocol, RefChange, User};
use crate::quarantine::Quarantine;

/// One ref update: `reference` from `old_oid` (the zero id: must not exist) to `new_oid`
/// (the zero id: delete).
#[derive(Clone, Debug)]
pub struct RefUpdate {
    pub reference: String,
    pub new_oid: String,
    pub old_oid: String,
}

/// Why the ref did not move.
#[derive(Debug)]
pub enum UpdateError {
    /// A hook refused.
    Hook(HookRejected),
    /// git refused the update (old value, lock, D/F conflict...).
    Ref(RefError),
    Other(Error),
}

impl From<Error> for UpdateError {
    fn from(e: Error) -> Self {
        UpdateError::Other(e)
    }
}

impl From<gitrpc_git::Error> for UpdateError {
    fn from(e: gitrpc_git::Error) -> Self {
        match e {
            gitrpc_git::Error::Ref { error, .. } => UpdateError::Ref(error),
            e => UpdateError::Other(e.into()),
        }
    }
}

/// Move `u.reference` for `user`, running the hooks; `q` holds the objects the new value
/// needs (`None`: nothing new, e.g. a deletion).
pub async fn update_with_hooks(
    repo: &Repo<'_>,
    user: &User,
    q: Option<Quarantine>,
    u: &RefUpdate,
) -> Result<(), UpdateError> {
    let deps = repo.deps;
    let ctx = hooks::HookContext {
        git: &repo.git,
        code: &deps.hooks,
        executables: &deps.hook_executables,
        timeout: deps.config.hooks.timeout,
    };
    let event = |kind, repository| HookEvent {
        kind,
        user: user.clone(),
        protocol: Protocol::Web,
        repository,
        changes: vec![RefChange {
            old_oid: u.old_oid.clone(),
            new_oid: u.new_oid.clone(),
            reference: u.reference.clone(),
        }],
        push_options: Vec::new(),
    };
    let quarantined = match &q {
        Some(q) => q.repository(&repo.repository),
        None => repo.repository.clone(),
    };
    let qdir = q.as_ref().map(|q| q.dir().to_path_buf());
    for kind in [HookKind::PreReceive, HookKind::Update] {
        hooks::run(
            &ctx,
            &repo.path,
            event(kind, quarantined.clone()),
            qdir.as_deref(),
        )
        .await
        .map_err(UpdateError::Hook)?;
    }
    apply(repo, q, u).await?;
    let post = event(HookKind::PostReceive, repo.repository.clone());
    if let Err(r) = hooks::run(&ctx, &repo.path, post, None).await {
        tracing::warn!(
            repo = %repo.path.display(),
            reference = %u.reference,
            message = %r.message,
            "post-receive hook failed (the change stands)"
        );
    }
    Ok(())
}

/// Move the ref without hooks (steps 2 to 4 of the module documentation).
pub async fn apply(
    repo: &Repo<'_>,
    q: Option<Quarantine>,
    u: &RefUpdate,
) -> Result<(), UpdateError> {
    let quarantined_repo = q.as_ref().map(|q| repo.quarantined(q));
    let writer = quarantined_repo.as_ref().unwrap_or(repo);
    let prepare = || async {
        let mut tx = writer.ref_transaction().await?;
        tx.update(&u.reference, &u.new_oid, Some(&u.old_oid))?;
        tx.prepare().await?;
        Ok::<RefTransaction, gitrpc_git::Error>(tx)
    };
    let tx = repo.writing_refs(prepare).await?;
    if let Some(q) = q {
        if let Err(e) = q.migrate().await {
            let _ = tx.abort().await;
            return Err(UpdateError::Other(Error::internal(format!(
                "migrating quarantined objects: {e}"
            ))));
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The `CustomHookError` detail of a refusal.
pub fn custom_hook(r: &HookRejected) -> gitrpc_proto::gitaly::CustomHookError {
    use gitrpc_proto::gitaly::custom_hook_error::HookType;
    let hook_type = match r.kind {
        HookKind::PreReceive => HookType::Prereceive,
        HookKind::Update => HookType::Update,
        HookKind::PostReceive => HookType::Postreceive,
    };
    gitrpc_proto::gitaly::CustomHookError {
        stdout: r.stdout.clone(),
        stderr: r.stderr.clone(),
        hook_type: hook_type as i32,
    }
}

/// `running pre-receive hooks: <message>` (Gitaly's wording, inside each RPC's own prefix).
pub fn running(r: &HookRejected) -> String {
    format!("running {} hooks: {}", r.kind.as_str(), r.message)
}

/// The `ReferenceUpdateError` detail of a failed update.
pub fn reference_update(u: &RefUpdate) -> gitrpc_proto::gitaly::ReferenceUpdateError {
    gitrpc_proto::gitaly::ReferenceUpdateError {
        reference_name: u.reference.clone().into_bytes(),
        old_oid: u.old_oid.clone(),
        new_oid: u.new_oid.clone(),
    }
}

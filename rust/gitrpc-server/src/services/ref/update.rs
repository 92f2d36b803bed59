//! UpdateReferences and DeleteRefs: one reference transaction each (all or none).

use gitrpc_git::validate;
use gitrpc_proto::gitaly::*;
use tonic::Streaming;

use super::{for_each_ref, RefServiceImpl};
use crate::deps::Repo;
use crate::error::{Error, Result};

/// Check an object id from a client: hex of the repository's hash length.
pub(super) fn object_id(repo: &Repo<'_>, oid: &[u8], what: &str) -> Result<String> {
    if !repo.object_format().is_oid(oid) {
        return Err(Error::invalid(format!(
            "invalid {what}: {:?}",
            String::from_utf8_lossy(oid)
        )));
    }
    Ok(String::from_utf8_lossy(oid).to_ascii_lowercase())
}

/// One change of an atomic reference update.
enum RefChange {
    /// Set to `new` if at `old` (`None`: any value).
    Update {
        name: String,
        new: String,
        old: Option<String>,
    },
    Delete {
        name: String,
    },
}

/// Apply `changes` in one transaction (all or none). Refusals come back typed
/// ([`gitrpc_git::RefError`]), mapped to codes by `crate::error`; a stale lock left by a
/// killed git is removed and the transaction retried once (`Repo::writing_refs`).
async fn update_refs(repo: &Repo<'_>, changes: &[RefChange]) -> Result<()> {
    let run = || async move {
        let mut tx = repo.ref_transaction().await?;
        for c in changes {
            match c {
                RefChange::Update { name, new, old } => tx.update(name, new, old.as_deref())?,
                RefChange::Delete { name } => tx.delete(name, None)?,
            }
        }
        tx.prepare().await?;
        tx.commit().await
    };
    Ok(repo.writing_refs(run).await?)
}

impl RefServiceImpl {
    pub(super) async fn delete_refs(&self, req: DeleteRefsRequest) -> Result<()> {
        let repo = self.deps.repo_for_write(req.repository.as_ref())?;
        match (req.except_with_prefix.is_empty(), req.refs.is_empty()) {
            (false, false) => {
                return Err(Error::invalid(
                    "ExceptWithPrefix and Refs are mutually exclusive",
                ))
            }
            (true, true) => return Err(Error::invalid("empty ExceptWithPrefix and Refs")),
            _ => {}
        }
        let targets: Vec<Vec<u8>> = if req.refs.is_empty() {
            for_each_ref(&repo, &[], &[])
                .await?
                .into_iter()
                .map(|r| r.name)
                .filter(|n| !req.except_with_prefix.iter().any(|p| n.starts_with(p)))
                .collect()
        } else {
            req.refs
        };
        let mut changes = Vec::new();
        for r in &targets {
            validate::ref_name_size(r)?;
            let name = validate::ref_name(r).map_err(|_| {
                Error::invalid(format!(
                    "invalid references: {:?}",
                    String::from_utf8_lossy(r)
                ))
            })?;
            if !name.starts_with("refs/") {
                return Err(Error::invalid(format!("invalid references: {name:?}")));
            }
            changes.push(RefChange::Delete {
                name: name.to_string(),
            });
        }
        if changes.is_empty() {
            return Ok(());
        }
        update_refs(&repo, &changes).await
    }

    pub(super) async fn update_references(
        &self,
        mut stream: Streaming<UpdateReferencesRequest>,
    ) -> Result<()> {
        let mut repository = None;
        let mut updates = Vec::new();
        let mut first = true;
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|s| Error::invalid(s.message().to_string()))?
        {
            if first {
                repository = msg.repository;
                first = false;
            }
            updates.extend(msg.updates);
        }
        let repo = self.deps.repo_for_write(repository.as_ref())?;
        if updates.is_empty() {
            return Err(Error::invalid("no updates specified"));
        }
        let store = repo.refs();
        let mut changes = Vec::new();
        for u in &updates {
            validate::ref_name_size(&u.reference)?;
            let name = validate::ref_name(&u.reference).map_err(|_| {
                Error::invalid(format!(
                    "invalid reference: {:?}",
                    String::from_utf8_lossy(&u.reference)
                ))
            })?;
            if !name.starts_with("refs/") {
                return Err(Error::invalid(format!(
                    "reference must start with refs/: {name:?}"
                )));
            }
            if let Some(s) = &store {
                if let Some(gitrpc_git::refs::RefValue::Symbolic(_)) = s.read_raw(name)? {
                    return Err(Error::invalid(format!(
                        "cannot update symbolic reference {name:?}"
                    )));
                }
            }
            let new = object_id(&repo, &u.new_object_id, "new object id")?;
            let old = if u.old_object_id.is_empty() {
                None
            } else {
                Some(object_id(&repo, &u.old_object_id, "old object id")?)
            };
            changes.push(RefChange::Update {
                name: name.to_string(),
                new,
                old,
            });
        }
        update_refs(&repo, &changes).await
    }
}

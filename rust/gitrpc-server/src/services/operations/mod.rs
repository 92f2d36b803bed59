//! OperationService: branches, tags, file commits, merges, cherry-picks, reverts, squashes
//! and rebases made on behalf of a user, with Gitaly's wire shapes and errors. Objects are
//! written into a quarantine ([`crate::quarantine`]); refs move through the hook chain
//! ([`update::update_with_hooks`]). One file per RPC or close group.

mod branches;
mod commit_files;
mod ff;
mod files;
mod merge;
mod merge_to_ref;
mod pick;
mod rebase;
mod squash;
mod start;
mod tags;
pub(crate) mod update;
mod write;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use gitrpc_git::objects::ObjectFormat;
use gitrpc_git::ObjectType;
use gitrpc_proto::gitaly::operation_service_server::OperationService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status, Streaming};

use crate::deps::{Deps, Repo};
use crate::error::{Error, Result};

pub struct OperationServiceImpl {
    deps: Arc<Deps>,
}

impl OperationServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        OperationServiceImpl { deps }
    }
}

/// `user`, or `INVALID_ARGUMENT` with the RPC's own message for a missing one.
fn require_user<'u>(user: &'u Option<User>, message: &str) -> Result<&'u User> {
    user.as_ref().ok_or_else(|| Error::invalid(message))
}

/// `refs/heads/<name>`, if that is a valid reference name (Gitaly fails later, in
/// update-ref; we refuse bad names before anything is written).
fn branch_ref(name: &[u8]) -> Result<String> {
    full_ref("refs/heads/", name, "branch")
}

/// `refs/tags/<name>`, if that is a valid reference name.
fn tag_ref(name: &[u8]) -> Result<String> {
    full_ref("refs/tags/", name, "tag")
}

fn full_ref(prefix: &str, name: &[u8], what: &str) -> Result<String> {
    gitrpc_git::validate::ref_name_size(name)?;
    let invalid = || {
        Error::invalid(format!(
            "invalid {what} name: {:?}",
            String::from_utf8_lossy(name)
        ))
    };
    let name = std::str::from_utf8(name).map_err(|_| invalid())?;
    let full = format!("{prefix}{name}");
    if !gitrpc_git::validate::is_valid_ref_name(&full) {
        return Err(invalid());
    }
    Ok(full)
}

/// A full object id of the repository's hash (lowercase), with Gitaly's messages.
fn parse_oid(format: ObjectFormat, s: &str) -> Result<String, String> {
    if s.len() != format.hex_len() {
        return Err(format!(
            "invalid object ID: {s:?}, expected length {}, got {}",
            format.hex_len(),
            s.len()
        ));
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("invalid object ID: {s:?}, invalid character {c:?}"));
    }
    Ok(s.to_ascii_lowercase())
}

/// A request's `expected_old_oid`: `None` if empty; a full id that must exist (the zero id,
/// "must not exist", where `allow_zero`).
async fn expected_old(repo: &Repo<'_>, s: &str, allow_zero: bool) -> Result<Option<String>> {
    if s.is_empty() {
        return Ok(None);
    }
    let format = repo.object_format();
    let oid = parse_oid(format, s)
        .map_err(|e| Error::invalid(format!("invalid expected old object ID: {e}")))?;
    if allow_zero && oid == format.zero_oid() {
        return Ok(Some(oid));
    }
    match repo.resolve(oid.as_bytes(), None).await? {
        Some(o) => Ok(Some(o)),
        None => Err(Error::invalid(
            "cannot resolve expected old object ID: reference not found",
        )),
    }
}

/// The commit a revision names (`<rev>^{commit}`), if any.
async fn resolve_commit(repo: &Repo<'_>, rev: &[u8]) -> Result<Option<String>> {
    repo.resolve(rev, Some(ObjectType::Commit)).await
}

/// The current value of a ref (natively for `files` repositories).
async fn ref_value(repo: &Repo<'_>, name: &str) -> Result<Option<String>> {
    if let Some(store) = repo.refs() {
        return Ok(store.resolve(name)?);
    }
    repo.resolve(name.as_bytes(), None).await
}

/// Does the repository have a branch? (`repo_created` of a branch update is its negation.)
async fn has_branches(repo: &Repo<'_>) -> Result<bool> {
    let cmd = repo
        .cmd(gitrpc_git::Subcommand::ForEachRef)
        .flag("--count=1")
        .flag("--format=%(refname)")
        .arg("refs/heads/");
    Ok(!repo.output(&cmd).await?.stdout.is_empty())
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl OperationService for OperationServiceImpl {
    async fn user_create_branch(
        &self,
        req: Request<UserCreateBranchRequest>,
    ) -> Result<Response<UserCreateBranchResponse>, Status> {
        Ok(Response::new(
            branches::create(&self.deps, req.into_inner()).await?,
        ))
    }

    async fn user_update_branch(
        &self,
        req: Request<UserUpdateBranchRequest>,
    ) -> Result<Response<UserUpdateBranchResponse>, Status> {
        Ok(Response::new(
            branches::update(&self.deps, req.into_inner()).await?,
        ))
    }

    async fn user_delete_branch(
        &self,
        req: Request<UserDeleteBranchRequest>,
    ) -> Result<Response<UserDeleteBranchResponse>, Status> {
        Ok(Response::new(
            branches::delete(&self.deps, req.into_inner()).await?,
        ))
    }

    async fn user_create_tag(
        &self,
        req: Request<UserCreateTagRequest>,
    ) -> Result<Response<UserCreateTagResponse>, Status> {
        Ok(Response::new(
            tags::create(&self.deps, req.into_inner()).await?,
        ))
    }

    async fn user_delete_tag(
        &self,
        req: Request<UserDeleteTagRequest>,
    ) -> Result<Response<UserDeleteTagResponse>, Status> {
        Ok(Response::new(
            tags::delete(&self.deps, req.into_inner()).await?,
        ))
    }

    async fn user_merge_to_ref(
        &self,
        req: Request<UserMergeToRefRequest>,
    ) -> Result<Response<UserMergeToRefResponse>, Status> {
        Ok(Response::new(
            merge_to_ref::merge_to_ref(&self.deps, req.into_inner()).await?,
        ))
    }

    async fn user_rebase_to_ref(
        &self,
        req: Request<UserRebaseToRefRequest>,
    ) -> Result<Response<UserRebaseToRefResponse>, Status> {
        Ok(Response::new(
            rebase::rebase_to_ref(&self.deps, req.into_inner()).await?,
        ))
    }

    async fn user_merge_branch(
        &self,
        req: Request<Streaming<UserMergeBranchRequest>>,
    ) -> Result<Response<ResponseStream<UserMergeBranchResponse>>, Status> {
        merge::merge_branch(self.deps.clone(), req.into_inner()).await
    }

    async fn user_ff_branch(
        &self,
        req: Request<UserFfBranchRequest>,
    ) -> Result<Response<UserFfBranchResponse>, Status> {
        Ok(Response::new(
            ff::ff_branch(&self.deps, req.into_inner()).await?,
        ))
    }

    async fn user_cherry_pick(
        &self,
        req: Request<UserCherryPickRequest>,
    ) -> Result<Response<UserCherryPickResponse>, Status> {
        let (metadata, _, req) = req.into_parts();
        Ok(Response::new(
            pick::cherry_pick(&self.deps, &metadata, req).await?,
        ))
    }

    async fn user_commit_files(
        &self,
        req: Request<Streaming<UserCommitFilesRequest>>,
    ) -> Result<Response<UserCommitFilesResponse>, Status> {
        let (metadata, _, stream) = req.into_parts();
        Ok(Response::new(
            commit_files::commit_files(&self.deps, &metadata, stream).await?,
        ))
    }

    async fn user_revert(
        &self,
        req: Request<UserRevertRequest>,
    ) -> Result<Response<UserRevertResponse>, Status> {
        let (metadata, _, req) = req.into_parts();
        Ok(Response::new(
            pick::revert(&self.deps, &metadata, req).await?,
        ))
    }

    async fn user_squash(
        &self,
        req: Request<UserSquashRequest>,
    ) -> Result<Response<UserSquashResponse>, Status> {
        Ok(Response::new(
            squash::squash(&self.deps, req.into_inner()).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_and_ref_names() {
        let f = ObjectFormat::Sha1;
        assert_eq!(
            parse_oid(f, "foobar").unwrap_err(),
            "invalid object ID: \"foobar\", expected length 40, got 6"
        );
        assert_eq!(
            parse_oid(f, &"z".repeat(40)).unwrap_err(),
            format!(
                "invalid object ID: \"{}\", invalid character 'z'",
                "z".repeat(40)
            )
        );
        assert_eq!(parse_oid(f, &"A".repeat(40)).unwrap(), "a".repeat(40));
        assert_eq!(
            parse_oid(ObjectFormat::Sha256, &"a".repeat(40)).unwrap_err(),
            format!(
                "invalid object ID: \"{}\", expected length 64, got 40",
                "a".repeat(40)
            )
        );
        assert_eq!(branch_ref(b"feature/x").unwrap(), "refs/heads/feature/x");
        for bad in [&b"a..b"[..], b"", b"x.lock", b"a b", b"a/"] {
            assert!(branch_ref(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            tag_ref(b"v1 0").unwrap_err().to_string(),
            "invalid tag name: \"v1 0\""
        );
    }
}

//! RefService: default branch, ref existence, branch and tag listings, ListRefs, and atomic
//! reference updates; the reads of step 11 (names containing a commit, refs by object id, tag
//! messages and signatures, remote branches), one file per RPC, delegated to below.

mod branches;
mod contains;
mod find_all_remote_branches;
mod find_refs_by_oid;
mod get_tag_messages;
mod get_tag_signatures;
mod list_branch_names_containing_commit;
mod list_refs;
mod list_tag_names_containing_commit;
mod tags;
mod update;

use std::sync::Arc;

use gitrpc_git::{validate, Subcommand};
use gitrpc_proto::gitaly::ref_service_server::RefService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status, Streaming};

use crate::batch::{chunked, Limits};
use crate::convert;
use crate::deps::{Deps, Repo};
use crate::error::{Error, Result};
use crate::stream::RpcStream;

/// Refs per streamed message (Gitaly's batch).
const BATCH: Limits = Limits::items(100);

pub struct RefServiceImpl {
    deps: Arc<Deps>,
}

impl RefServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        RefServiceImpl { deps }
    }
}

/// One line of `for-each-ref`.
struct RefLine {
    name: Vec<u8>,
    oid: String,
    /// Target of an annotated tag (`%(*objectname)`), empty otherwise.
    peeled: String,
}

/// `git for-each-ref` with our fixed format. `flags` are our constants (sort, excludes...).
async fn for_each_ref(
    repo: &Repo<'_>,
    patterns: &[&[u8]],
    flags: &[String],
) -> Result<Vec<RefLine>> {
    let mut cmd = repo
        .cmd(Subcommand::ForEachRef)
        .flag("--format=%(refname)%00%(objectname)%00%(*objectname)");
    for f in flags {
        cmd = cmd.arg_flag(f);
    }
    for p in patterns {
        let p = std::str::from_utf8(p).map_err(|_| Error::invalid("pattern is not UTF-8"))?;
        cmd = cmd.arg(p);
    }
    let out = repo.output(&cmd).await?;
    Ok(out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut f = l.split(|&b| b == 0);
            Some(RefLine {
                name: f.next()?.to_vec(),
                oid: String::from_utf8_lossy(f.next()?).into_owned(),
                peeled: String::from_utf8_lossy(f.next().unwrap_or_default()).into_owned(),
            })
        })
        .collect())
}

/// `--exclude=<pattern>` flags; every pattern must start with `prefix`.
fn exclude_flags(patterns: &[Vec<u8>], prefix: &str) -> Result<Vec<String>> {
    patterns
        .iter()
        .map(|p| {
            let p = std::str::from_utf8(p)
                .map_err(|_| Error::invalid("exclude pattern is not UTF-8"))?;
            if !p.starts_with(prefix) || p.contains('\0') {
                return Err(Error::invalid(format!(
                    "exclude pattern must start with {prefix:?}: {p:?}"
                )));
            }
            Ok(format!("--exclude={p}"))
        })
        .collect()
}

/// Gitaly's pagination: start after the ref named by `page_token` (which must exist), then
/// return at most `limit` items (a negative limit means all).
fn paginate(mut refs: Vec<RefLine>, p: Option<&PaginationParameter>) -> Result<Vec<RefLine>> {
    let Some(p) = p else { return Ok(refs) };
    if !p.page_token.is_empty() {
        let pos = refs
            .iter()
            .position(|r| r.name == p.page_token.as_bytes())
            .ok_or_else(|| {
                Error::invalid(format!("could not find page token {:?}", p.page_token))
            })?;
        refs.drain(..=pos);
    }
    if p.limit >= 0 {
        refs.truncate(p.limit as usize);
    }
    Ok(refs)
}

fn sort_flag(key: &str, descending: bool) -> String {
    if descending {
        format!("--sort=-{key}")
    } else {
        format!("--sort={key}")
    }
}

#[tonic::async_trait]
impl RefService for RefServiceImpl {
    async fn find_default_branch_name(
        &self,
        req: Request<FindDefaultBranchNameRequest>,
    ) -> Result<Response<FindDefaultBranchNameResponse>, Status> {
        let name = self.default_branch(req.get_ref()).await?;
        Ok(Response::new(FindDefaultBranchNameResponse { name }))
    }

    async fn ref_exists(
        &self,
        req: Request<RefExistsRequest>,
    ) -> Result<Response<RefExistsResponse>, Status> {
        let req = req.into_inner();
        let repo = self.deps.repo(req.repository.as_ref())?;
        validate::ref_name_size(&req.r#ref).map_err(Error::from)?;
        if !req.r#ref.starts_with(b"refs/") {
            return Err(Error::invalid("invalid refname").into());
        }
        // A name git would refuse can't exist.
        let value = match validate::ref_name(&req.r#ref) {
            Ok(name) => repo.ref_exists(name).await?,
            Err(_) => false,
        };
        Ok(Response::new(RefExistsResponse { value }))
    }

    async fn find_local_branches(
        &self,
        req: Request<FindLocalBranchesRequest>,
    ) -> Result<Response<RpcStream<FindLocalBranchesResponse>>, Status> {
        use find_local_branches_request::SortBy;
        let req = req.into_inner();
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut flags = exclude_flags(&req.exclude_patterns, "refs/heads/")?;
        flags.push(
            match SortBy::try_from(req.sort_by).map_err(|_| Error::invalid("unknown sort_by"))? {
                SortBy::Name => "--sort=refname",
                SortBy::UpdatedAsc => "--sort=committerdate",
                SortBy::UpdatedDesc => "--sort=-committerdate",
            }
            .to_string(),
        );
        let refs = for_each_ref(&repo, &[b"refs/heads/"], &flags).await?;
        let refs = paginate(refs, req.pagination_params.as_ref())?;
        let list = branches::branches(&mut repo.catfile()?, refs).await?;
        Ok(chunked(list, BATCH, |local_branches| {
            FindLocalBranchesResponse { local_branches }
        }))
    }

    async fn find_all_branches(
        &self,
        req: Request<FindAllBranchesRequest>,
    ) -> Result<Response<RpcStream<FindAllBranchesResponse>>, Status> {
        let req = req.into_inner();
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut flags = Vec::new();
        if req.merged_only {
            let default = self
                .default_branch(&FindDefaultBranchNameRequest {
                    repository: req.repository.clone(),
                    head_only: false,
                })
                .await?;
            if default.is_empty() {
                return Ok(chunked(Vec::new(), BATCH, |branches| {
                    FindAllBranchesResponse { branches }
                }));
            }
            flags.push(format!("--merged={}", String::from_utf8_lossy(&default)));
        }
        let mut refs = for_each_ref(&repo, &[b"refs/heads/", b"refs/remotes/"], &flags).await?;
        if req.merged_only && !req.merged_branches.is_empty() {
            refs.retain(|r| req.merged_branches.contains(&r.name));
        }
        let list = branches::branches(&mut repo.catfile()?, refs).await?;
        let list: Vec<_> = list
            .into_iter()
            .map(|b| find_all_branches_response::Branch {
                name: b.name,
                target: b.target_commit,
            })
            .collect();
        Ok(chunked(list, BATCH, |branches| FindAllBranchesResponse {
            branches,
        }))
    }

    async fn find_all_tags(
        &self,
        req: Request<FindAllTagsRequest>,
    ) -> Result<Response<RpcStream<FindAllTagsResponse>>, Status> {
        let tags = self.all_tags(req.get_ref()).await?;
        Ok(chunked(tags, BATCH, |tags| FindAllTagsResponse { tags }))
    }

    async fn find_tag(
        &self,
        req: Request<FindTagRequest>,
    ) -> Result<Response<FindTagResponse>, Status> {
        let req = req.into_inner();
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.tag_name.is_empty() {
            return Err(Error::invalid("tag name is empty").into());
        }
        let mut full = b"refs/tags/".to_vec();
        full.extend_from_slice(&req.tag_name);
        let name = validate::ref_name(&full).map_err(|e| Error::invalid(e.to_string()))?;
        if !repo.ref_exists(name).await? {
            return Err(Error::not_found("tag does not exist").into());
        }
        let oid = repo
            .resolve(name.as_bytes(), None)
            .await?
            .ok_or_else(|| Error::not_found("tag does not exist"))?;
        let tag = tags::tag(&mut repo.catfile()?, name.as_bytes(), &oid).await?;
        Ok(Response::new(FindTagResponse { tag }))
    }

    async fn find_branch(
        &self,
        req: Request<FindBranchRequest>,
    ) -> Result<Response<FindBranchResponse>, Status> {
        let req = req.into_inner();
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.name.is_empty() {
            return Err(Error::invalid("Branch name cannot be empty").into());
        }
        let short = req.name.strip_prefix(b"refs/heads/").unwrap_or(&req.name);
        let mut full = b"refs/heads/".to_vec();
        full.extend_from_slice(short);
        let name = validate::ref_name(&full).map_err(|e| Error::invalid(e.to_string()))?;
        if !repo.ref_exists(name).await? {
            return Err(Error::not_found("branch not found").into());
        }
        let commit = repo.commit(name.as_bytes()).await?;
        Ok(Response::new(FindBranchResponse {
            branch: Some(Branch {
                name: short.to_vec(),
                target_commit: commit.map(|c| convert::commit(&c, false)),
            }),
        }))
    }

    async fn list_refs(
        &self,
        req: Request<ListRefsRequest>,
    ) -> Result<Response<RpcStream<ListRefsResponse>>, Status> {
        let refs = self.list_refs(req.get_ref()).await?;
        Ok(chunked(refs, BATCH, |references| ListRefsResponse {
            references,
            pagination_cursor: None,
        }))
    }

    async fn update_references(
        &self,
        req: Request<Streaming<UpdateReferencesRequest>>,
    ) -> Result<Response<UpdateReferencesResponse>, Status> {
        self.update_references(req.into_inner()).await?;
        Ok(Response::new(UpdateReferencesResponse {}))
    }

    async fn delete_refs(
        &self,
        req: Request<DeleteRefsRequest>,
    ) -> Result<Response<DeleteRefsResponse>, Status> {
        self.delete_refs(req.into_inner()).await?;
        Ok(Response::new(DeleteRefsResponse {
            git_error: String::new(),
        }))
    }

    async fn list_branch_names_containing_commit(
        &self,
        req: Request<ListBranchNamesContainingCommitRequest>,
    ) -> Result<Response<RpcStream<ListBranchNamesContainingCommitResponse>>, Status> {
        Ok(self
            .list_branch_names_containing_commit(req.into_inner())
            .await?)
    }

    async fn list_tag_names_containing_commit(
        &self,
        req: Request<ListTagNamesContainingCommitRequest>,
    ) -> Result<Response<RpcStream<ListTagNamesContainingCommitResponse>>, Status> {
        Ok(self
            .list_tag_names_containing_commit(req.into_inner())
            .await?)
    }

    async fn find_refs_by_oid(
        &self,
        req: Request<FindRefsByOidRequest>,
    ) -> Result<Response<FindRefsByOidResponse>, Status> {
        Ok(Response::new(
            self.find_refs_by_oid(req.into_inner()).await?,
        ))
    }

    async fn get_tag_messages(
        &self,
        req: Request<GetTagMessagesRequest>,
    ) -> Result<Response<RpcStream<GetTagMessagesResponse>>, Status> {
        Ok(self.get_tag_messages(req.into_inner()).await?)
    }

    async fn get_tag_signatures(
        &self,
        req: Request<GetTagSignaturesRequest>,
    ) -> Result<Response<RpcStream<GetTagSignaturesResponse>>, Status> {
        Ok(self.get_tag_signatures(req.into_inner()).await?)
    }

    async fn find_all_remote_branches(
        &self,
        req: Request<FindAllRemoteBranchesRequest>,
    ) -> Result<Response<RpcStream<FindAllRemoteBranchesResponse>>, Status> {
        Ok(self.find_all_remote_branches(req.into_inner()).await?)
    }
}

//! RefService: default branch, ref existence, branch and tag listings, ListRefs, and atomic
//! reference updates.

use std::sync::Arc;

use gitrpc_git::objects::{self};
use gitrpc_git::{validate, Lease, ObjectType, Subcommand};
use gitrpc_proto::gitaly::ref_service_server::RefService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status, Streaming};

use crate::convert;
use crate::deps::{read_commit, Deps, Repo};
use crate::error::{Error, Result};
use crate::stream::{chunked, RpcStream};

/// Items per streamed message for listings.
const CHUNK: usize = 100;

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
    let out = cmd.output().await?;
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

/// Branches as `Branch` messages (target commit read through one cat-file).
async fn branches(cat: &mut Lease, refs: Vec<RefLine>) -> Result<Vec<Branch>> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let target = read_commit(cat, &r.oid).await?;
        out.push(Branch {
            name: r.name,
            target_commit: target.map(|c| convert::commit(&c, false)),
        });
    }
    Ok(out)
}

/// A tag ref as a `Tag`: annotated tags are parsed and peeled to their commit.
async fn tag(cat: &mut Lease, name: &[u8], oid: &str) -> Result<Option<Tag>> {
    let short = name.strip_prefix(b"refs/tags/").unwrap_or(name);
    let Some((info, data)) = cat.read_object(oid).await? else {
        return Ok(None);
    };
    match info.kind {
        ObjectType::Tag => {
            let raw = objects::parse_tag(&info.oid, &data);
            let target = read_commit(cat, &format!("{}^{{commit}}", info.oid))
                .await?
                .map(|c| convert::commit(&c, false));
            Ok(Some(convert::tag(short, &raw, target)))
        }
        ObjectType::Commit => Ok(Some(Tag {
            name: short.to_vec(),
            id: info.oid.clone(),
            target_commit: Some(convert::commit(
                &objects::parse_commit(&info.oid, &data),
                false,
            )),
            ..Default::default()
        })),
        _ => Ok(Some(Tag {
            name: short.to_vec(),
            id: info.oid,
            ..Default::default()
        })),
    }
}

/// Check an object id from a client: hex of the repository's hash length.
fn object_id(repo: &Repo<'_>, oid: &[u8], what: &str) -> Result<String> {
    let want = repo.zero_oid().len();
    if oid.len() != want || !oid.iter().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(format!(
            "invalid {what}: {:?}",
            String::from_utf8_lossy(oid)
        )));
    }
    Ok(String::from_utf8_lossy(oid).to_ascii_lowercase())
}

/// Run `update-ref --stdin -z` with one transaction; map git's refusals to gRPC codes.
async fn update_refs(repo: &Repo<'_>, script: Vec<u8>) -> Result<()> {
    let mut input = b"start\0".to_vec();
    input.extend(script);
    input.extend_from_slice(b"prepare\0commit\0");
    let input = &input;
    let update = || {
        repo.cmd(Subcommand::UpdateRef)
            .flag("--stdin")
            .flag("-z")
            .output_with_input(input)
    };
    match repo.writing_refs(update).await {
        Ok(_) => Ok(()),
        Err(e @ gitrpc_git::Error::Failed { .. }) => {
            let stderr = e.stderr().unwrap_or_default().to_string();
            if stderr.contains("but expected")
                || stderr.contains("reference already exists")
                || stderr.contains("unable to resolve reference")
                || stderr.contains("is at ")
            {
                Err(Error::Aborted(format!(
                    "reference does not point to expected object: {stderr}"
                )))
            } else if stderr.contains("nonexistent object") || stderr.contains("non-commit object")
            {
                Err(Error::invalid(format!("target object missing: {stderr}")))
            } else if stderr.contains("cannot lock ref") {
                Err(Error::FailedPrecondition(format!(
                    "references locked: {stderr}"
                )))
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

impl RefServiceImpl {
    async fn default_branch(&self, req: &FindDefaultBranchNameRequest) -> Result<Vec<u8>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let head = match repo.refs() {
            Some(store) => store.head_target()?,
            None => {
                let out = repo
                    .cmd(Subcommand::SymbolicRef)
                    .flag("--quiet")
                    .arg("HEAD")
                    .spawn()?;
                let mut p = out;
                let stdout = p.read_stdout_to_end().await?;
                let (status, _) = p.wait_status().await?;
                status
                    .success()
                    .then(|| String::from_utf8_lossy(&stdout).trim().to_string())
            }
        };
        if req.head_only {
            return Ok(head.unwrap_or_default().into_bytes());
        }
        // Fast path without listing: HEAD names an existing branch.
        if let Some(h) = &head {
            if h.starts_with("refs/heads/") && repo.ref_exists(h).await? {
                return Ok(h.clone().into_bytes());
            }
        }
        let branches = for_each_ref(&repo, &[b"refs/heads/"], &[]).await?;
        let names: Vec<&[u8]> = branches.iter().map(|b| b.name.as_slice()).collect();
        let pick = match names.len() {
            0 => Vec::new(),
            1 => names[0].to_vec(),
            _ => [&b"refs/heads/main"[..], b"refs/heads/master"]
                .into_iter()
                .find(|n| names.contains(n))
                .unwrap_or(names[0])
                .to_vec(),
        };
        Ok(pick)
    }

    async fn all_tags(&self, req: &FindAllTagsRequest) -> Result<Vec<Tag>> {
        use find_all_tags_request::sort_by::Key;
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut flags = Vec::new();
        if let Some(s) = &req.sort_by {
            let key = match Key::try_from(s.key).map_err(|_| Error::invalid("unknown sort key"))? {
                Key::Refname => "refname",
                Key::Creatordate => "creatordate",
                Key::VersionRefname => "version:refname",
            };
            flags.push(sort_flag(
                key,
                s.direction == SortDirection::Descending as i32,
            ));
        }
        let refs = for_each_ref(&repo, &[b"refs/tags/"], &flags).await?;
        let refs = paginate(refs, req.pagination_params.as_ref())?;
        let mut cat = repo.catfile()?;
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            if let Some(t) = tag(&mut cat, &r.name, &r.oid).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn list_refs(&self, req: &ListRefsRequest) -> Result<Vec<list_refs_response::Reference>> {
        use list_refs_request::sort_by::Key;
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.patterns.is_empty() {
            return Err(Error::invalid("patterns must have at least one entry"));
        }
        let mut flags = exclude_flags(&req.exclude_patterns, "refs/")?;
        if let Some(s) = &req.sort_by {
            let key = match Key::try_from(s.key).map_err(|_| Error::invalid("unknown sort key"))? {
                Key::Refname => "refname",
                Key::Creatordate => "creatordate",
                Key::Authordate => "authordate",
                Key::Committerdate => "committerdate",
            };
            flags.push(sort_flag(
                key,
                s.direction == SortDirection::Descending as i32,
            ));
        }
        for oid in &req.pointing_at_oids {
            let oid = object_id(&repo, oid, "pointing_at_oids entry")?;
            flags.push(format!("--points-at={oid}"));
        }
        if req.ignore_case {
            flags.push("--ignore-case".into());
        }
        let patterns: Vec<&[u8]> = req.patterns.iter().map(Vec::as_slice).collect();
        let refs = for_each_ref(&repo, &patterns, &flags).await?;
        let refs = paginate(refs, req.pagination_params.as_ref())?;
        let mut out = Vec::with_capacity(refs.len() + 1);
        if req.head {
            if let Some(oid) = repo.resolve(b"HEAD", None).await? {
                out.push(list_refs_response::Reference {
                    name: b"HEAD".to_vec(),
                    target: oid,
                    peeled_target: String::new(),
                });
            }
        }
        out.extend(refs.into_iter().map(|r| list_refs_response::Reference {
            name: r.name,
            target: r.oid,
            peeled_target: if req.peel_tags {
                r.peeled
            } else {
                String::new()
            },
        }));
        Ok(out)
    }

    async fn delete_refs(&self, req: DeleteRefsRequest) -> Result<()> {
        let repo = self.deps.repo(req.repository.as_ref())?;
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
        let mut script = Vec::new();
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
            script.extend_from_slice(format!("delete {name}\0\0").as_bytes());
        }
        if script.is_empty() {
            return Ok(());
        }
        update_refs(&repo, script).await
    }

    async fn update_references(
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
        let repo = self.deps.repo(repository.as_ref())?;
        if updates.is_empty() {
            return Err(Error::invalid("no updates specified"));
        }
        let store = repo.refs();
        let mut script = Vec::new();
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
                String::new()
            } else {
                object_id(&repo, &u.old_object_id, "old object id")?
            };
            script.extend_from_slice(format!("update {name}\0{new}\0{old}\0").as_bytes());
        }
        update_refs(&repo, script).await
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
        let list = branches(&mut repo.catfile()?, refs).await?;
        Ok(chunked(list, CHUNK, |local_branches| {
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
                return Ok(chunked(Vec::new(), CHUNK, |branches| {
                    FindAllBranchesResponse { branches }
                }));
            }
            flags.push(format!("--merged={}", String::from_utf8_lossy(&default)));
        }
        let mut refs = for_each_ref(&repo, &[b"refs/heads/", b"refs/remotes/"], &flags).await?;
        if req.merged_only && !req.merged_branches.is_empty() {
            refs.retain(|r| req.merged_branches.contains(&r.name));
        }
        let list = branches(&mut repo.catfile()?, refs).await?;
        let list: Vec<_> = list
            .into_iter()
            .map(|b| find_all_branches_response::Branch {
                name: b.name,
                target: b.target_commit,
            })
            .collect();
        Ok(chunked(list, CHUNK, |branches| FindAllBranchesResponse {
            branches,
        }))
    }

    async fn find_all_tags(
        &self,
        req: Request<FindAllTagsRequest>,
    ) -> Result<Response<RpcStream<FindAllTagsResponse>>, Status> {
        let tags = self.all_tags(req.get_ref()).await?;
        Ok(chunked(tags, CHUNK, |tags| FindAllTagsResponse { tags }))
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
        let tag = tag(&mut repo.catfile()?, name.as_bytes(), &oid).await?;
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
        Ok(chunked(refs, CHUNK, |references| ListRefsResponse {
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
}

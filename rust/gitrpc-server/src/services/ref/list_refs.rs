//! ListRefs.

use gitrpc_proto::gitaly::*;

use super::update::object_id;
use super::{exclude_flags, for_each_ref, paginate, sort_flag, RefServiceImpl};
use crate::error::{Error, Result};

impl RefServiceImpl {
    pub(super) async fn list_refs(
        &self,
        req: &ListRefsRequest,
    ) -> Result<Vec<list_refs_response::Reference>> {
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
}

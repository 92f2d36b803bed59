//! FindAllTags, and tag refs as `Tag` messages (annotated tags parsed and peeled).

use gitrpc_git::objects;
use gitrpc_git::{Lease, ObjectType};
use gitrpc_proto::gitaly::*;

use super::{for_each_ref, paginate, sort_flag, RefServiceImpl};
use crate::convert;
use crate::error::{Error, Result};

/// A tag ref as a `Tag`: annotated tags are parsed and peeled to their commit.
pub(super) async fn tag(cat: &mut Lease, name: &[u8], oid: &str) -> Result<Option<Tag>> {
    let short = name.strip_prefix(b"refs/tags/").unwrap_or(name);
    let Some((info, data)) = cat.read_object(oid).await? else {
        return Ok(None);
    };
    match info.kind {
        ObjectType::Tag => {
            let raw = objects::parse_tag(&info.oid, &data);
            let target = cat
                .read_commit(&format!("{}^{{commit}}", info.oid))
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

impl RefServiceImpl {
    pub(super) async fn all_tags(&self, req: &FindAllTagsRequest) -> Result<Vec<Tag>> {
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
}

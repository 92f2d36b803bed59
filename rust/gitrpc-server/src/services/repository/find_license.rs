//! FindLicense: the license of the tree HEAD points to, as Gitaly finds it: the root tree's
//! files named like license files (`LICENSE`, `COPYING.md`, `LICENSE-MIT`, `mit.txt`; not
//! READMEs) are read through the cat-file pool and matched against SPDX's license texts
//! ([`detect`]); a short file naming another file stands for that one. No match but a
//! license file: `other`. Nothing (or an unborn HEAD): the empty response.
//! Gitaly: `internal/gitaly/service/repository/license.go` (go-license-detector).
//!
//! Bounds (ours; Gitaly reads every candidate whole): at most [`MAX_CANDIDATES`] files, each
//! read up to [`MAX_LICENSE_BYTES`] (a license text is tens of KiB; the rest of a larger file
//! is never read). Answers are cached by (repository, HEAD commit), 100 of them, as Gitaly's
//! `unarycache`.

mod detect;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use gitrpc_git::objects::EntryKind;
use gitrpc_git::{Lease, ObjectType};
use gitrpc_proto::gitaly::{FindLicenseRequest, FindLicenseResponse};

use super::RepositoryServiceImpl;
use crate::error::{Error, Result};

/// Bytes of a license file read (the longest SPDX license texts are ~100 KiB).
const MAX_LICENSE_BYTES: usize = 1 << 20;

/// License file candidates read per tree.
const MAX_CANDIDATES: usize = 64;

/// Answers remembered (Gitaly's cache size).
const CACHE_ENTRIES: usize = 100;

type Key = (PathBuf, String);

static CACHE: Mutex<VecDeque<(Key, FindLicenseResponse)>> = Mutex::new(VecDeque::new());

fn cached(key: &Key) -> Option<FindLicenseResponse> {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn remember(key: Key, value: FindLicenseResponse) {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if cache.iter().any(|(k, _)| *k == key) {
        return;
    }
    if cache.len() >= CACHE_ENTRIES {
        cache.pop_front();
    }
    cache.push_back((key, value));
}

/// The first [`MAX_LICENSE_BYTES`] of blob `oid`; `None` if it is missing or not a blob.
async fn read_blob(cat: &mut Lease, oid: &str) -> Result<Option<Vec<u8>>> {
    let Some(info) = cat.contents(oid).await? else {
        return Ok(None);
    };
    if info.kind != ObjectType::Blob {
        cat.skip_rest().await?;
        return Ok(None);
    }
    let mut data = vec![0u8; (info.size as usize).min(MAX_LICENSE_BYTES)];
    let n = gitrpc_git::fill(&mut **cat, &mut data)
        .await
        .map_err(|e| Error::internal(format!("reading {oid}: {e}")))?;
    data.truncate(n);
    // A larger file's rest is not drained: the process is replaced when handed back.
    cat.skip_rest().await?;
    Ok(Some(data))
}

impl RepositoryServiceImpl {
    pub(super) async fn find_license(
        &self,
        req: FindLicenseRequest,
    ) -> Result<FindLicenseResponse> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        // An unborn HEAD (an empty repository): nothing to say.
        let Some(head) = repo.resolve(b"HEAD", Some(ObjectType::Commit)).await? else {
            return Ok(FindLicenseResponse::default());
        };
        let key = (repo.path.clone(), head.clone());
        if let Some(hit) = cached(&key) {
            return Ok(hit);
        }
        let mut cat = repo.catfile()?;
        let tree = cat
            .read_tree(&format!("{head}^{{tree}}"))
            .await?
            .ok_or_else(|| Error::internal(format!("cannot read the tree of {head}")))?;
        // Blobs of the root tree (symlinks too, as Gitaly lists them), READMEs left out;
        // names that aren't UTF-8 can't be answered (license_path is a string).
        let files: Vec<(String, String)> = tree
            .into_iter()
            .filter(|e| e.kind == EntryKind::Blob)
            .filter_map(|e| Some((String::from_utf8(e.name).ok()?, e.oid)))
            .filter(|(name, _)| detect::listed(name))
            .collect();
        let mut first_candidate = None;
        let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, oid) in files
            .iter()
            .filter(|(name, _)| detect::candidate(name))
            .take(MAX_CANDIDATES)
        {
            let Some(mut data) = read_blob(&mut cat, oid).await? else {
                continue;
            };
            first_candidate.get_or_insert_with(|| name.clone());
            let mut path = name.clone();
            // `LICENSE` saying `mit.txt`: the license is in that file.
            let target = detect::pointer(&data)
                .and_then(|t| files.iter().find(|(n, _)| n == t))
                .cloned();
            if let Some((target, target_oid)) = target {
                if let Some(d) = read_blob(&mut cat, &target_oid).await? {
                    (path, data) = (target, d);
                }
            }
            if !texts.iter().any(|(p, _)| *p == path) {
                texts.push((path, data));
            }
        }
        drop(cat);
        let answer = tokio::task::spawn_blocking(move || -> Result<FindLicenseResponse> {
            let mut found = Vec::new();
            for (path, data) in texts {
                let matched = detect::identify(&path, &data)
                    .map_err(|e| Error::internal(format!("detect licenses: {e}")))?;
                if let Some((id, score)) = matched {
                    found.push(detect::Found { path, id, score });
                }
            }
            Ok(match (detect::best(found), first_candidate) {
                (Some(r), _) => r,
                (None, Some(path)) => detect::other(path),
                (None, None) => FindLicenseResponse::default(),
            })
        })
        .await
        .map_err(Error::internal)??;
        remember(key, answer.clone());
        Ok(answer)
    }
}

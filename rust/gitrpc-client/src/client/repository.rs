//! Typed calls of RepositoryService reads: GetArchive (chunks as they come, never collected), file search by
//! name and content, GetRawChanges, RepositoryInfo, GetFileAttributes, FindLicense.

use futures::{Stream, StreamExt};
use tonic::Status;

use super::call::rpc;
use super::Client;
use crate::gitaly::get_archive_request::Format;
use crate::gitaly::*;

/// What GetArchive archives, and how.
#[derive(Clone, Debug)]
pub struct ArchiveOptions {
    pub commit_id: String,
    pub format: Format,
    /// Directory every entry goes under (`""`: entries start at `/`, as Gitaly).
    pub prefix: String,
    /// Only this directory (`""`: the whole tree).
    pub path: Vec<u8>,
    pub exclude: Vec<Vec<u8>>,
    /// `path` becomes the archive's root.
    pub elide_path: bool,
}

impl ArchiveOptions {
    pub fn new(commit_id: impl Into<String>, format: Format) -> Self {
        ArchiveOptions {
            commit_id: commit_id.into(),
            format,
            prefix: String::new(),
            path: Vec::new(),
            exclude: Vec::new(),
            elide_path: false,
        }
    }
}

impl Client {
    /// An archive of a commit's tree, in pieces as they come (never collected here).
    pub async fn get_archive(
        &self,
        repo: &Repository,
        opts: ArchiveOptions,
    ) -> Result<impl Stream<Item = Result<Vec<u8>, Status>> + Send + 'static, Status> {
        let call = rpc(self.repository_service(), |mut c, r| async move {
            c.get_archive(r).await
        });
        let msg = GetArchiveRequest {
            repository: Some(repo.clone()),
            commit_id: opts.commit_id,
            prefix: opts.prefix,
            format: opts.format as i32,
            path: opts.path,
            exclude: opts.exclude,
            elide_path: opts.elide_path,
            include_lfs_blobs: false,
        };
        let pieces = self
            .stream("/gitaly.RepositoryService/GetArchive", msg, call)
            .await?;
        Ok(pieces.map(|p| p.map(|m| m.data)))
    }

    /// Paths under `query` (a pathspec; `"."`: all) at `revision` matching `filter` (a
    /// regex; empty: all), after skipping `offset`, at most `limit` (0: all).
    pub async fn search_files_by_name(
        &self,
        repo: &Repository,
        revision: &[u8],
        query: &str,
        filter: &str,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, Status> {
        let call = rpc(self.repository_service(), |mut c, r| async move {
            c.search_files_by_name(r).await
        });
        let msg = SearchFilesByNameRequest {
            repository: Some(repo.clone()),
            query: query.to_string(),
            r#ref: revision.to_vec(),
            filter: filter.to_string(),
            limit,
            offset,
        };
        let pages = self
            .collect("/gitaly.RepositoryService/SearchFilesByName", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.files).collect())
    }

    /// Match blocks of `query` (a case-insensitive PCRE) at `revision`, each as `git grep`
    /// prints it with two lines of context, reassembled.
    pub async fn search_files_by_content(
        &self,
        repo: &Repository,
        revision: &[u8],
        query: &str,
    ) -> Result<Vec<Vec<u8>>, Status> {
        let call = rpc(self.repository_service(), |mut c, r| async move {
            c.search_files_by_content(r).await
        });
        let msg = SearchFilesByContentRequest {
            repository: Some(repo.clone()),
            query: query.to_string(),
            r#ref: revision.to_vec(),
        };
        let pieces = self
            .collect("/gitaly.RepositoryService/SearchFilesByContent", msg, call)
            .await?;
        let mut blocks = Vec::new();
        let mut block = Vec::new();
        for p in pieces {
            block.extend_from_slice(&p.match_data);
            if p.end_of_match {
                blocks.push(std::mem::take(&mut block));
            }
        }
        Ok(blocks)
    }

    /// Statistics of the repository's references and objects (RepositoryInfo).
    pub async fn repository_info(
        &self,
        repo: &Repository,
    ) -> Result<RepositoryInfoResponse, Status> {
        let c = self.repository_service();
        let msg = RepositoryInfoRequest {
            repository: Some(repo.clone()),
        };
        self.unary("/gitaly.RepositoryService/RepositoryInfo", msg, |r| {
            let mut c = c.clone();
            async move { c.repository_info(r).await }
        })
        .await
    }

    /// The license of the tree HEAD points to (FindLicense): `None` if there is no license
    /// file (or no HEAD); `license_short_name` `"other"` for a license file that matches no
    /// known license.
    pub async fn find_license(
        &self,
        repo: &Repository,
    ) -> Result<Option<FindLicenseResponse>, Status> {
        let c = self.repository_service();
        let msg = FindLicenseRequest {
            repository: Some(repo.clone()),
        };
        let r = self
            .unary("/gitaly.RepositoryService/FindLicense", msg, |r| {
                let mut c = c.clone();
                async move { c.find_license(r).await }
            })
            .await?;
        Ok((!r.license_short_name.is_empty()).then_some(r))
    }
}

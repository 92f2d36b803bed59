//! Typed calls of CommitService history: ListLastCommitsForTree (and the one-directory
//! GetTreeEntries listing it pages alongside), FindCommits, CountDivergingCommits, RawBlame,
//! CommitStats, CheckObjectsExist, CommitsByMessage, ListCommitsByRefName, GetCommitSignatures,
//! GetCommitMessages.
//!
//! Streams come as the server sends them (flattened, or pieces reassembled into one item);
//! the default deadline covers the whole stream; read-only calls are retried as unary ones
//! are, until the stream opens. CheckObjectsExist (client streaming) is never retried.

use futures::{Stream, StreamExt};
use tonic::Status;

use super::call::{flatten, rpc};
use super::{described, with_deadline, Client};
use crate::gitaly::*;

/// FindCommits' filters (`Default`: the default branch, no filter, no limit set — set
/// `limit`, as the server returns nothing for 0).
#[derive(Clone, Debug, Default)]
pub struct FindCommitsOptions {
    /// Empty: the default branch.
    pub revision: Vec<u8>,
    pub paths: Vec<Vec<u8>>,
    pub limit: i32,
    pub offset: i32,
    /// Follow one path across renames.
    pub follow: bool,
    pub skip_merges: bool,
    /// A regular expression on `Name <email>`.
    pub author: Vec<u8>,
    /// A regular expression on the message (case-insensitive).
    pub message_regex: String,
    /// Commits older than this (seconds since the epoch).
    pub before: Option<i64>,
    /// Commits newer than this (seconds since the epoch).
    pub after: Option<i64>,
    /// Every ref, oldest first.
    pub all: bool,
    pub first_parent: bool,
    /// Topological order instead of reverse chronological.
    pub topo_order: bool,
    pub literal_pathspecs: bool,
    pub trailers: bool,
    pub include_shortstat: bool,
    /// Fill `referenced_by` with the refs matching these patterns (`refs/heads/`...).
    pub include_referenced_by: Vec<Vec<u8>>,
}

/// A commit's signature and the text it signs, reassembled from GetCommitSignatures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitSignature {
    pub commit_id: String,
    pub signature: Vec<u8>,
    pub signed_text: Vec<u8>,
    pub author: Option<CommitAuthor>,
    pub committer: Option<CommitAuthor>,
}

/// Items made of several messages: a message for which `starts` holds begins one (`new`),
/// the others add to it (`extend`).
pub(super) fn regroup<M, T>(
    messages: impl Stream<Item = Result<M, Status>> + Send + Unpin + 'static,
    starts: fn(&M) -> bool,
    new: fn(M) -> T,
    extend: fn(&mut T, M),
) -> impl Stream<Item = Result<T, Status>> + Send + 'static
where
    M: Send + 'static,
    T: Send + 'static,
{
    futures::stream::unfold(
        (Some(messages), None::<T>),
        move |(messages, mut pending)| async move {
            let mut messages = messages?;
            loop {
                match messages.next().await {
                    None => return pending.map(|p| (Ok(p), (None, None))),
                    Some(Err(e)) => return Some((Err(e), (None, None))),
                    Some(Ok(m)) if starts(&m) => {
                        let done = pending.replace(new(m));
                        if let Some(d) = done {
                            return Some((Ok(d), (Some(messages), pending)));
                        }
                    }
                    Some(Ok(m)) => match pending.as_mut() {
                        Some(p) => extend(p, m),
                        None => {
                            let e = Status::internal("a continuation before any item");
                            return Some((Err(e), (None, None)));
                        }
                    },
                }
            }
        },
    )
}

impl Client {
    /// The entries of the directory `path` (`""` for the root) at `revision`, not
    /// recursive, trees first, then blobs, then submodules (the order of
    /// [`Client::list_last_commits_for_tree`]); no flat paths.
    pub async fn tree_entries(
        &self,
        repo: &Repository,
        revision: &[u8],
        path: &[u8],
    ) -> Result<Vec<crate::gitaly::TreeEntry>, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.get_tree_entries(r).await
        });
        let msg = GetTreeEntriesRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
            path: if path.is_empty() {
                b".".to_vec()
            } else {
                path.to_vec()
            },
            sort: get_tree_entries_request::SortBy::TreesFirst as i32,
            skip_flat_paths: true,
            ..Default::default()
        };
        let pages = self
            .collect("/gitaly.CommitService/GetTreeEntries", msg, call)
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.entries).collect())
    }

    /// The last commit of each entry of `path` (a directory with a trailing slash, `""` for
    /// the root; without the slash, the entry itself) at `revision`: `(entry path, commit)`
    /// in tree order (trees first), `offset`/`limit` entries.
    pub async fn list_last_commits_for_tree(
        &self,
        repo: &Repository,
        revision: &str,
        path: &[u8],
        offset: i32,
        limit: i32,
        literal_pathspecs: bool,
    ) -> Result<impl Stream<Item = Result<(Vec<u8>, GitCommit), Status>> + Send + 'static, Status>
    {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.list_last_commits_for_tree(r).await
        });
        let msg = ListLastCommitsForTreeRequest {
            repository: Some(repo.clone()),
            revision: revision.to_string(),
            path: path.to_vec(),
            offset,
            limit,
            global_options: Some(GlobalOptions { literal_pathspecs }),
            ..Default::default()
        };
        let pages = self
            .stream("/gitaly.CommitService/ListLastCommitsForTree", msg, call)
            .await?;
        Ok(flatten(pages, |p| {
            p.commits
                .into_iter()
                .map(|e| (e.path_bytes, e.commit.unwrap_or_default()))
                .collect()
        }))
    }

    /// Commits as FindCommits finds them (`git log` with `opts`' filters).
    pub async fn find_commits(
        &self,
        repo: &Repository,
        opts: FindCommitsOptions,
    ) -> Result<impl Stream<Item = Result<GitCommit, Status>> + Send + 'static, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.find_commits(r).await
        });
        let mut msg = FindCommitsRequest {
            repository: Some(repo.clone()),
            revision: opts.revision,
            limit: opts.limit,
            offset: opts.offset,
            paths: opts.paths,
            follow: opts.follow,
            skip_merges: opts.skip_merges,
            all: opts.all,
            first_parent: opts.first_parent,
            author: opts.author,
            order: if opts.topo_order {
                find_commits_request::Order::Topo as i32
            } else {
                find_commits_request::Order::None as i32
            },
            global_options: Some(GlobalOptions {
                literal_pathspecs: opts.literal_pathspecs,
            }),
            trailers: opts.trailers,
            include_shortstat: opts.include_shortstat,
            include_referenced_by: opts.include_referenced_by,
            message_regex: opts.message_regex,
            ..Default::default()
        };
        // (Timestamps without naming prost's type: this crate doesn't depend on it.)
        for (field, seconds) in [(&mut msg.after, opts.after), (&mut msg.before, opts.before)] {
            if let Some(s) = seconds {
                let mut t = field.take().unwrap_or_default();
                t.seconds = s;
                *field = Some(t);
            }
        }
        let pages = self
            .stream("/gitaly.CommitService/FindCommits", msg, call)
            .await?;
        Ok(flatten(pages, |p| p.commits))
    }

    /// `(left, right)`: commits of `from` not in `to`, and of `to` not in `from` (git's
    /// `from...to`); `max_count` (0: none) caps the walk.
    pub async fn count_diverging_commits(
        &self,
        repo: &Repository,
        from: &[u8],
        to: &[u8],
        max_count: i32,
    ) -> Result<(i32, i32), Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.count_diverging_commits(r).await
        });
        let msg = CountDivergingCommitsRequest {
            repository: Some(repo.clone()),
            from: from.to_vec(),
            to: to.to_vec(),
            max_count,
        };
        let r = self
            .unary("/gitaly.CommitService/CountDivergingCommits", msg, call)
            .await?;
        Ok((r.left_count, r.right_count))
    }

    /// `git blame --porcelain` of `path` at `revision` (`range` like `"1,20"`), in pieces as
    /// they come.
    pub async fn raw_blame(
        &self,
        repo: &Repository,
        revision: &[u8],
        path: &[u8],
        range: Option<&str>,
    ) -> Result<impl Stream<Item = Result<Vec<u8>, Status>> + Send + 'static, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.raw_blame(r).await
        });
        let msg = RawBlameRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
            path: path.to_vec(),
            range: range.unwrap_or_default().as_bytes().to_vec(),
            ..Default::default()
        };
        let pieces = self
            .stream("/gitaly.CommitService/RawBlame", msg, call)
            .await?;
        Ok(pieces.map(|p| p.map(|m| m.data)))
    }

    /// Lines added and removed by a commit against its first parent, and files changed.
    pub async fn commit_stats(
        &self,
        repo: &Repository,
        revision: &[u8],
    ) -> Result<CommitStatsResponse, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.commit_stats(r).await
        });
        let msg = CommitStatsRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
        };
        self.unary("/gitaly.CommitService/CommitStats", msg, call)
            .await
    }

    /// Whether each revision (`rev` or `rev:path`) names an object: the batches of names
    /// go to the server as `batches` yields them, `(name, exists)` come back in order. Not
    /// retried (its input is a stream).
    pub async fn check_objects_exist(
        &self,
        repo: &Repository,
        batches: impl Stream<Item = Vec<Vec<u8>>> + Send + 'static,
    ) -> Result<impl Stream<Item = Result<(Vec<u8>, bool), Status>> + Send + 'static, Status> {
        let mut c = self.commit_service();
        let repo = repo.clone();
        let requests = batches
            .enumerate()
            .map(move |(i, revisions)| CheckObjectsExistRequest {
                repository: (i == 0).then(|| repo.clone()),
                revisions,
            });
        let deadline = self.deadline();
        let req = Self::request(requests, deadline);
        let answers = Self::under_deadline(deadline, async move {
            Ok(c.check_objects_exist(req).await?.into_inner())
        })
        .await
        .map_err(described)?;
        Ok(flatten(with_deadline(answers, deadline), |p| {
            p.revisions
                .into_iter()
                .map(|r| (r.name, r.exists))
                .collect()
        }))
    }

    /// Commits from `revision` (empty: the default branch) whose message matches `query`
    /// (a regular expression, case-insensitive), touching `path` if not empty.
    pub async fn commits_by_message(
        &self,
        repo: &Repository,
        revision: &[u8],
        query: &str,
        path: &[u8],
        offset: i32,
        limit: i32,
    ) -> Result<impl Stream<Item = Result<GitCommit, Status>> + Send + 'static, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.commits_by_message(r).await
        });
        let msg = CommitsByMessageRequest {
            repository: Some(repo.clone()),
            revision: revision.to_vec(),
            offset,
            limit,
            path: path.to_vec(),
            query: query.to_string(),
            ..Default::default()
        };
        let pages = self
            .stream("/gitaly.CommitService/CommitsByMessage", msg, call)
            .await?;
        Ok(flatten(pages, |p| p.commits))
    }

    /// The commit each name (a ref or any revision) points at, `(name, commit)`; names
    /// without one are left out.
    pub async fn list_commits_by_ref_name(
        &self,
        repo: &Repository,
        names: Vec<Vec<u8>>,
    ) -> Result<Vec<(Vec<u8>, GitCommit)>, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.list_commits_by_ref_name(r).await
        });
        let msg = ListCommitsByRefNameRequest {
            repository: Some(repo.clone()),
            ref_names: names,
        };
        let pages = self
            .collect("/gitaly.CommitService/ListCommitsByRefName", msg, call)
            .await?;
        Ok(pages
            .into_iter()
            .flat_map(|p| p.commit_refs)
            .map(|r| (r.ref_name, r.commit.unwrap_or_default()))
            .collect())
    }

    /// The signature of each signed commit of `ids` (full object ids) and what it signs;
    /// unsigned and missing commits are left out.
    pub async fn get_commit_signatures(
        &self,
        repo: &Repository,
        ids: Vec<String>,
    ) -> Result<impl Stream<Item = Result<CommitSignature, Status>> + Send + 'static, Status> {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.get_commit_signatures(r).await
        });
        let msg = GetCommitSignaturesRequest {
            repository: Some(repo.clone()),
            commit_ids: ids,
        };
        let pieces = self
            .stream("/gitaly.CommitService/GetCommitSignatures", msg, call)
            .await?;
        Ok(regroup(
            Box::pin(pieces),
            |m: &GetCommitSignaturesResponse| !m.commit_id.is_empty(),
            |m| CommitSignature {
                commit_id: m.commit_id,
                signature: m.signature,
                signed_text: m.signed_text,
                author: m.author,
                committer: m.committer,
            },
            |s, m| s.signed_text.extend_from_slice(&m.signed_text),
        ))
    }

    /// `(id, whole message)` of each commit of `ids`; a missing one fails the stream.
    pub async fn get_commit_messages(
        &self,
        repo: &Repository,
        ids: Vec<String>,
    ) -> Result<impl Stream<Item = Result<(String, Vec<u8>), Status>> + Send + 'static, Status>
    {
        let call = rpc(self.commit_service(), |mut c, r| async move {
            c.get_commit_messages(r).await
        });
        let msg = GetCommitMessagesRequest {
            repository: Some(repo.clone()),
            commit_ids: ids,
        };
        let pieces = self
            .stream("/gitaly.CommitService/GetCommitMessages", msg, call)
            .await?;
        Ok(regroup(
            Box::pin(pieces),
            |m: &GetCommitMessagesResponse| !m.commit_id.is_empty(),
            |m| (m.commit_id, m.message),
            |(_, text), m| text.extend_from_slice(&m.message),
        ))
    }
}

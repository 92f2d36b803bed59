//! Typed calls of OperationService: branches, tags, file commits, merges (two phases),
//! fast-forwards, cherry-picks, reverts, squashes, merge and rebase to a ref. Mutators are
//! never retried. A hook's refusal that Gitaly answers with `pre_receive_error` in a
//! successful response (UserUpdateBranch, UserDeleteTag) is an error here
//! (`PERMISSION_DENIED` with the hook's message), like every other refusal; decode a
//! status's detail with [`super::details::decode`].

use tokio::sync::mpsc;
use tonic::Status;

use super::call::rpc;
use super::Client;
use crate::gitaly::operation_service_client::OperationServiceClient;
use crate::gitaly::user_commit_files_action::UserCommitFilesActionPayload as ActionPayload;
use crate::gitaly::user_commit_files_action_header::ActionType;
use crate::gitaly::user_commit_files_request::UserCommitFilesRequestPayload as Payload;
use crate::gitaly::*;
use crate::transport::Transport;

/// How an operation moved a branch.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BranchUpdate {
    pub commit_id: String,
    /// The repository had no branch before.
    pub repo_created: bool,
    /// The branch did not exist before.
    pub branch_created: bool,
}

impl From<OperationBranchUpdate> for BranchUpdate {
    fn from(u: OperationBranchUpdate) -> Self {
        BranchUpdate {
            commit_id: u.commit_id,
            repo_created: u.repo_created,
            branch_created: u.branch_created,
        }
    }
}

/// One file action of [`Client::commit_files`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileAction {
    Create {
        path: Vec<u8>,
        content: Vec<u8>,
        executable: bool,
    },
    /// A directory (git keeps it with an empty `.gitkeep`).
    CreateDir {
        path: Vec<u8>,
    },
    Update {
        path: Vec<u8>,
        content: Vec<u8>,
    },
    /// `content: None` keeps the file's content.
    Move {
        from: Vec<u8>,
        to: Vec<u8>,
        content: Option<Vec<u8>>,
    },
    /// A file or a directory.
    Delete {
        path: Vec<u8>,
    },
    Chmod {
        path: Vec<u8>,
        executable: bool,
    },
}

/// What [`Client::commit_files`] commits, and where.
#[derive(Clone, Debug, Default)]
pub struct CommitFiles {
    pub user: User,
    /// Short branch name.
    pub branch: Vec<u8>,
    pub message: Vec<u8>,
    pub actions: Vec<FileAction>,
    /// Base the commit on this branch (of `start_repository` if set) instead of `branch`.
    pub start_branch: Option<Vec<u8>>,
    /// Base the commit on this commit.
    pub start_sha: Option<String>,
    pub start_repository: Option<Repository>,
    /// The value `branch` must have; the zero id for "must not exist".
    pub expected_old_oid: Option<String>,
    /// Move the branch even if it is not at the start commit.
    pub force: bool,
    pub author_name: Option<Vec<u8>>,
    pub author_email: Option<Vec<u8>>,
    /// Author and committer date (now if unset).
    pub timestamp: Option<prost_types::Timestamp>,
}

/// Content goes in messages of at most this many bytes.
const CHUNK: usize = 128 * 1024;

fn commit_files_messages(repo: &Repository, c: &CommitFiles) -> Vec<UserCommitFilesRequest> {
    let header = UserCommitFilesRequestHeader {
        repository: Some(repo.clone()),
        user: Some(c.user.clone()),
        branch_name: c.branch.clone(),
        commit_message: c.message.clone(),
        commit_author_name: c.author_name.clone().unwrap_or_default(),
        commit_author_email: c.author_email.clone().unwrap_or_default(),
        start_branch_name: c.start_branch.clone().unwrap_or_default(),
        start_repository: c.start_repository.clone(),
        force: c.force,
        start_sha: c.start_sha.clone().unwrap_or_default(),
        timestamp: c.timestamp,
        expected_old_oid: c.expected_old_oid.clone().unwrap_or_default(),
        sign: false,
    };
    let mut msgs = vec![UserCommitFilesRequest {
        user_commit_files_request_payload: Some(Payload::Header(header)),
    }];
    let action = |p| UserCommitFilesRequest {
        user_commit_files_request_payload: Some(Payload::Action(UserCommitFilesAction {
            user_commit_files_action_payload: Some(p),
        })),
    };
    for a in &c.actions {
        let mut h = UserCommitFilesActionHeader::default();
        let content: &[u8] = match a {
            FileAction::Create {
                path,
                content,
                executable,
            } => {
                h.action = ActionType::Create as i32;
                h.file_path = path.clone();
                h.execute_filemode = *executable;
                content
            }
            FileAction::CreateDir { path } => {
                h.action = ActionType::CreateDir as i32;
                h.file_path = path.clone();
                &[]
            }
            FileAction::Update { path, content } => {
                h.action = ActionType::Update as i32;
                h.file_path = path.clone();
                content
            }
            FileAction::Move { from, to, content } => {
                h.action = ActionType::Move as i32;
                h.file_path = to.clone();
                h.previous_path = from.clone();
                h.infer_content = content.is_none();
                content.as_deref().unwrap_or_default()
            }
            FileAction::Delete { path } => {
                h.action = ActionType::Delete as i32;
                h.file_path = path.clone();
                &[]
            }
            FileAction::Chmod { path, executable } => {
                h.action = ActionType::Chmod as i32;
                h.file_path = path.clone();
                h.execute_filemode = *executable;
                &[]
            }
        };
        msgs.push(action(ActionPayload::Header(h)));
        for piece in content.chunks(CHUNK) {
            msgs.push(action(ActionPayload::Content(piece.to_vec())));
        }
    }
    msgs
}

/// The first phase of a merge ([`Client::merge_branch`]): the merge commit, not yet in the
/// repository. [`MergeProposal::apply`] moves the branch; dropping it (or
/// [`MergeProposal::abort`]) writes nothing.
pub struct MergeProposal {
    commit_id: String,
    tx: mpsc::Sender<UserMergeBranchRequest>,
    responses: tonic::Streaming<UserMergeBranchResponse>,
    deadline: Option<tokio::time::Instant>,
}

impl MergeProposal {
    pub fn commit_id(&self) -> &str {
        &self.commit_id
    }

    /// Move the branch to the merge commit (the hooks run now).
    pub async fn apply(mut self) -> Result<BranchUpdate, Status> {
        let apply = UserMergeBranchRequest {
            apply: true,
            ..Default::default()
        };
        let call = async {
            self.tx
                .send(apply)
                .await
                .map_err(|_| Status::unavailable("merge stream closed"))?;
            let m = self
                .responses
                .message()
                .await?
                .ok_or_else(|| Status::internal("merge: no branch update"))?;
            Ok(m.branch_update.unwrap_or_default().into())
        };
        Client::under_deadline(self.deadline, call)
            .await
            .map_err(super::described)
    }

    /// Decline: the server discards the merge.
    pub async fn abort(self) {
        drop(self);
    }
}

/// What [`Client::merge_branch`] merges.
#[derive(Clone, Debug, Default)]
pub struct MergeBranch {
    pub user: User,
    pub branch: Vec<u8>,
    pub commit_id: String,
    pub message: Vec<u8>,
    pub expected_old_oid: Option<String>,
    /// One parent only.
    pub squash: bool,
    pub timestamp: Option<prost_types::Timestamp>,
}

/// What [`Client::cherry_pick`] and [`Client::revert`] apply.
#[derive(Clone, Debug, Default)]
pub struct PickRevert {
    pub user: User,
    pub commit_id: String,
    pub branch: Vec<u8>,
    pub message: Vec<u8>,
    pub start_branch: Option<Vec<u8>>,
    pub start_repository: Option<Repository>,
    pub dry_run: bool,
    pub expected_old_oid: Option<String>,
    /// Cherry-pick only: the new commit's author (both or neither).
    pub author: Option<(Vec<u8>, Vec<u8>)>,
    pub timestamp: Option<prost_types::Timestamp>,
}

fn permission_denied_if(pre_receive_error: String) -> Result<(), Status> {
    match pre_receive_error.is_empty() {
        true => Ok(()),
        false => Err(Status::permission_denied(pre_receive_error)),
    }
}

impl Client {
    pub fn operation_service(&self) -> OperationServiceClient<Transport> {
        OperationServiceClient::new(self.transport())
            .max_decoding_message_size(gitrpc_proto::MAX_MESSAGE)
            .max_encoding_message_size(gitrpc_proto::MAX_MESSAGE)
    }

    /// Create `branch` (short name) at `start_point`; the branch with its commit.
    pub async fn create_branch(
        &self,
        repo: &Repository,
        user: &User,
        branch: &[u8],
        start_point: &[u8],
    ) -> Result<Branch, Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_create_branch(r).await
        });
        let msg = UserCreateBranchRequest {
            repository: Some(repo.clone()),
            branch_name: branch.to_vec(),
            user: Some(user.clone()),
            start_point: start_point.to_vec(),
        };
        let r = self
            .unary("/gitaly.OperationService/UserCreateBranch", msg, call)
            .await?;
        r.branch
            .ok_or_else(|| Status::internal("no branch in response"))
    }

    /// Move `branch` from `oldrev` to `newrev` (full object ids).
    pub async fn update_branch(
        &self,
        repo: &Repository,
        user: &User,
        branch: &[u8],
        newrev: &str,
        oldrev: &str,
    ) -> Result<(), Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_update_branch(r).await
        });
        let msg = UserUpdateBranchRequest {
            repository: Some(repo.clone()),
            branch_name: branch.to_vec(),
            user: Some(user.clone()),
            newrev: newrev.as_bytes().to_vec(),
            oldrev: oldrev.as_bytes().to_vec(),
        };
        let r = self
            .unary("/gitaly.OperationService/UserUpdateBranch", msg, call)
            .await?;
        permission_denied_if(r.pre_receive_error)
    }

    /// Delete `branch`, if it points at `expected_old` (`None`: wherever it points).
    pub async fn delete_branch(
        &self,
        repo: &Repository,
        user: &User,
        branch: &[u8],
        expected_old: Option<&str>,
    ) -> Result<(), Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_delete_branch(r).await
        });
        let msg = UserDeleteBranchRequest {
            repository: Some(repo.clone()),
            branch_name: branch.to_vec(),
            user: Some(user.clone()),
            expected_old_oid: expected_old.unwrap_or_default().to_string(),
        };
        self.unary("/gitaly.OperationService/UserDeleteBranch", msg, call)
            .await
            .map(|_| ())
    }

    /// Create tag `name` at `target`: annotated with `message` if it has text, else
    /// lightweight.
    pub async fn create_tag(
        &self,
        repo: &Repository,
        user: &User,
        name: &[u8],
        target: &[u8],
        message: Option<&[u8]>,
        timestamp: Option<prost_types::Timestamp>,
    ) -> Result<Tag, Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_create_tag(r).await
        });
        let msg = UserCreateTagRequest {
            repository: Some(repo.clone()),
            tag_name: name.to_vec(),
            user: Some(user.clone()),
            target_revision: target.to_vec(),
            message: message.unwrap_or_default().to_vec(),
            timestamp,
        };
        let r = self
            .unary("/gitaly.OperationService/UserCreateTag", msg, call)
            .await?;
        r.tag.ok_or_else(|| Status::internal("no tag in response"))
    }

    /// Delete tag `name`, if it points at `expected_old` (`None`: wherever it points).
    pub async fn delete_tag(
        &self,
        repo: &Repository,
        user: &User,
        name: &[u8],
        expected_old: Option<&str>,
    ) -> Result<(), Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_delete_tag(r).await
        });
        let msg = UserDeleteTagRequest {
            repository: Some(repo.clone()),
            tag_name: name.to_vec(),
            user: Some(user.clone()),
            expected_old_oid: expected_old.unwrap_or_default().to_string(),
        };
        let r = self
            .unary("/gitaly.OperationService/UserDeleteTag", msg, call)
            .await?;
        permission_denied_if(r.pre_receive_error)
    }

    /// Commit file actions to a branch (content streamed in 128 KiB messages).
    pub async fn commit_files(
        &self,
        repo: &Repository,
        c: &CommitFiles,
    ) -> Result<BranchUpdate, Status> {
        let call = rpc(self.operation_service(), |mut svc, r| {
            let (meta, ext, msgs) = r.into_parts();
            let req = tonic::Request::from_parts(meta, ext, futures::stream::iter(msgs));
            async move { svc.user_commit_files(req).await }
        });
        let msgs = commit_files_messages(repo, c);
        let r = self
            .unary("/gitaly.OperationService/UserCommitFiles", msgs, call)
            .await?;
        Ok(r.branch_update.unwrap_or_default().into())
    }

    /// The first phase of a merge of `m.commit_id` into `m.branch`: the merge commit, which
    /// the returned proposal applies or drops. Both phases run within the client's deadline.
    pub async fn merge_branch(
        &self,
        repo: &Repository,
        m: &MergeBranch,
    ) -> Result<MergeProposal, Status> {
        let mut svc = self.operation_service();
        let deadline = self.deadline();
        let first = UserMergeBranchRequest {
            repository: Some(repo.clone()),
            user: Some(m.user.clone()),
            commit_id: m.commit_id.clone(),
            branch: m.branch.clone(),
            message: m.message.clone(),
            apply: false,
            timestamp: m.timestamp,
            expected_old_oid: m.expected_old_oid.clone().unwrap_or_default(),
            squash: m.squash,
            sign: false,
        };
        let (tx, rx) = mpsc::channel(2);
        let call =
            async {
                tx.send(first)
                    .await
                    .map_err(|_| Status::internal("merge stream closed"))?;
                let stream = futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|m| (m, rx))
                });
                let req = Client::request(stream, deadline);
                let mut responses = svc.user_merge_branch(req).await?.into_inner();
                let first = responses
                    .message()
                    .await?
                    .ok_or_else(|| Status::internal("merge: no merge commit"))?;
                Ok((first.commit_id, responses))
            };
        let (commit_id, responses) = Client::under_deadline(deadline, call)
            .await
            .map_err(super::described)?;
        Ok(MergeProposal {
            commit_id,
            tx,
            responses,
            deadline,
        })
    }

    /// Fast-forward `branch` to `commit_id`.
    pub async fn ff_branch(
        &self,
        repo: &Repository,
        user: &User,
        branch: &[u8],
        commit_id: &str,
        expected_old: Option<&str>,
    ) -> Result<BranchUpdate, Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_ff_branch(r).await
        });
        let msg = UserFfBranchRequest {
            repository: Some(repo.clone()),
            user: Some(user.clone()),
            commit_id: commit_id.to_string(),
            branch: branch.to_vec(),
            expected_old_oid: expected_old.unwrap_or_default().to_string(),
        };
        let r = self
            .unary("/gitaly.OperationService/UserFFBranch", msg, call)
            .await?;
        permission_denied_if(r.pre_receive_error)?;
        Ok(r.branch_update.unwrap_or_default().into())
    }

    /// Apply `p.commit_id`'s changes to `p.branch` as a new commit.
    pub async fn cherry_pick(
        &self,
        repo: &Repository,
        p: &PickRevert,
    ) -> Result<BranchUpdate, Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_cherry_pick(r).await
        });
        let (name, email) = p.author.clone().unwrap_or_default();
        let msg = UserCherryPickRequest {
            repository: Some(repo.clone()),
            user: Some(p.user.clone()),
            commit: Some(GitCommit {
                id: p.commit_id.clone(),
                ..Default::default()
            }),
            branch_name: p.branch.clone(),
            message: p.message.clone(),
            start_branch_name: p.start_branch.clone().unwrap_or_default(),
            start_repository: p.start_repository.clone(),
            dry_run: p.dry_run,
            timestamp: p.timestamp,
            expected_old_oid: p.expected_old_oid.clone().unwrap_or_default(),
            commit_author_name: name,
            commit_author_email: email,
            sign: false,
        };
        let r = self
            .unary("/gitaly.OperationService/UserCherryPick", msg, call)
            .await?;
        Ok(r.branch_update.unwrap_or_default().into())
    }

    /// Undo `p.commit_id`'s changes on `p.branch` as a new commit.
    pub async fn revert(&self, repo: &Repository, p: &PickRevert) -> Result<BranchUpdate, Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_revert(r).await
        });
        let msg = UserRevertRequest {
            repository: Some(repo.clone()),
            user: Some(p.user.clone()),
            commit: Some(GitCommit {
                id: p.commit_id.clone(),
                ..Default::default()
            }),
            branch_name: p.branch.clone(),
            message: p.message.clone(),
            start_branch_name: p.start_branch.clone().unwrap_or_default(),
            start_repository: p.start_repository.clone(),
            dry_run: p.dry_run,
            timestamp: p.timestamp,
            expected_old_oid: p.expected_old_oid.clone().unwrap_or_default(),
            sign: false,
        };
        let r = self
            .unary("/gitaly.OperationService/UserRevert", msg, call)
            .await?;
        Ok(r.branch_update.unwrap_or_default().into())
    }

    /// One commit on `start_sha` with the changes of `start_sha..end_sha`; its id (no ref
    /// points at it).
    pub async fn squash(
        &self,
        repo: &Repository,
        req: UserSquashRequest,
    ) -> Result<String, Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_squash(r).await
        });
        let msg = UserSquashRequest {
            repository: Some(repo.clone()),
            ..req
        };
        let r = self
            .unary("/gitaly.OperationService/UserSquash", msg, call)
            .await?;
        Ok(r.squash_sha)
    }

    /// Merge `req.source_sha` into `req.first_parent_ref` and write it to `req.target_ref`;
    /// the merge commit.
    pub async fn merge_to_ref(
        &self,
        repo: &Repository,
        req: UserMergeToRefRequest,
    ) -> Result<String, Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_merge_to_ref(r).await
        });
        let msg = UserMergeToRefRequest {
            repository: Some(repo.clone()),
            ..req
        };
        let r = self
            .unary("/gitaly.OperationService/UserMergeToRef", msg, call)
            .await?;
        Ok(r.commit_id)
    }

    /// Rebase `req.source_sha` onto `req.first_parent_ref` and write it to `req.target_ref`;
    /// the new tip.
    pub async fn rebase_to_ref(
        &self,
        repo: &Repository,
        req: UserRebaseToRefRequest,
    ) -> Result<String, Status> {
        let call = rpc(self.operation_service(), |mut c, r| async move {
            c.user_rebase_to_ref(r).await
        });
        let msg = UserRebaseToRefRequest {
            repository: Some(repo.clone()),
            ..req
        };
        let r = self
            .unary("/gitaly.OperationService/UserRebaseToRef", msg, call)
            .await?;
        Ok(r.commit_id)
    }
}

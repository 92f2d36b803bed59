//! GetCommitMessages: each commit's whole message, streamed in 128 KiB pieces after a
//! message naming the commit.
//! Gitaly: `internal/gitaly/service/commit/commit_messages.go`.

use gitrpc_git::objects::commit_message;
use gitrpc_proto::gitaly::{GetCommitMessagesRequest, GetCommitMessagesResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

impl CommitServiceImpl {
    pub(super) async fn get_commit_messages(
        &self,
        req: GetCommitMessagesRequest,
    ) -> Result<Response<RpcStream<GetCommitMessagesResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            for id in req.commit_ids {
                let not_found =
                    || Error::internal("failed to get commit message: object not found");
                // A name cat-file's line can't carry names no commit.
                if id.is_empty() || id.contains(['\n', '\0']) {
                    return Err(not_found());
                }
                let (_, raw) = cat
                    .read_object(&format!("{id}^{{commit}}"))
                    .await?
                    .ok_or_else(not_found)?;
                sink.send(GetCommitMessagesResponse {
                    commit_id: id,
                    message: Vec::new(),
                })
                .await?;
                let mut message = commit_message(&raw);
                sink.send_reader(&mut message, |message| GetCommitMessagesResponse {
                    commit_id: String::new(),
                    message,
                })
                .await?;
            }
            Ok(())
        }))
    }
}

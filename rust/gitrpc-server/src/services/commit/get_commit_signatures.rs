//! GetCommitSignatures: the (first) signature of each signed commit and the text it signs;
//! unsigned and missing commits are left out.
//! Gitaly: `internal/gitaly/service/commit/get_commit_signatures.go`.

use gitrpc_git::objects::{parse_commit, signed_commit};
use gitrpc_git::validate::gitaly;
use gitrpc_proto::gitaly::get_commit_signatures_response::Signer;
use gitrpc_proto::gitaly::{GetCommitSignaturesRequest, GetCommitSignaturesResponse};
use tonic::Response;

use super::CommitServiceImpl;
use crate::convert;
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

impl CommitServiceImpl {
    pub(super) async fn get_commit_signatures(
        &self,
        req: GetCommitSignaturesRequest,
    ) -> Result<Response<RpcStream<GetCommitSignaturesResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.commit_ids.is_empty() {
            return Err(Error::invalid("empty CommitIds"));
        }
        let hex = repo.hash_len();
        for id in &req.commit_ids {
            gitaly::object_id(id, hex)?;
        }
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            for id in &req.commit_ids {
                let Some((info, raw)) = cat.read_object(&format!("{id}^{{commit}}")).await? else {
                    continue;
                };
                let signed = signed_commit(&raw);
                // Like git, only the first signature counts.
                let Some(signature) = signed.signatures.into_iter().next() else {
                    continue;
                };
                // Authors as written (no mailmap): what the signature covers.
                let commit = parse_commit(&info.oid, &raw);
                sink.send(GetCommitSignaturesResponse {
                    commit_id: info.oid.clone(),
                    signature,
                    signer: Signer::User as i32,
                    author: Some(convert::author(&commit.author)),
                    committer: Some(convert::author(&commit.committer)),
                    ..Default::default()
                })
                .await?;
                let mut payload: &[u8] = &signed.payload;
                sink.send_reader(&mut payload, |signed_text| GetCommitSignaturesResponse {
                    signed_text,
                    ..Default::default()
                })
                .await?;
            }
            Ok(())
        }))
    }
}

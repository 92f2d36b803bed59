//! FindAllRemoteBranches: the branches of one remote (`refs/remotes/<name>`), full names,
//! 20 per message.
//! Gitaly: `internal/gitaly/service/ref/find_all_remote_branches.go`.

use gitrpc_proto::gitaly::{FindAllRemoteBranchesRequest, FindAllRemoteBranchesResponse};
use tonic::Response;

use super::{branches, for_each_ref, RefServiceImpl};
use crate::batch::{chunked, Limits};
use crate::error::{Error, Result};
use crate::stream::RpcStream;

impl RefServiceImpl {
    pub(super) async fn find_all_remote_branches(
        &self,
        req: FindAllRemoteBranchesRequest,
    ) -> Result<Response<RpcStream<FindAllRemoteBranchesResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.remote_name.is_empty() {
            return Err(Error::invalid("empty RemoteName"));
        }
        let pattern = format!("refs/remotes/{}", req.remote_name);
        let refs = for_each_ref(&repo, &[pattern.as_bytes()], &[]).await?;
        let list = branches::branches(&mut repo.catfile()?, refs).await?;
        Ok(chunked(list, Limits::items(20), |branches| {
            FindAllRemoteBranchesResponse { branches }
        }))
    }
}

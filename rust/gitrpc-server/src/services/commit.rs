//! CommitService.

use std::sync::Arc;

use gitrpc_proto::gitaly::commit_service_server::CommitService;

use crate::deps::Deps;

pub struct CommitServiceImpl {
    #[allow(dead_code)]
    deps: Arc<Deps>,
}

impl CommitServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        CommitServiceImpl { deps }
    }
}

#[tonic::async_trait]
impl CommitService for CommitServiceImpl {}

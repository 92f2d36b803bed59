//! RefService.

use std::sync::Arc;

use gitrpc_proto::gitaly::ref_service_server::RefService;

use crate::deps::Deps;

pub struct RefServiceImpl {
    #[allow(dead_code)]
    deps: Arc<Deps>,
}

impl RefServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        RefServiceImpl { deps }
    }
}

#[tonic::async_trait]
impl RefService for RefServiceImpl {}

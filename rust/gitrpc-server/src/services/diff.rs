//! DiffService.

use std::sync::Arc;

use gitrpc_proto::gitaly::diff_service_server::DiffService;

use crate::deps::Deps;

pub struct DiffServiceImpl {
    #[allow(dead_code)]
    deps: Arc<Deps>,
}

impl DiffServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        DiffServiceImpl { deps }
    }
}

#[tonic::async_trait]
impl DiffService for DiffServiceImpl {}

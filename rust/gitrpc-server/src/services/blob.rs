//! BlobService.

use std::sync::Arc;

use gitrpc_proto::gitaly::blob_service_server::BlobService;

use crate::deps::Deps;

pub struct BlobServiceImpl {
    #[allow(dead_code)]
    deps: Arc<Deps>,
}

impl BlobServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        BlobServiceImpl { deps }
    }
}

#[tonic::async_trait]
impl BlobService for BlobServiceImpl {}

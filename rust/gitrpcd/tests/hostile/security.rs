//! See main.rs.

use crate::harness::*;

/// The harness itself: a daemon starts, serves, and passes its own health check.
#[tokio::test]
async fn harness_smoke() {
    use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
    use gitrpc_proto::gitaly::RepositoryExistsRequest;
    let mut d = Daemon::start("");
    let _w = d.seed("a.git");
    let mut c = RepositoryServiceClient::new(d.channel().await);
    let exists = c
        .repository_exists(RepositoryExistsRequest {
            repository: Some(d.repo("a.git")),
        })
        .await
        .unwrap()
        .into_inner()
        .exists;
    assert!(exists);
    let base = d.baseline();
    d.assert_healthy(&base, 64 * 1024);
}

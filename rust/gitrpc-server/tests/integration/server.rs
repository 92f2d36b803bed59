use gitrpc_proto::gitaly::server_service_client::ServerServiceClient;
use gitrpc_proto::gitaly::ServerInfoRequest;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn server_info_reports_git_and_storages() {
    let s = TestServer::start().await;
    let info = ServerServiceClient::new(s.channel.clone())
        .server_info(ServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let git_version = git(s.dir.path(), &["version"]);
    assert_eq!(
        format!("git version {}", info.git_version),
        git_version.trim()
    );
    assert_eq!(info.storage_statuses.len(), 1);
    let st = &info.storage_statuses[0];
    assert_eq!(st.storage_name, STORAGE);
    assert!(st.readable && st.writeable);
    assert!(!st.filesystem_id.is_empty());
    // The id is stable across calls.
    let again = ServerServiceClient::new(s.channel.clone())
        .server_info(ServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.storage_statuses[0].filesystem_id, st.filesystem_id);
}

#[tokio::test]
async fn health_is_serving() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let s = TestServer::start().await;
    let resp = HealthClient::new(s.channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn reflection_lists_gitaly_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let s = TestServer::start().await;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(s.channel.clone())
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected {msg:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "gitaly.RefService",
        "gitaly.CommitService",
        "gitaly.RepositoryService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
}

/// Raw unary call with an empty message, for methods our generated clients don't have.
async fn call_raw(s: &TestServer, path: &'static str) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(s.channel.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(
        tonic::Request::new(()),
        http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn unserved_rpcs_are_unimplemented() {
    let s = TestServer::start().await;
    for path in [
        "/gitaly.CommitService/ListFiles",
        "/gitaly.RepositoryService/GarbageCollect",
        "/gitaly.OperationService/UserApplyPatch",
    ] {
        assert_eq!(
            call_raw(&s, path).await.code(),
            Code::Unimplemented,
            "{path}"
        );
    }
}

//! Wiring: every service, health and reflection in one router; `run(incoming, shutdown)`
//! (and `run_tls`), with the listener mux in front (plain HTTP/2 or backchannel sessions,
//! TLS terminated by it; see `mux`) and the layers every call passes (`layers.rs`).

use std::future::Future;
use std::sync::Arc;

use gitrpc_proto::gitaly::blob_service_server::BlobServiceServer;
use gitrpc_proto::gitaly::commit_service_server::CommitServiceServer;
use gitrpc_proto::gitaly::diff_service_server::DiffServiceServer;
use gitrpc_proto::gitaly::operation_service_server::OperationServiceServer;
use gitrpc_proto::gitaly::ref_service_server::RefServiceServer;
use gitrpc_proto::gitaly::repository_service_server::RepositoryServiceServer;
use gitrpc_proto::gitaly::server_service_server::ServerServiceServer;
use gitrpc_proto::gitaly::smart_http_service_server::SmartHttpServiceServer;
use gitrpc_proto::gitaly::ssh_service_server::SshServiceServer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_stream::Stream;
use tonic::service::Routes;
use tonic::transport::server::Connected;

use crate::config::TlsConfig;
use crate::deps::Deps;
use crate::layers::Layers;
use crate::mux::SplitInfoLayer;
use crate::services::*;
use crate::startup::StartError;
use crate::tls::ServerTls;

/// Responses are bounded by [`gitrpc_proto::MAX_MESSAGE`] (blobs are streamed in smaller
/// pieces); requests by `max_message_bytes` (checked before tonic decodes, see `frames.rs`).
const MAX_RESPONSE_MESSAGE: usize = gitrpc_proto::MAX_MESSAGE;

/// All services, plus `grpc.health.v1.Health` and server reflection (v1 and v1alpha).
pub fn routes(deps: Arc<Deps>) -> Routes {
    let max_request = deps.config.max_message_bytes;
    macro_rules! svc {
        ($server:ident, $imp:expr) => {
            $server::new($imp)
                .max_decoding_message_size(max_request)
                .max_encoding_message_size(MAX_RESPONSE_MESSAGE)
        };
    }
    let (health_reporter, health) = tonic_health::server::health_reporter();
    drop(health_reporter);
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gitrpc_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("descriptor set is valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gitrpc_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("descriptor set is valid");
    Routes::new(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(svc!(
            RepositoryServiceServer,
            RepositoryServiceImpl::new(deps.clone())
        ))
        .add_service(svc!(RefServiceServer, RefServiceImpl::new(deps.clone())))
        .add_service(svc!(
            CommitServiceServer,
            CommitServiceImpl::new(deps.clone())
        ))
        .add_service(svc!(BlobServiceServer, BlobServiceImpl::new(deps.clone())))
        .add_service(svc!(DiffServiceServer, DiffServiceImpl::new(deps.clone())))
        .add_service(svc!(
            OperationServiceServer,
            OperationServiceImpl::new(deps.clone())
        ))
        .add_service(svc!(
            ServerServiceServer,
            ServerServiceImpl::new(deps.clone())
        ))
        .add_service(svc!(SshServiceServer, SshServiceImpl::new(deps.clone())))
        .add_service(svc!(
            SmartHttpServiceServer,
            SmartHttpServiceImpl::new(deps)
        ))
}

/// Serve every service on `incoming` until `shutdown` resolves; then stop accepting and wait
/// for in-flight calls (callers bound that wait, e.g. `gitrpcd` with a timeout).
pub async fn run<I, IO, IE, F>(
    deps: Arc<Deps>,
    incoming: I,
    shutdown: F,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = Result<IO, IE>>,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Future<Output = ()>,
{
    serve(deps, incoming, shutdown, None).await
}

/// [`run`] with TLS on every accepted connection (see [`tls_config`]).
pub async fn run_tls<I, IO, IE, F>(
    deps: Arc<Deps>,
    incoming: I,
    shutdown: F,
    tls: ServerTls,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = Result<IO, IE>>,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Future<Output = ()>,
{
    serve(deps, incoming, shutdown, Some(tls)).await
}

/// The TLS settings of `[tls]`: the PEM files are read and parsed here, so a bad
/// certificate or key fails at start-up with the file named.
pub fn tls_config(c: &TlsConfig) -> Result<ServerTls, StartError> {
    crate::tls::server_config(c)
}

async fn serve<I, IO, IE, F>(
    deps: Arc<Deps>,
    incoming: I,
    shutdown: F,
    tls: Option<ServerTls>,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = Result<IO, IE>>,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Future<Output = ()>,
{
    let c = &deps.config.connections;
    // Under the server's connection cap, with handshake and idle deadlines (see `conn.rs`).
    let incoming = crate::conn::Limited::new(incoming, deps.connections.clone());
    // The listener mux: TLS, then plain HTTP/2 or a backchannel session (see `mux`).
    let incoming = crate::mux::accept(incoming, tls);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(c.keepalive_interval))
        .http2_keepalive_timeout(Some(c.keepalive_timeout))
        // Outermost: the mux's connection info becomes the connection's own again (what
        // the RPC log counts calls on), plus the session's sidechannel opener.
        .layer(SplitInfoLayer::<crate::conn::ConnInfo>::new())
        .layer(Layers::listener(&deps))
        .add_routes(routes(deps))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

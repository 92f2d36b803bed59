//! SmartHTTPService: the `info/refs` advertisement and the stateless-RPC POSTs of git's smart
//! HTTP protocol, for an HTTP front-end to relay.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use gitrpc_proto::gitaly::smart_http_service_server::SmartHttpService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status, Streaming};

use super::transport::{self, Flags, Outputs, Service};
use crate::deps::Deps;
use crate::pusher::{Fields, Protocol, Pusher};
use crate::stream::{spawn_stream, RpcStream};

pub struct SmartHttpServiceImpl {
    deps: Arc<Deps>,
}

impl SmartHttpServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        SmartHttpServiceImpl { deps }
    }

    fn info_refs(
        &self,
        req: InfoRefsRequest,
        service: Service,
        name: &'static str,
    ) -> Result<Response<RpcStream<InfoRefsResponse>>, Status> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let process = transport::start(
            &repo,
            service,
            Flags::ADVERTISE,
            &req.git_config_options,
            &req.git_protocol,
            None,
        )?;
        // As git-http-backend: protocol v2 has no "# service" header.
        let header = (req.git_protocol != "version=2").then(|| {
            let line = format!("# service={name}\n");
            format!("{:04x}{line}0000", line.len() + 4).into_bytes()
        });
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            if let Some(h) = header {
                sink.send(InfoRefsResponse { data: h }).await?;
            }
            let out = Outputs {
                stdout: |d| InfoRefsResponse { data: d.to_vec() },
                stderr: None,
                exit: None,
            };
            transport::pump(process, futures::stream::empty(), sink, &deps, out).await
        }))
    }
}

#[tonic::async_trait]
impl SmartHttpService for SmartHttpServiceImpl {
    async fn info_refs_upload_pack(
        &self,
        req: Request<InfoRefsRequest>,
    ) -> Result<Response<RpcStream<InfoRefsResponse>>, Status> {
        self.info_refs(req.into_inner(), Service::UploadPack, "git-upload-pack")
    }

    async fn info_refs_receive_pack(
        &self,
        req: Request<InfoRefsRequest>,
    ) -> Result<Response<RpcStream<InfoRefsResponse>>, Status> {
        self.info_refs(req.into_inner(), Service::ReceivePack, "git-receive-pack")
    }

    async fn post_upload_pack(
        &self,
        req: Request<Streaming<PostUploadPackRequest>>,
    ) -> Result<Response<RpcStream<PostUploadPackResponse>>, Status> {
        let mut stream = req.into_inner();
        let head = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty request stream"))?;
        let repo = self.deps.repo(head.repository.as_ref())?;
        let process = transport::start(
            &repo,
            Service::UploadPack,
            Flags::STATELESS,
            &head.git_config_options,
            &head.git_protocol,
            None,
        )?;
        let first = futures::stream::iter([Ok(Bytes::from(head.data))]);
        let input = first.chain(stream.map(|m| m.map(|m| Bytes::from(m.data))));
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            let out = Outputs {
                stdout: |d| PostUploadPackResponse { data: d.to_vec() },
                stderr: None,
                exit: None,
            };
            transport::pump(process, input, sink, &deps, out).await
        }))
    }

    /// Upload-pack over a sidechannel (see `upload_pack_sidechannel.rs`).
    async fn post_upload_pack_with_sidechannel(
        &self,
        req: Request<PostUploadPackWithSidechannelRequest>,
    ) -> Result<Response<PostUploadPackWithSidechannelResponse>, Status> {
        super::upload_pack_sidechannel::http(&self.deps, req).await
    }

    async fn post_receive_pack(
        &self,
        req: Request<Streaming<PostReceivePackRequest>>,
    ) -> Result<Response<RpcStream<PostReceivePackResponse>>, Status> {
        let (metadata, _, mut stream) = req.into_parts();
        let head = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty request stream"))?;
        let fields = Fields {
            gl_id: &head.gl_id,
            gl_username: &head.gl_username,
            gl_repository: &head.gl_repository,
        };
        let pusher =
            Pusher::from_request(fields, head.repository.as_ref(), &metadata, Protocol::Http)?;
        let repo = self.deps.repo_for_write(head.repository.as_ref())?;
        let process = transport::start(
            &repo,
            Service::ReceivePack,
            Flags::STATELESS,
            &head.git_config_options,
            &head.git_protocol,
            Some(&pusher),
        )?;
        let first = futures::stream::iter([Ok(Bytes::from(head.data))]);
        let input = first.chain(stream.map(|m| m.map(|m| Bytes::from(m.data))));
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            let out = Outputs {
                stdout: |d| PostReceivePackResponse { data: d.to_vec() },
                stderr: None,
                exit: None,
            };
            transport::pump(process, input, sink, &deps, out).await
        }))
    }
}

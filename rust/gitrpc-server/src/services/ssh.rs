//! SSHService: upload-pack, receive-pack and upload-archive over bidirectional streams, in
//! the shape SSH front-ends (and `gitrpc-ssh`) speak: stdin in, stdout/stderr/exit out.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use gitrpc_proto::gitaly::ssh_service_server::SshService;
use gitrpc_proto::gitaly::*;
use tonic::{Request, Response, Status, Streaming};

use super::transport::{self, Flags, Outputs, Service};
use crate::deps::Deps;
use crate::error::Error;
use crate::pusher::{Fields, Protocol, Pusher};
use crate::stream::{spawn_stream, RpcStream};

pub struct SshServiceImpl {
    deps: Arc<Deps>,
}

impl SshServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        SshServiceImpl { deps }
    }
}

/// The first message carries the repository (and options) only.
async fn first<T: Default>(stream: &mut Streaming<T>) -> Result<T, Status> {
    stream
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("empty request stream"))
}

fn exit_status(value: i32) -> Option<ExitStatus> {
    Some(ExitStatus { value })
}

#[tonic::async_trait]
impl SshService for SshServiceImpl {
    /// Upload-pack over a sidechannel (see `upload_pack_sidechannel.rs`).
    async fn ssh_upload_pack_with_sidechannel(
        &self,
        req: Request<SshUploadPackWithSidechannelRequest>,
    ) -> Result<Response<SshUploadPackWithSidechannelResponse>, Status> {
        super::upload_pack_sidechannel::ssh(&self.deps, req).await
    }

    async fn ssh_upload_pack(
        &self,
        req: Request<Streaming<SshUploadPackRequest>>,
    ) -> Result<Response<RpcStream<SshUploadPackResponse>>, Status> {
        let mut stream = req.into_inner();
        let head = first(&mut stream).await?;
        if !head.stdin.is_empty() {
            return Err(Error::invalid("non-empty stdin in first request").into());
        }
        let repo = self.deps.repo(head.repository.as_ref())?;
        let process = transport::start(
            &repo,
            Service::UploadPack,
            Flags::SSH,
            &head.git_config_options,
            &head.git_protocol,
            None,
        )?;
        let input = stream.map(|m| m.map(|m| Bytes::from(m.stdin)));
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            let out = Outputs {
                stdout: |d| SshUploadPackResponse {
                    stdout: d.to_vec(),
                    ..Default::default()
                },
                stderr: Some(|d| SshUploadPackResponse {
                    stderr: d.to_vec(),
                    ..Default::default()
                }),
                exit: Some(|v| SshUploadPackResponse {
                    exit_status: exit_status(v),
                    ..Default::default()
                }),
            };
            transport::pump(process, input, sink, &deps, out).await
        }))
    }

    async fn ssh_receive_pack(
        &self,
        req: Request<Streaming<SshReceivePackRequest>>,
    ) -> Result<Response<RpcStream<SshReceivePackResponse>>, Status> {
        let (metadata, _, mut stream) = req.into_parts();
        let head = first(&mut stream).await?;
        if !head.stdin.is_empty() {
            return Err(Error::invalid("non-empty stdin in first request").into());
        }
        let fields = Fields {
            gl_id: &head.gl_id,
            gl_username: &head.gl_username,
            gl_repository: &head.gl_repository,
        };
        let pusher =
            Pusher::from_request(fields, head.repository.as_ref(), &metadata, Protocol::Ssh)?;
        let repo = self.deps.repo_for_write(head.repository.as_ref())?;
        let process = transport::start(
            &repo,
            Service::ReceivePack,
            Flags::SSH,
            &head.git_config_options,
            &head.git_protocol,
            Some(&pusher),
        )?;
        let input = stream.map(|m| m.map(|m| Bytes::from(m.stdin)));
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            let out = Outputs {
                stdout: |d| SshReceivePackResponse {
                    stdout: d.to_vec(),
                    ..Default::default()
                },
                stderr: Some(|d| SshReceivePackResponse {
                    stderr: d.to_vec(),
                    ..Default::default()
                }),
                exit: Some(|v| SshReceivePackResponse {
                    exit_status: exit_status(v),
                    ..Default::default()
                }),
            };
            transport::pump(process, input, sink, &deps, out).await
        }))
    }

    async fn ssh_upload_archive(
        &self,
        req: Request<Streaming<SshUploadArchiveRequest>>,
    ) -> Result<Response<RpcStream<SshUploadArchiveResponse>>, Status> {
        let mut stream = req.into_inner();
        let head = first(&mut stream).await?;
        if !head.stdin.is_empty() {
            return Err(Error::invalid("non-empty stdin in first request").into());
        }
        let repo = self.deps.repo(head.repository.as_ref())?;
        let process = transport::start(&repo, Service::UploadArchive, Flags::SSH, &[], "", None)?;
        let input = stream.map(|m| m.map(|m| Bytes::from(m.stdin)));
        let deps = self.deps.clone();
        Ok(spawn_stream(move |sink| async move {
            let out = Outputs {
                stdout: |d| SshUploadArchiveResponse {
                    stdout: d.to_vec(),
                    ..Default::default()
                },
                stderr: Some(|d| SshUploadArchiveResponse {
                    stderr: d.to_vec(),
                    ..Default::default()
                }),
                exit: Some(|v| SshUploadArchiveResponse {
                    exit_status: exit_status(v),
                    ..Default::default()
                }),
            };
            transport::pump(process, input, sink, &deps, out).await
        }))
    }
}

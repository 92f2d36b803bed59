//! ServerService: version of the server and of git, and whether each storage is usable.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use gitrpc_proto::gitaly::server_info_response::StorageStatus;
use gitrpc_proto::gitaly::server_service_server::ServerService;
use gitrpc_proto::gitaly::{ServerInfoRequest, ServerInfoResponse};
use tonic::{Request, Response, Status};

use crate::deps::Deps;

pub struct ServerServiceImpl {
    deps: Arc<Deps>,
}

impl ServerServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        ServerServiceImpl { deps }
    }
}

fn access(path: &Path, mode: i32) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

fn fs_type(path: &Path) -> String {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: statfs fills a zeroed plain-data struct for a valid path.
    let kind = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut st) != 0 {
            return "unknown".into();
        }
        st.f_type as i64
    };
    match kind {
        0xEF53 => "ext4",
        0x58465342 => "xfs",
        0x9123683E => "btrfs",
        0x01021994 => "tmpfs",
        0x794c7630 => "overlayfs",
        0x6969 => "nfs",
        0x2FC12FC1 => "zfs",
        _ => "unknown",
    }
    .into()
}

/// The storage's filesystem id, kept in `.gitaly-metadata` as Gitaly does (created once).
fn filesystem_id(root: &Path) -> String {
    let file = root.join(".gitaly-metadata");
    if let Ok(s) = std::fs::read_to_string(&file) {
        if let Some(id) = s.split('"').nth(3) {
            return id.to_string();
        }
    }
    let id = crate::tempdir::random_hex(16);
    let _ = std::fs::write(&file, format!("{{\"gitaly_filesystem_id\":\"{id}\"}}"));
    id
}

#[tonic::async_trait]
impl ServerService for ServerServiceImpl {
    async fn server_info(
        &self,
        _req: Request<ServerInfoRequest>,
    ) -> Result<Response<ServerInfoResponse>, Status> {
        let storage_statuses = self
            .deps
            .locator
            .storages()
            .map(|(name, root)| StorageStatus {
                storage_name: name.to_string(),
                readable: access(root, libc::R_OK | libc::X_OK),
                writeable: access(root, libc::W_OK),
                fs_type: fs_type(root),
                filesystem_id: filesystem_id(root),
                replication_factor: 1,
            })
            .collect();
        Ok(Response::new(ServerInfoResponse {
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            git_version: self.deps.git.version().to_string(),
            storage_statuses,
        }))
    }
}

//! One file per gRPC service. Each `*Impl` holds the shared [`crate::Deps`].

mod blob;
mod commit;
mod diff;
mod operations;
mod r#ref;
mod repository;
mod server;
mod smarthttp;
mod ssh;
mod transport;
mod upload_pack_sidechannel;

pub use blob::BlobServiceImpl;
pub use commit::CommitServiceImpl;
pub use diff::DiffServiceImpl;
pub use operations::OperationServiceImpl;
pub use r#ref::RefServiceImpl;
pub use repository::RepositoryServiceImpl;
pub use server::ServerServiceImpl;
pub use smarthttp::SmartHttpServiceImpl;
pub use ssh::SshServiceImpl;

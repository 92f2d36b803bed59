//! One file or folder per gRPC service. Each `*Impl` holds the shared [`crate::Deps`]; in a
//! folder, `mod.rs` has the trait impl, which only delegates, and each RPC has its own file
//! (`diff/commit_diff.rs`). [`reads`]: what the read RPCs share.

mod activity;
mod blob;
mod commit;
mod diff;
mod fastpath;
mod operations;
pub mod reads;
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

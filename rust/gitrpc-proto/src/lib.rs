//! Protobuf messages and tonic gRPC stubs for the Gitaly-compatible API that
//! gitrpc serves. The `.proto` sources in `proto/` are our own, wire-compatible
//! with a subset of Gitaly's; they are compiled at build time with protox.

/// Generated messages, clients (`*_client`) and servers (`*_server`) of
/// protobuf package `gitaly`.
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    rustdoc::bare_urls,
    rustdoc::invalid_html_tags
)]
pub mod gitaly {
    tonic::include_proto!("gitaly");
}

/// Encoded `google.protobuf.FileDescriptorSet` of all our `.proto` files and
/// their imports, for gRPC server reflection and descriptor checks.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/gitaly_descriptor.bin"));

/// The largest gRPC message a gitrpc client or server sends or accepts by default (64 MiB;
/// the server's request bound is its `max_message_bytes`). Large contents are streamed in
/// much smaller messages.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

pub mod auth;
pub mod identity;
pub mod limit;
pub mod methods;

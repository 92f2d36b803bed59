//! Client side of gitrpc, shared by tests, `gitrpc-ssh`, the C API and the Ruby gem.
//!
//! - [`address`]: parse `unix:/path`, `tcp://host:port`, `host:port`, `tls://host:port`;
//!   open a tonic channel.
//! - [`routing`]: storage → servers (sockets or in-process); each call goes to its
//!   repository's storage, `gitaly-servers` for a second repository.
//! - [`transport`]: a comma-separated address list → one transport (least-outstanding
//!   balancing, the v2 auth token on every call).
//! - [`client`]: [`Client`], one handle over a socket *or* an in-process server, with a
//!   default deadline, typed calls for the common RPCs and raw (protobuf bytes) calls.
//! - [`raw`]: the pass-through codec behind the raw calls.
//! - [`runtime`]: a fork-aware tokio runtime for blocking callers (C, Ruby), and [`runtime::Owned`]
//!   for values tied to it.
//! - `embedded` (feature `embedded`): a server embedded in a blocking caller, with its
//!   in-process clients.
//! - [`backchannel`], [`sidechannel`]: dialing as Gitaly's own clients do (a yamux session
//!   per connection) and the sidechannel upload-pack calls that need it.
//! - Front doors (`gitrpc-ssh`, `gitrpc-shell`, the Ruby gem's Rack endpoint): [`sshcmd`]
//!   (what an SSH client asked to run), [`paths`] (a user's repository path → storage and
//!   relative path), [`relay`] (an SSH session relayed on stdio), [`smarthttp`] (git's smart
//!   HTTP: routes, statuses, and a streaming call both ways).

pub mod address;
pub mod backchannel;
pub mod client;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod paths;
pub mod raw;
pub mod relay;
pub mod routing;
pub mod runtime;
pub mod sidechannel;
pub mod smarthttp;
pub mod sshcmd;
pub mod transport;

pub use address::{connect, Address, Error, Options, DEFAULT_TIMEOUT};
pub use client::details::{self, Detail};
pub use client::operations::{
    BranchUpdate, CommitFiles, FileAction, MergeBranch, MergeProposal, PickRevert,
};
pub use client::{described, ArchiveOptions, Blob, Client, TreeEntry};
pub use gitrpc_proto::gitaly;
pub use gitrpc_proto::identity::Identity;
pub use transport::Transport;

//! Integration tests: a real server on a temp unix socket over temp repositories built with
//! the real git CLI; answers are compared with git's own output.
#![allow(clippy::disallowed_methods)] // tests drive the git CLI directly to build fixtures

mod common;

/// The server's modules import only lower layers (ARCHITECTURE.md).
mod architecture;
/// Client side: several servers (least outstanding requests), retries of read-only calls.
mod balance;
/// BlobService: GetBlob, GetBlobs.
mod blob;
/// BlobService listings (step 11): ListBlobs, ListAllBlobs and the LFS pointer RPCs.
mod blob_lists;
/// gitrpc_client::Client over a socket and in-process (Serving), deadlines, raw calls.
mod client;
/// CommitService: FindCommit, ListCommits, TreeEntry, ...
mod commit;
/// CommitService history (step 11): ListLastCommitsForTree, FindCommits, RawBlame,
/// CountDivergingCommits, CommitStats, CheckObjectsExist, CommitsByMessage,
/// ListCommitsByRefName, GetCommitSignatures, GetCommitMessages.
mod commit_history;
/// DiffService: RawDiff, RawPatch, CommitDelta, DiffStats.
mod diff;
/// DiffService (step 11): CommitDiff with its limits, FindChangedPaths, GetPatchID.
mod diff_reads;
/// Admission control: [[concurrency]] and [pack_objects_limiting] under overload.
mod limits;
/// Metrics and diagnostics on their own thread, also while gRPC is jammed.
mod monitor;
/// OperationService: branches, tags, file commits, merges, cherry-picks; hooks, quarantine,
/// races, SHA-256, bad input.
mod operations;
/// OptimizeRepository, PruneUnreachableObjects, the background scheduler and daily window.
mod optimize;
/// The pack-objects cache in an in-process server: concurrent PostUploadPack, one
/// pack-objects.
mod packcache;
/// `[[rate_limiting]]` on tokio's paused clock: exact delays, counts, refusals, metrics.
mod ratelimit;
/// RefService: branches, tags, ListRefs, UpdateReferences, DeleteRefs.
mod r#ref;
/// RefService reads of step 11: names containing a commit, refs by oid, tag messages and
/// signatures, remote branches.
mod ref_reads;
/// RepositoryService and the locator's bad-input cases.
mod repository;
/// RepositoryService reads of step 11: GetArchive, search, GetFileAttributes, GetRawChanges,
/// RepositoryInfo, FindLicense.
mod repository_reads;
/// Storage routing over several servers and in-process; ReplicateRepository, bundles,
/// gitaly-servers.
mod routing;
/// Token v2 auth, TLS listener, unix socket permissions.
mod security;
/// ServerService, health, reflection, UNIMPLEMENTED.
mod server;
/// Backchannel connections and the sidechannel upload-pack RPCs with the Rust client: refusals,
/// git's own answers, shared listeners, TLS, 200 calls on one session.
mod sidechannel;
/// SmartHTTPService: info/refs and stateless-RPC POSTs against git's own answers.
mod smarthttp;
/// SSHService: first-message rules, deadlines kill git.
mod ssh;
/// Start-up errors: bad config keys, busy addresses.
mod startup;

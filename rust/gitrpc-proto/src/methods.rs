//! What clients may assume about methods. Gitaly marks each RPC `ACCESSOR` (reads only),
//! `MUTATOR` or `MAINTENANCE` in its protos (`op_type`); our protos carry no options, so the
//! accessors and maintenance RPCs we serve are listed here, checked against the served
//! services by a test. Every other RPC of package `gitaly` is a mutator.

/// Full method paths (`/gitaly.Service/Method`) of the read-only RPCs we serve whose request
/// is a single message (unary or server-streaming): a client may safely send the same
/// request again, e.g. to another server after `UNAVAILABLE` or `RESOURCE_EXHAUSTED`.
/// Declared methods that answer `UNIMPLEMENTED` until served are listed too (retrying that is
/// harmless). `/gitaly.CommitService/CheckObjectsExist` is an accessor too, but its request is
/// a stream, so it is never resent.
pub const READ_ONLY: &[&str] = &[
    "/gitaly.BlobService/GetBlob",
    "/gitaly.BlobService/GetBlobs",
    "/gitaly.BlobService/GetLFSPointers",
    "/gitaly.BlobService/ListAllBlobs",
    "/gitaly.BlobService/ListAllLFSPointers",
    "/gitaly.BlobService/ListBlobs",
    "/gitaly.BlobService/ListLFSPointers",
    "/gitaly.CommitService/CommitIsAncestor",
    "/gitaly.CommitService/CommitStats",
    "/gitaly.CommitService/CommitsByMessage",
    "/gitaly.CommitService/CountCommits",
    "/gitaly.CommitService/CountDivergingCommits",
    "/gitaly.CommitService/FindCommit",
    "/gitaly.CommitService/FindCommits",
    "/gitaly.CommitService/GetCommitMessages",
    "/gitaly.CommitService/GetCommitSignatures",
    "/gitaly.CommitService/GetTreeEntries",
    "/gitaly.CommitService/LastCommitForPath",
    "/gitaly.CommitService/ListCommits",
    "/gitaly.CommitService/ListCommitsByOid",
    "/gitaly.CommitService/ListCommitsByRefName",
    "/gitaly.CommitService/ListLastCommitsForTree",
    "/gitaly.CommitService/RawBlame",
    "/gitaly.CommitService/TreeEntry",
    "/gitaly.DiffService/CommitDelta",
    "/gitaly.DiffService/CommitDiff",
    "/gitaly.DiffService/DiffStats",
    "/gitaly.DiffService/FindChangedPaths",
    "/gitaly.DiffService/GetPatchID",
    "/gitaly.DiffService/RawDiff",
    "/gitaly.DiffService/RawPatch",
    "/gitaly.RefService/FindAllBranches",
    "/gitaly.RefService/FindAllRemoteBranches",
    "/gitaly.RefService/FindAllTags",
    "/gitaly.RefService/FindBranch",
    "/gitaly.RefService/FindDefaultBranchName",
    "/gitaly.RefService/FindLocalBranches",
    "/gitaly.RefService/FindRefsByOID",
    "/gitaly.RefService/FindTag",
    "/gitaly.RefService/GetTagMessages",
    "/gitaly.RefService/GetTagSignatures",
    "/gitaly.RefService/ListBranchNamesContainingCommit",
    "/gitaly.RefService/ListRefs",
    "/gitaly.RefService/ListTagNamesContainingCommit",
    "/gitaly.RefService/RefExists",
    "/gitaly.RepositoryService/FindLicense",
    "/gitaly.RepositoryService/FindMergeBase",
    "/gitaly.RepositoryService/GetArchive",
    "/gitaly.RepositoryService/GetFileAttributes",
    "/gitaly.RepositoryService/GetRawChanges",
    "/gitaly.RepositoryService/HasLocalBranches",
    "/gitaly.RepositoryService/ObjectFormat",
    "/gitaly.RepositoryService/RepositoryExists",
    "/gitaly.RepositoryService/RepositoryInfo",
    "/gitaly.RepositoryService/RepositorySize",
    "/gitaly.RepositoryService/SearchFilesByContent",
    "/gitaly.RepositoryService/SearchFilesByName",
    "/gitaly.ServerService/ServerInfo",
    "/gitaly.SmartHTTPService/InfoRefsReceivePack",
    "/gitaly.SmartHTTPService/InfoRefsUploadPack",
    "/grpc.health.v1.Health/Check",
];

/// Gitaly's `ACCESSOR`s we serve that are not in [`READ_ONLY`], because sending the request
/// again does not replay the call: the streaming ones take git's input in later messages, and
/// the sidechannel ones take it over the sidechannel, which the first attempt may already
/// have consumed.
pub const READ_ONLY_NOT_RETRIED: &[&str] = &[
    "/gitaly.SSHService/SSHUploadPack",
    "/gitaly.SSHService/SSHUploadPackWithSidechannel",
    "/gitaly.SmartHTTPService/PostUploadPack",
    "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel",
];

/// Gitaly's `MAINTENANCE` RPCs: they change how a repository is stored, not what it holds.
/// Never retried by clients (they are long and not idempotent in cost), not counted as
/// writes by the server's housekeeping scheduler, and one at a time per repository.
pub const MAINTENANCE: &[&str] = &[
    "/gitaly.RepositoryService/OptimizeRepository",
    "/gitaly.RepositoryService/PruneUnreachableObjects",
];

/// Is `path` a Gitaly `MUTATOR` (it may change a repository's refs or objects)? Every
/// `/gitaly.` method that is neither an accessor ([`READ_ONLY`], [`READ_ONLY_NOT_RETRIED`],
/// `CheckObjectsExist`) nor [`MAINTENANCE`], and not ServerService's (no repository).
pub fn is_mutator(path: &str) -> bool {
    path.starts_with("/gitaly.")
        && !path.starts_with("/gitaly.ServerService/")
        && path != "/gitaly.CommitService/CheckObjectsExist"
        && !READ_ONLY.contains(&path)
        && !READ_ONLY_NOT_RETRIED.contains(&path)
        && !MAINTENANCE.contains(&path)
}

/// Is `path` (`/package.Service/Method`) a read-only method that may be retried?
pub fn is_read_only(path: &str) -> bool {
    READ_ONLY.contains(&path)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn read_only_methods_exist_and_take_one_message() {
        let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods = std::collections::HashMap::new();
        for file in &set.file {
            for svc in &file.service {
                for m in &svc.method {
                    let path = format!("/{}.{}/{}", file.package(), svc.name(), m.name());
                    methods.insert(path, m.client_streaming());
                }
            }
        }
        for path in super::READ_ONLY {
            if path.starts_with("/grpc.") {
                continue;
            }
            assert_eq!(methods.get(*path), Some(&false), "{path}");
        }
        for path in super::READ_ONLY_NOT_RETRIED {
            assert!(methods.contains_key(*path), "{path}");
            assert!(!super::is_read_only(path), "{path}");
        }
        for path in super::MAINTENANCE {
            assert!(methods.contains_key(*path), "{path}");
            assert!(
                !super::is_read_only(path) && !super::is_mutator(path),
                "{path}"
            );
        }
        for (path, mutator) in [
            ("/gitaly.SSHService/SSHReceivePack", true),
            ("/gitaly.RefService/UpdateReferences", true),
            ("/gitaly.RepositoryService/WriteRef", true),
            ("/gitaly.RefService/RefExists", false),
            ("/gitaly.SSHService/SSHUploadPackWithSidechannel", false),
            ("/gitaly.CommitService/CheckObjectsExist", false),
            ("/gitaly.ServerService/ServerInfo", false),
            ("/grpc.health.v1.Health/Check", false),
        ] {
            assert_eq!(super::is_mutator(path), mutator, "{path}");
        }
    }
}

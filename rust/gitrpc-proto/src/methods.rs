//! What clients may assume about methods. Gitaly marks each RPC `ACCESSOR` (reads only) or
//! `MUTATOR` in its protos (`op_type`); our protos carry no options, so the accessors we
//! serve are listed here, checked against the served services by a test.

/// Full method paths (`/gitaly.Service/Method`) of the read-only RPCs we serve whose request
/// is a single message (unary or server-streaming): a client may safely send the same
/// request again, e.g. to another server after `UNAVAILABLE` or `RESOURCE_EXHAUSTED`.
pub const READ_ONLY: &[&str] = &[
    "/gitaly.BlobService/GetBlob",
    "/gitaly.BlobService/GetBlobs",
    "/gitaly.CommitService/CommitIsAncestor",
    "/gitaly.CommitService/CountCommits",
    "/gitaly.CommitService/FindCommit",
    "/gitaly.CommitService/GetTreeEntries",
    "/gitaly.CommitService/LastCommitForPath",
    "/gitaly.CommitService/ListCommits",
    "/gitaly.CommitService/ListCommitsByOid",
    "/gitaly.CommitService/TreeEntry",
    "/gitaly.DiffService/CommitDelta",
    "/gitaly.DiffService/DiffStats",
    "/gitaly.DiffService/RawDiff",
    "/gitaly.DiffService/RawPatch",
    "/gitaly.RefService/FindAllBranches",
    "/gitaly.RefService/FindAllTags",
    "/gitaly.RefService/FindBranch",
    "/gitaly.RefService/FindDefaultBranchName",
    "/gitaly.RefService/FindLocalBranches",
    "/gitaly.RefService/FindTag",
    "/gitaly.RefService/ListRefs",
    "/gitaly.RefService/RefExists",
    "/gitaly.RepositoryService/CreateBundle",
    "/gitaly.RepositoryService/FindMergeBase",
    "/gitaly.RepositoryService/HasLocalBranches",
    "/gitaly.RepositoryService/ObjectFormat",
    "/gitaly.RepositoryService/RepositoryExists",
    "/gitaly.RepositoryService/RepositorySize",
    "/gitaly.ServerService/ServerInfo",
    "/gitaly.SmartHTTPService/InfoRefsUploadPack",
    "/gitaly.SmartHTTPService/InfoRefsReceivePack",
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
    }
}

//! Wire-compatibility checks for our `.proto` files.
//!
//! The strict check compares every message, enum and RPC we declare with the
//! upstream Gitaly definitions in `shared/reference/gitaly-proto` (beside the
//! checkout). When that directory is absent the comparison is skipped, but
//! the hand-written spot checks below still run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use gitrpc_proto::FILE_DESCRIPTOR_SET;
use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet,
    ServiceDescriptorProto,
};

/// Our .proto files; each mirrors the upstream file with the same name.
const FILES: &[&str] = &[
    "shared.proto",
    "errors.proto",
    "repository.proto",
    "ref.proto",
    "commit.proto",
    "blob.proto",
    "diff.proto",
    "server.proto",
    "packfile.proto",
    "ssh.proto",
    "smarthttp.proto",
    "operations.proto",
];

/// RPCs Gitaly removed upstream but that we still serve in their historical
/// shape, together with the messages only they use.
const LEGACY_METHODS: &[&str] = &[
    "gitaly.SSHService.SSHUploadPack",
    "gitaly.SmartHTTPService.PostUploadPack",
];
const LEGACY_MESSAGES: &[&str] = &[
    ".gitaly.SSHUploadPackRequest",
    ".gitaly.SSHUploadPackResponse",
    ".gitaly.PostUploadPackRequest",
    ".gitaly.PostUploadPackResponse",
];

/// Every service we declare and exactly the RPCs it must contain.
const SERVICES: &[(&str, &[&str])] = &[
    (
        "RepositoryService",
        &[
            "RepositoryExists",
            "CreateRepository",
            "RemoveRepository",
            "RepositorySize",
            "ObjectFormat",
            "HasLocalBranches",
            "FindMergeBase",
            "WriteRef",
            "GetArchive",
            "SearchFilesByContent",
            "SearchFilesByName",
            "GetRawChanges",
            "RepositoryInfo",
            "GetFileAttributes",
            "FindLicense",
            "OptimizeRepository",
            "PruneUnreachableObjects",
        ],
    ),
    (
        "RefService",
        &[
            "FindDefaultBranchName",
            "RefExists",
            "FindLocalBranches",
            "FindAllBranches",
            "FindBranch",
            "FindTag",
            "FindAllTags",
            "ListRefs",
            "UpdateReferences",
            "DeleteRefs",
            "ListBranchNamesContainingCommit",
            "ListTagNamesContainingCommit",
            "FindRefsByOID",
            "GetTagMessages",
            "GetTagSignatures",
            "FindAllRemoteBranches",
        ],
    ),
    (
        "CommitService",
        &[
            "FindCommit",
            "ListCommits",
            "ListCommitsByOid",
            "CommitIsAncestor",
            "CountCommits",
            "TreeEntry",
            "GetTreeEntries",
            "LastCommitForPath",
            "ListLastCommitsForTree",
            "FindCommits",
            "CountDivergingCommits",
            "RawBlame",
            "CommitStats",
            "CheckObjectsExist",
            "CommitsByMessage",
            "ListCommitsByRefName",
            "GetCommitSignatures",
            "GetCommitMessages",
        ],
    ),
    (
        "BlobService",
        &[
            "GetBlob",
            "GetBlobs",
            "ListBlobs",
            "ListAllBlobs",
            "GetLFSPointers",
            "ListLFSPointers",
            "ListAllLFSPointers",
        ],
    ),
    (
        "DiffService",
        &[
            "RawDiff",
            "RawPatch",
            "CommitDelta",
            "DiffStats",
            "CommitDiff",
            "FindChangedPaths",
            "GetPatchID",
        ],
    ),
    ("ServerService", &["ServerInfo"]),
    (
        "OperationService",
        &[
            "UserCreateBranch",
            "UserUpdateBranch",
            "UserDeleteBranch",
            "UserCreateTag",
            "UserDeleteTag",
            "UserMergeToRef",
            "UserRebaseToRef",
            "UserMergeBranch",
            "UserFFBranch",
            "UserCherryPick",
            "UserCommitFiles",
            "UserRevert",
            "UserSquash",
        ],
    ),
    (
        "SSHService",
        &[
            "SSHUploadPackWithSidechannel",
            "SSHUploadPack",
            "SSHReceivePack",
            "SSHUploadArchive",
        ],
    ),
    (
        "SmartHTTPService",
        &[
            "InfoRefsUploadPack",
            "InfoRefsReceivePack",
            "PostUploadPack",
            "PostUploadPackWithSidechannel",
            "PostReceivePack",
        ],
    ),
];

/// All definitions of one descriptor set, indexed by fully qualified name
/// (with a leading dot for types, as in `type_name`).
#[derive(Default)]
struct Index {
    messages: BTreeMap<String, DescriptorProto>,
    enums: BTreeMap<String, EnumDescriptorProto>,
    services: BTreeMap<String, ServiceDescriptorProto>,
}

impl Index {
    fn new(fds: &FileDescriptorSet) -> Self {
        let mut index = Index::default();
        for file in &fds.file {
            let package = file.package();
            let scope = if package.is_empty() {
                String::new()
            } else {
                format!(".{package}")
            };
            for message in &file.message_type {
                index.add_message(&scope, message);
            }
            for en in &file.enum_type {
                index
                    .enums
                    .insert(format!("{scope}.{}", en.name()), en.clone());
            }
            for service in &file.service {
                index
                    .services
                    .insert(format!("{package}.{}", service.name()), service.clone());
            }
        }
        index
    }

    fn add_message(&mut self, scope: &str, message: &DescriptorProto) {
        let name = format!("{scope}.{}", message.name());
        for nested in &message.nested_type {
            self.add_message(&name, nested);
        }
        for en in &message.enum_type {
            self.enums
                .insert(format!("{name}.{}", en.name()), en.clone());
        }
        self.messages.insert(name, message.clone());
    }
}

fn ours() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

fn gitaly_files(fds: &FileDescriptorSet) -> Vec<&prost_types::FileDescriptorProto> {
    fds.file
        .iter()
        .filter(|f| f.package() == "gitaly")
        .collect()
}

/// `(name, number, type, label, type_name)` of every field of a message.
fn fields(index: &Index, message: &str) -> Vec<(String, i32, Type, Label, String)> {
    let message = index
        .messages
        .get(message)
        .unwrap_or_else(|| panic!("message {message} is not defined"));
    message
        .field
        .iter()
        .map(|f| {
            (
                f.name().to_owned(),
                f.number(),
                f.r#type(),
                f.label(),
                f.type_name().to_owned(),
            )
        })
        .collect()
}

fn field(
    name: &str,
    number: i32,
    ty: Type,
    label: Label,
    type_name: &str,
) -> (String, i32, Type, Label, String) {
    (name.to_owned(), number, ty, label, type_name.to_owned())
}

#[test]
fn descriptor_set_holds_exactly_our_files() {
    let fds = ours();
    let names: BTreeSet<&str> = gitaly_files(&fds).iter().map(|f| f.name()).collect();
    assert_eq!(names, FILES.iter().copied().collect::<BTreeSet<_>>());
    for file in gitaly_files(&fds) {
        assert_eq!(file.syntax(), "proto3", "{} must be proto3", file.name());
        for dep in &file.dependency {
            assert!(
                FILES.contains(&dep.as_str()) || dep.starts_with("google/protobuf/"),
                "{} imports {dep}, which we do not ship",
                file.name()
            );
        }
    }
}

#[test]
fn services_declare_exactly_the_served_rpcs() {
    let index = Index::new(&ours());
    let declared: BTreeSet<&str> = index.services.keys().map(String::as_str).collect();
    let expected: BTreeSet<String> = SERVICES
        .iter()
        .map(|(s, _)| format!("gitaly.{s}"))
        .collect();
    assert_eq!(declared, expected.iter().map(String::as_str).collect());

    for (service, methods) in SERVICES {
        let descriptor = &index.services[&format!("gitaly.{service}")];
        let got: BTreeSet<&str> = descriptor.method.iter().map(|m| m.name()).collect();
        let want: BTreeSet<&str> = methods.iter().copied().collect();
        assert_eq!(got, want, "RPCs of {service}");
        assert_eq!(
            descriptor.method.len(),
            methods.len(),
            "duplicate RPC in {service}"
        );
    }
}

#[test]
fn legacy_ssh_upload_pack_shape() {
    use Label::{Optional, Repeated};
    use Type::{Bytes, Int32, Message, String as Str};

    let index = Index::new(&ours());
    assert_eq!(
        fields(&index, ".gitaly.SSHUploadPackRequest"),
        vec![
            field("repository", 1, Message, Optional, ".gitaly.Repository"),
            field("stdin", 2, Bytes, Optional, ""),
            field("git_config_options", 4, Str, Repeated, ""),
            field("git_protocol", 5, Str, Optional, ""),
        ]
    );
    let request = &index.messages[".gitaly.SSHUploadPackRequest"];
    assert!(
        request
            .reserved_range
            .iter()
            .any(|r| r.start() == 3 && r.end() == 4),
        "field 3 of SSHUploadPackRequest must stay reserved"
    );
    assert_eq!(
        fields(&index, ".gitaly.SSHUploadPackResponse"),
        vec![
            field("stdout", 1, Bytes, Optional, ""),
            field("stderr", 2, Bytes, Optional, ""),
            field("exit_status", 3, Message, Optional, ".gitaly.ExitStatus"),
        ]
    );
    assert_eq!(
        fields(&index, ".gitaly.ExitStatus"),
        vec![field("value", 1, Int32, Optional, "")]
    );

    let method = index.services["gitaly.SSHService"]
        .method
        .iter()
        .find(|m| m.name() == "SSHUploadPack")
        .expect("SSHUploadPack is declared");
    assert_eq!(method.input_type(), ".gitaly.SSHUploadPackRequest");
    assert_eq!(method.output_type(), ".gitaly.SSHUploadPackResponse");
    assert!(method.client_streaming() && method.server_streaming());
}

#[test]
fn legacy_post_upload_pack_shape() {
    use Label::{Optional, Repeated};
    use Type::{Bytes, Message, String as Str};

    let index = Index::new(&ours());
    assert_eq!(
        fields(&index, ".gitaly.PostUploadPackRequest"),
        vec![
            field("repository", 1, Message, Optional, ".gitaly.Repository"),
            field("data", 2, Bytes, Optional, ""),
            field("git_config_options", 3, Str, Repeated, ""),
            field("git_protocol", 4, Str, Optional, ""),
        ]
    );
    assert_eq!(
        fields(&index, ".gitaly.PostUploadPackResponse"),
        vec![field("data", 1, Bytes, Optional, "")]
    );

    let method = index.services["gitaly.SmartHTTPService"]
        .method
        .iter()
        .find(|m| m.name() == "PostUploadPack")
        .expect("PostUploadPack is declared");
    assert_eq!(method.input_type(), ".gitaly.PostUploadPackRequest");
    assert_eq!(method.output_type(), ".gitaly.PostUploadPackResponse");
    assert!(method.client_streaming() && method.server_streaming());
}

#[test]
fn git_commit_field_numbers() {
    use Label::{Optional, Repeated};
    use Type::{Bytes, Enum, Int64, Message, String as Str};

    let index = Index::new(&ours());
    assert_eq!(
        fields(&index, ".gitaly.GitCommit"),
        vec![
            field("id", 1, Str, Optional, ""),
            field("subject", 2, Bytes, Optional, ""),
            field("body", 3, Bytes, Optional, ""),
            field("author", 4, Message, Optional, ".gitaly.CommitAuthor"),
            field("committer", 5, Message, Optional, ".gitaly.CommitAuthor"),
            field("parent_ids", 6, Str, Repeated, ""),
            field("body_size", 7, Int64, Optional, ""),
            field("signature_type", 8, Enum, Optional, ".gitaly.SignatureType"),
            field("tree_id", 9, Str, Optional, ""),
            field("trailers", 10, Message, Repeated, ".gitaly.CommitTrailer"),
            field(
                "short_stats",
                11,
                Message,
                Optional,
                ".gitaly.CommitStatInfo"
            ),
            field("referenced_by", 12, Bytes, Repeated, ""),
            field("encoding", 13, Str, Optional, ""),
        ]
    );
}

#[test]
fn generated_code_round_trips() {
    use gitrpc_proto::gitaly::{Repository, SshUploadPackRequest};

    let request = SshUploadPackRequest {
        repository: Some(Repository {
            storage_name: "default".into(),
            relative_path: "a/b.git".into(),
            ..Default::default()
        }),
        stdin: b"0000".to_vec(),
        git_config_options: vec!["uploadpack.allowFilter=true".into()],
        git_protocol: "version=2".into(),
    };
    let bytes = request.encode_to_vec();
    assert_eq!(
        SshUploadPackRequest::decode(bytes.as_slice()).unwrap(),
        request
    );
}

/// Location of the upstream Gitaly protos: `$GITALY_PROTO_DIR` (for checkouts elsewhere, such
/// as worktrees), else beside this checkout, if it has them.
fn upstream_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GITALY_PROTO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/gitaly-proto")
        });
    dir.is_dir().then_some(dir)
}

/// Collects mismatches instead of stopping at the first one.
#[derive(Default)]
struct Report {
    problems: Vec<String>,
    messages: usize,
    fields: usize,
    enums: usize,
    enum_values: usize,
    methods: usize,
}

impl Report {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }
}

fn is_deprecated(f: &FieldDescriptorProto) -> bool {
    f.options.as_ref().is_some_and(|o| o.deprecated())
}

fn is_packed(f: &FieldDescriptorProto) -> Option<bool> {
    f.options.as_ref().and_then(|o| o.packed)
}

fn is_reserved(message: &DescriptorProto, number: i32) -> bool {
    message
        .reserved_range
        .iter()
        .any(|r| r.start() <= number && number < r.end())
}

fn compare_message(
    report: &mut Report,
    name: &str,
    ours: &DescriptorProto,
    upstream: &DescriptorProto,
) {
    let oneof_name = |m: &DescriptorProto, f: &FieldDescriptorProto| {
        f.oneof_index
            .map(|i| m.oneof_decl[i as usize].name().to_owned())
    };

    report.messages += 1;
    for f in &ours.field {
        report.fields += 1;
        let what = format!("{name}.{} (= {})", f.name(), f.number());
        let Some(u) = upstream.field.iter().find(|u| u.number() == f.number()) else {
            report.problem(format!("{what}: upstream has no field with this number"));
            continue;
        };
        let pairs = [
            ("name", f.name().to_owned(), u.name().to_owned()),
            (
                "type",
                format!("{:?}", f.r#type()),
                format!("{:?}", u.r#type()),
            ),
            (
                "label",
                format!("{:?}", f.label()),
                format!("{:?}", u.label()),
            ),
            (
                "type_name",
                f.type_name().to_owned(),
                u.type_name().to_owned(),
            ),
            (
                "json_name",
                f.json_name().to_owned(),
                u.json_name().to_owned(),
            ),
            (
                "oneof",
                format!("{:?}", oneof_name(ours, f)),
                format!("{:?}", oneof_name(upstream, u)),
            ),
            (
                "proto3_optional",
                f.proto3_optional().to_string(),
                u.proto3_optional().to_string(),
            ),
            (
                "deprecated",
                is_deprecated(f).to_string(),
                is_deprecated(u).to_string(),
            ),
            (
                "packed",
                format!("{:?}", is_packed(f)),
                format!("{:?}", is_packed(u)),
            ),
            (
                "default",
                f.default_value().to_owned(),
                u.default_value().to_owned(),
            ),
        ];
        for (attr, a, b) in pairs {
            if a != b {
                report.problem(format!("{what}: {attr} is {a}, upstream {b}"));
            }
        }
    }

    // Upstream fields may only be left out if we reserve their numbers.
    for u in &upstream.field {
        if !ours.field.iter().any(|f| f.number() == u.number()) && !is_reserved(ours, u.number()) {
            report.problem(format!(
                "{name}: upstream field {} = {} is missing and not reserved",
                u.name(),
                u.number()
            ));
        }
    }

    // Everything upstream reserves must stay reserved here.
    for r in &upstream.reserved_range {
        for number in r.start()..r.end() {
            if !is_reserved(ours, number) {
                report.problem(format!(
                    "{name}: upstream reserves field {number}, we do not"
                ));
            }
        }
    }
    for reserved in &upstream.reserved_name {
        if !ours.reserved_name.contains(reserved) {
            report.problem(format!(
                "{name}: upstream reserves name {reserved:?}, we do not"
            ));
        }
    }
    // Our own reservations must not hide a live upstream field.
    for r in &ours.reserved_range {
        for number in r.start()..r.end() {
            if let Some(u) = upstream.field.iter().find(|u| u.number() == number) {
                if !is_deprecated(u) {
                    report.problem(format!(
                        "{name}: we reserve {number}, but upstream field {} is live",
                        u.name()
                    ));
                }
            }
        }
    }

    let our_oneofs: Vec<&str> = ours.oneof_decl.iter().map(|o| o.name()).collect();
    let upstream_oneofs: Vec<&str> = upstream.oneof_decl.iter().map(|o| o.name()).collect();
    if our_oneofs != upstream_oneofs {
        report.problem(format!(
            "{name}: oneofs {our_oneofs:?}, upstream {upstream_oneofs:?}"
        ));
    }
}

fn compare_enum(
    report: &mut Report,
    name: &str,
    ours: &EnumDescriptorProto,
    upstream: &EnumDescriptorProto,
) {
    let values = |e: &EnumDescriptorProto| -> BTreeSet<(i32, String)> {
        e.value
            .iter()
            .map(|v| (v.number(), v.name().to_owned()))
            .collect()
    };
    report.enums += 1;
    let (a, b) = (values(ours), values(upstream));
    report.enum_values += a.len();
    if a != b {
        report.problem(format!("enum {name}: values {a:?}, upstream {b:?}"));
    }
    let ranges = |e: &EnumDescriptorProto| -> BTreeSet<(i32, i32)> {
        e.reserved_range
            .iter()
            .map(|r| (r.start(), r.end()))
            .collect()
    };
    if ranges(ours) != ranges(upstream) || ours.reserved_name != upstream.reserved_name {
        report.problem(format!(
            "enum {name}: reserved ranges or names differ from upstream"
        ));
    }
}

#[test]
fn matches_upstream_gitaly() {
    let Some(dir) = upstream_dir() else {
        eprintln!("skipping upstream comparison: ../shared/reference/gitaly-proto not found beside the checkout");
        return;
    };

    // Compile only the upstream files we mirror; protox pulls in what they
    // import (lint.proto, packfile.proto, well-known types) from `dir`.
    let upstream_fds = protox::compile(FILES, [&dir]).expect("upstream protos compile");
    let upstream = Index::new(&upstream_fds);
    let ours_fds = ours();
    let ours = Index::new(&ours_fds);
    let mut report = Report::default();

    // Each of our files must define its types in the same upstream file, so
    // the split across files (and thus imports) stays the same.
    let upstream_file_of = |fds: &FileDescriptorSet| -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for file in fds.file.iter().filter(|f| f.package() == "gitaly") {
            for m in &file.message_type {
                map.insert(format!(".gitaly.{}", m.name()), file.name().to_owned());
            }
            for e in &file.enum_type {
                map.insert(format!(".gitaly.{}", e.name()), file.name().to_owned());
            }
            for s in &file.service {
                map.insert(format!("gitaly.{}", s.name()), file.name().to_owned());
            }
        }
        map
    };
    let upstream_files = upstream_file_of(&upstream_fds);
    for (item, file) in upstream_file_of(&ours_fds) {
        match upstream_files.get(&item) {
            Some(up) if *up != file => {
                report.problem(format!("{item} is in {file}, upstream in {up}"))
            }
            _ => {}
        }
    }

    for (name, message) in ours
        .messages
        .iter()
        .filter(|(n, _)| n.starts_with(".gitaly."))
    {
        match upstream.messages.get(name) {
            Some(up) => compare_message(&mut report, name, message, up),
            None if LEGACY_MESSAGES.contains(&name.as_str()) => {}
            None => report.problem(format!("message {name} does not exist upstream")),
        }
    }
    for (name, en) in ours.enums.iter().filter(|(n, _)| n.starts_with(".gitaly.")) {
        match upstream.enums.get(name) {
            Some(up) => compare_enum(&mut report, name, en, up),
            None => report.problem(format!("enum {name} does not exist upstream")),
        }
    }
    for (name, service) in &ours.services {
        let Some(up) = upstream.services.get(name) else {
            report.problem(format!("service {name} does not exist upstream"));
            continue;
        };
        for method in &service.method {
            let full = format!("{name}.{}", method.name());
            report.methods += 1;
            let Some(u) = up.method.iter().find(|u| u.name() == method.name()) else {
                if !LEGACY_METHODS.contains(&full.as_str()) {
                    report.problem(format!("rpc {full} does not exist upstream"));
                }
                continue;
            };
            let shape = |m: &prost_types::MethodDescriptorProto| {
                (
                    m.input_type().to_owned(),
                    m.output_type().to_owned(),
                    m.client_streaming(),
                    m.server_streaming(),
                )
            };
            if shape(method) != shape(u) {
                report.problem(format!(
                    "rpc {full}: (input, output, client streaming, server streaming) is {:?}, upstream {:?}",
                    shape(method),
                    shape(u)
                ));
            }
        }
    }
    // A legacy RPC must really be gone upstream, or it should be compared.
    for legacy in LEGACY_METHODS {
        let (service, method) = legacy.rsplit_once('.').unwrap();
        assert!(
            !upstream.services[service]
                .method
                .iter()
                .any(|m| m.name() == method),
            "{legacy} exists upstream again; drop it from LEGACY_METHODS"
        );
    }

    assert!(
        report.problems.is_empty(),
        "{} mismatch(es) with upstream Gitaly:\n  {}",
        report.problems.len(),
        report.problems.join("\n  ")
    );
    // Guard against the comparison silently checking nothing.
    assert!(
        report.fields > 200 && report.enum_values > 40 && report.methods == 88,
        "{} RPCs compared",
        report.methods
    );
    eprintln!(
        "compared {} messages ({} fields), {} enums ({} values), {} RPCs with upstream",
        report.messages, report.fields, report.enums, report.enum_values, report.methods
    );
}

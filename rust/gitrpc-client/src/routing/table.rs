//! Where a request keeps its repositories: for every method of our protos, the field path
//! to the repository the call acts on (the *target*, which picks the route) and, for the
//! RPCs that name a second repository, the path to that one (whose server goes into
//! `gitaly-servers`). Built once from `gitrpc_proto::FILE_DESCRIPTOR_SET`.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message;
use prost_types::{field_descriptor_proto::Type, DescriptorProto, FileDescriptorSet};

const REPOSITORY: &str = ".gitaly.Repository";

/// How to find a method's repositories in its first request message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// The method takes no repository (ServerInfo, health checks, reflection): it goes to
    /// the default route.
    NoRepository,
    /// Field numbers to the target `Repository`, and to a second one if the method names
    /// one.
    Repository {
        target: Vec<u32>,
        secondary: Option<Vec<u32>>,
    },
}

/// RPCs that name a second repository, maybe on another storage, and the field path to
/// it (Gitaly's protos; Rails sends `gitaly-servers` for these). Those we don't declare are
/// listed too, so raw calls to a Gitaly get it.
pub(crate) const SECONDARY: &[(&str, &[u32])] = &[
    ("/gitaly.RepositoryService/ReplicateRepository", &[2]),
    ("/gitaly.RepositoryService/CreateFork", &[2]),
    ("/gitaly.RepositoryService/FetchSourceBranch", &[2]),
    ("/gitaly.OperationService/UserCommitFiles", &[1, 8]),
    ("/gitaly.OperationService/UserCherryPick", &[7]),
    ("/gitaly.OperationService/UserRevert", &[7]),
    ("/gitaly.OperationService/UserRebaseConfirmable", &[1, 6]),
    ("/gitaly.ConflictsService/ResolveConflicts", &[1, 3]),
];

/// Gitaly methods we don't declare whose target repository is not field 1 (from Gitaly's
/// `target_repository` annotations): ObjectPoolService keeps it in an `ObjectPool`.
const TARGET_OVERRIDES: &[(&str, &[u32])] = &[
    ("/gitaly.ObjectPoolService/CreateObjectPool", &[1, 1]),
    ("/gitaly.ObjectPoolService/DeleteObjectPool", &[1, 1]),
    ("/gitaly.ObjectPoolService/LinkRepositoryToObjectPool", &[2]),
    ("/gitaly.ObjectPoolService/FetchIntoObjectPool", &[2, 1]),
];

/// The table for our protos.
pub(crate) fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let set = FileDescriptorSet::decode(gitrpc_proto::FILE_DESCRIPTOR_SET)
            .expect("our descriptor set decodes");
        Table::from_descriptors(&set)
    })
}

#[derive(Debug)]
pub(crate) struct Table {
    methods: HashMap<String, Rule>,
}

impl Table {
    pub(crate) fn from_descriptors(set: &FileDescriptorSet) -> Table {
        let mut messages = HashMap::new();
        for file in &set.file {
            let pkg = file.package();
            for m in &file.message_type {
                collect(&mut messages, &format!(".{pkg}"), m);
            }
        }
        let mut methods = HashMap::new();
        for file in &set.file {
            for svc in &file.service {
                for m in &svc.method {
                    let path = format!("/{}.{}/{}", file.package(), svc.name(), m.name());
                    let target = find_repository(&messages, m.input_type(), 0);
                    let rule = match target {
                        None => Rule::NoRepository,
                        Some(target) => Rule::Repository {
                            target,
                            secondary: secondary(&path),
                        },
                    };
                    methods.insert(path, rule);
                }
            }
        }
        Table { methods }
    }

    /// The rule for `path`; methods we don't declare (a raw call, maybe to a Gitaly) are
    /// taken to keep their target repository in field 1, unless listed otherwise above,
    /// except the health and reflection services, which have none.
    pub(crate) fn rule(&self, path: &str) -> Rule {
        if let Some(r) = self.methods.get(path) {
            return r.clone();
        }
        if path.starts_with("/grpc.") {
            return Rule::NoRepository;
        }
        let target = TARGET_OVERRIDES
            .iter()
            .find(|(m, _)| *m == path)
            .map_or_else(|| vec![1], |(_, p)| p.to_vec());
        Rule::Repository {
            target,
            secondary: secondary(path),
        }
    }

    /// Is `path` a method of our protos (its rule is known, not guessed)?
    pub(crate) fn declares(&self, path: &str) -> bool {
        self.methods.contains_key(path)
    }

    /// Every method we declare, with its rule (tests).
    #[cfg(test)]
    pub(crate) fn methods(&self) -> &HashMap<String, Rule> {
        &self.methods
    }
}

fn secondary(path: &str) -> Option<Vec<u32>> {
    SECONDARY
        .iter()
        .find(|(m, _)| *m == path)
        .map(|(_, p)| p.to_vec())
}

fn collect<'a>(
    out: &mut HashMap<String, &'a DescriptorProto>,
    scope: &str,
    m: &'a DescriptorProto,
) {
    let name = format!("{scope}.{}", m.name());
    for nested in &m.nested_type {
        collect(out, &name, nested);
    }
    out.insert(name, m);
}

/// The path to the target `Repository` of message `type_name`: its field named
/// `repository` if it has one of that type, else the first `Repository` field found depth
/// first in field order (an operation's `header.repository`).
fn find_repository(
    messages: &HashMap<String, &DescriptorProto>,
    type_name: &str,
    depth: usize,
) -> Option<Vec<u32>> {
    let m = messages.get(type_name)?;
    let is_repo = |f: &&prost_types::FieldDescriptorProto| {
        f.r#type() == Type::Message && f.type_name() == REPOSITORY
    };
    if let Some(f) = m
        .field
        .iter()
        .filter(is_repo)
        .find(|f| f.name() == "repository")
    {
        return Some(vec![f.number() as u32]);
    }
    for f in &m.field {
        if is_repo(&f) {
            return Some(vec![f.number() as u32]);
        }
        if f.r#type() == Type::Message && depth < 3 {
            if let Some(mut rest) = find_repository(messages, f.type_name(), depth + 1) {
                rest.insert(0, f.number() as u32);
                return Some(rest);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_a_rule() {
        let t = table();
        let rule = |p: &str| t.rule(p);
        let repo = |target: &[u32]| Rule::Repository {
            target: target.to_vec(),
            secondary: None,
        };
        assert_eq!(rule("/gitaly.RefService/RefExists"), repo(&[1]));
        assert_eq!(rule("/gitaly.SSHService/SSHUploadPack"), repo(&[1]));
        assert_eq!(
            rule("/gitaly.RepositoryService/ReplicateRepository"),
            Rule::Repository {
                target: vec![1],
                secondary: Some(vec![2])
            }
        );
        assert_eq!(rule("/gitaly.ServerService/ServerInfo"), Rule::NoRepository);
        assert_eq!(rule("/grpc.health.v1.Health/Check"), Rule::NoRepository);
        // Not ours: field 1, or what Gitaly annotates.
        assert_eq!(rule("/gitaly.RemoteService/FindRemoteRootRef"), repo(&[1]));
        assert_eq!(
            rule("/gitaly.ObjectPoolService/FetchIntoObjectPool"),
            repo(&[2, 1])
        );
        // Every method we declare but ServerInfo keeps its repository in field 1.
        for (path, r) in t.methods() {
            if path == "/gitaly.ServerService/ServerInfo" {
                continue;
            }
            match r {
                Rule::Repository { target, .. } => {
                    assert!(target.first() == Some(&1), "{path}: {target:?}")
                }
                Rule::NoRepository => panic!("{path} has no repository"),
            }
        }
    }
}

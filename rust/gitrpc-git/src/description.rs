//! What gitrpc knows about each git subcommand it may run, in one table (Gitaly's
//! `command_description.go`): whether it understands `--end-of-options`, which client
//! revisions it takes and how they are checked, the `-c` config it always runs with, whether
//! a client's `git_config_options` may reach it, and whether it writes references.
//!
//! Services never repeat this knowledge: [`crate::Command`] reads it when it builds an
//! argument vector, and [`Revisions::stdin`] when revisions go to git's standard input.

use crate::{validate, Error, Result};

/// The git subcommands gitrpc may run. Nothing else can be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subcommand {
    Archive,
    Blame,
    CatFile,
    CheckAttr,
    CommitGraph,
    CommitTree,
    CountObjects,
    Diff,
    DiffTree,
    Fetch,
    ForEachRef,
    FormatPatch,
    Grep,
    HashObject,
    Init,
    Log,
    LsTree,
    MergeBase,
    MergeTree,
    Mktag,
    Mktree,
    PackObjects,
    PackRefs,
    PatchId,
    Prune,
    PrunePacked,
    ReceivePack,
    Repack,
    RevList,
    RevParse,
    ShowRef,
    SymbolicRef,
    UpdateRef,
    UploadArchive,
    UploadPack,
    Version,
}

/// Which client revisions a subcommand takes, and how they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revisions {
    /// None: its positional arguments are ours alone (upload-archive reads its first
    /// argument as the repository directory, whatever it looks like).
    None,
    /// Revisions checked by [`validate::revision`]: no leading `-`, no NUL, whitespace or
    /// control characters. After `--end-of-options` where the subcommand knows it.
    Plain,
    /// Plain revisions and the pseudo revisions of [`is_pseudo_revision`] (`<new> --not
    /// --all`). These count as options, so their position matters and they can't follow
    /// `--end-of-options`: they are given on standard input (`--stdin`, see
    /// [`Revisions::stdin`]), where git takes them in order and nothing else starting with `-`.
    AllowPseudo,
}

/// The pseudo revisions a client may give where [`Revisions::AllowPseudo`] applies, as they
/// are (Gitaly's `AllowPseudoRevision`; git 2.47's `rev-list --stdin` takes each of them).
pub const PSEUDO_REVISIONS: &[&str] =
    &["--all", "--not", "--branches", "--tags", "--alternate-refs"];

/// Pseudo revisions that take a pattern: `--branches=<glob>`, `--tags=<glob>`,
/// `--glob=<glob>`.
pub const PSEUDO_REVISION_PREFIXES: &[&str] = &["--branches=", "--tags=", "--glob="];

/// Is `rev` one of Gitaly's pseudo revisions ([`PSEUDO_REVISIONS`], or a prefix of
/// [`PSEUDO_REVISION_PREFIXES`] followed by anything)?
pub fn is_pseudo_revision(rev: &[u8]) -> bool {
    PSEUDO_REVISIONS.iter().any(|p| p.as_bytes() == rev)
        || PSEUDO_REVISION_PREFIXES
            .iter()
            .any(|p| rev.starts_with(p.as_bytes()))
}

/// A value of a subcommand's default config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigValue {
    Fixed(&'static str),
    /// log2 of the CPUs, at least 1 (Gitaly's `threadsConfigValue`: a thread per CPU would
    /// starve concurrent commands).
    Threads,
}

impl ConfigValue {
    pub fn value(self) -> std::borrow::Cow<'static, str> {
        match self {
            ConfigValue::Fixed(v) => v.into(),
            ConfigValue::Threads => threads().to_string().into(),
        }
    }
}

/// `max(1, floor(log2(cpus)))`.
fn threads() -> u32 {
    static THREADS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        cpus.ilog2().max(1)
    })
}

/// `-c` config every git gets, whatever the subcommand, before its own (Gitaly's globals):
/// replace refs could swap any object for another (a security hole: they are off); blobs over
/// 50 MiB are streamed rather than slurped and are "binary" in diffs. Set by [`crate::Git`],
/// next to `core.hooksPath`, so pooled cat-file processes get them too.
pub const GLOBAL_CONFIG: &[(&str, &str)] = &[
    ("core.useReplaceRefs", "false"),
    ("core.bigFileThreshold", "50m"),
];

/// One subcommand's entry in the table.
#[derive(Debug)]
pub struct Description {
    pub sub: Subcommand,
    /// The name git knows it by.
    pub name: &'static str,
    /// It parses options with parse-options, so `--end-of-options` ends them. Where it
    /// doesn't (or breaks with it), positional arguments follow the flags directly.
    pub end_of_options: bool,
    /// Client revisions it takes.
    pub revisions: Revisions,
    /// `-c key=value` every run gets, after the server's own config and before the
    /// command's and the client's (so a client may turn an allowed default off).
    pub default_config: &'static [(&'static str, ConfigValue)],
    /// A client's checked `git_config_options` may be passed (the transports).
    pub client_config: bool,
    /// It may write references (Gitaly's `mayUpdateRef`): its failures are classified as
    /// reference errors ([`crate::RefError`]).
    pub updates_refs: bool,
}

impl Description {
    /// A read-only command with `--end-of-options` and plain revisions.
    const fn new(sub: Subcommand, name: &'static str) -> Description {
        Description {
            sub,
            name,
            end_of_options: true,
            revisions: Revisions::Plain,
            default_config: &[],
            client_config: false,
            updates_refs: false,
        }
    }

    const fn updates_refs(mut self) -> Self {
        self.updates_refs = true;
        self
    }

    const fn no_end_of_options(mut self) -> Self {
        self.end_of_options = false;
        self
    }

    const fn revisions(mut self, r: Revisions) -> Self {
        self.revisions = r;
        self
    }

    const fn config(mut self, c: &'static [(&'static str, ConfigValue)]) -> Self {
        self.default_config = c;
        self
    }

    const fn client_config(mut self) -> Self {
        self.client_config = true;
        self
    }

    /// The default config as `key=value` pairs.
    pub fn config_pairs(&self) -> impl Iterator<Item = String> + '_ {
        self.default_config
            .iter()
            .map(|(k, v)| format!("{k}={}", v.value()))
    }
}

use ConfigValue::{Fixed, Threads};

/// `.gitattributes` of HEAD apply in bare repositories (Gitaly's `attr.tree=HEAD` list: diffs
/// and archives honour `binary`, `diff=`, `export-ignore`...). git ignores an `attr.tree` that
/// doesn't resolve (an unborn HEAD).
const ATTR_HEAD: (&str, ConfigValue) = ("attr.tree", Fixed("HEAD"));

use Subcommand as S;

/// In the order of [`Subcommand`] (a test checks it). Subcommands without `--end-of-options`
/// (Gitaly's `scNoEndOfOptions`) still take checked revisions (no leading `-`), placed right
/// after the flags, and no argument of ours may start with `-`.
static TABLE: [Description; 36] = [
    // git 2.47 takes `--end-of-options` for a path ("pathspec '--' did not match").
    Description::new(S::Archive, "archive")
        .no_end_of_options()
        .config(&[ATTR_HEAD]),
    // git 2.47: `blame --end-of-options HEAD -- a.txt` is "bad revision 'a.txt'".
    Description::new(S::Blame, "blame").no_end_of_options(),
    Description::new(S::CatFile, "cat-file"),
    Description::new(S::CheckAttr, "check-attr")
        .no_end_of_options()
        .config(&[ATTR_HEAD]),
    // Housekeeping: `commit-graph write <flags>` (the action word is a constant of ours).
    Description::new(S::CommitGraph, "commit-graph").revisions(Revisions::None),
    // Writes a commit object (operations, in a quarantine); parents go with `-p<oid>`.
    Description::new(S::CommitTree, "commit-tree"),
    Description::new(S::CountObjects, "count-objects"),
    // `diff.noprefix` of a repository would change the patch headers our parsers read.
    Description::new(S::Diff, "diff").config(&[ATTR_HEAD, ("diff.noprefix", Fixed("false"))]),
    Description::new(S::DiffTree, "diff-tree"),
    // Only from a local repository of a storage into a quarantine (start_repository of an
    // operation), by object id, writing no refs and no FETCH_HEAD.
    Description::new(S::Fetch, "fetch"),
    Description::new(S::ForEachRef, "for-each-ref"),
    Description::new(S::FormatPatch, "format-patch").config(&[ATTR_HEAD]),
    Description::new(S::Grep, "grep")
        .no_end_of_options()
        .config(&[("grep.threads", Threads)]),
    Description::new(S::HashObject, "hash-object"),
    Description::new(S::Init, "init"),
    // A repository's `log.showSignature` / `log.follow` would change what our parsers read.
    Description::new(S::Log, "log").config(&[
        ATTR_HEAD,
        ("log.showSignature", Fixed("false")),
        ("log.follow", Fixed("false")),
    ]),
    Description::new(S::LsTree, "ls-tree"),
    Description::new(S::MergeBase, "merge-base"),
    // `--write-tree`: merges without a work tree or index; trees written as objects.
    Description::new(S::MergeTree, "merge-tree"),
    Description::new(S::Mktag, "mktag"),
    Description::new(S::Mktree, "mktree"),
    // The pack-objects cache runs it with the flags upload-pack asked its hook for (checked
    // by `crate::packobjects`; what to pack comes on stdin, never on argv); housekeeping's
    // incremental repack packs loose objects into `<repo>/objects/pack/pack` (our argument).
    Description::new(S::PackObjects, "pack-objects")
        .no_end_of_options()
        .revisions(Revisions::None),
    // The housekeeping below runs only with our constant flags and dates.
    Description::new(S::PackRefs, "pack-refs").revisions(Revisions::None),
    Description::new(S::PatchId, "patch-id").no_end_of_options(),
    Description::new(S::Prune, "prune").revisions(Revisions::None),
    Description::new(S::PrunePacked, "prune-packed").revisions(Revisions::None),
    // What Gitaly sets for every push (`receive.denyCurrentBranch` only matters to a
    // repository with a work tree; ours are bare, but a client-created one may not be).
    Description::new(S::ReceivePack, "receive-pack")
        .config(&[("receive.denyCurrentBranch", Fixed("ignore"))])
        .client_config()
        .updates_refs(),
    Description::new(S::Repack, "repack").revisions(Revisions::None),
    Description::new(S::RevList, "rev-list").revisions(Revisions::AllowPseudo),
    Description::new(S::RevParse, "rev-parse"),
    Description::new(S::ShowRef, "show-ref"),
    Description::new(S::SymbolicRef, "symbolic-ref").updates_refs(),
    Description::new(S::UpdateRef, "update-ref").updates_refs(),
    // A hand-rolled parser that takes its first argument as the directory.
    Description::new(S::UploadArchive, "upload-archive")
        .no_end_of_options()
        .revisions(Revisions::None)
        .client_config(),
    // What Gitaly enables for every fetch: partial clone filters and fetching any
    // reachable object (shallow and partial clones need it).
    Description::new(S::UploadPack, "upload-pack")
        .config(&[
            ("uploadpack.allowFilter", Fixed("true")),
            ("uploadpack.allowAnySHA1InWant", Fixed("true")),
        ])
        .client_config(),
    Description::new(S::Version, "version"),
];

impl Subcommand {
    /// Every subcommand, in declaration order.
    pub const ALL: [Subcommand; 36] = [
        S::Archive,
        S::Blame,
        S::CatFile,
        S::CheckAttr,
        S::CommitGraph,
        S::CommitTree,
        S::CountObjects,
        S::Diff,
        S::DiffTree,
        S::Fetch,
        S::ForEachRef,
        S::FormatPatch,
        S::Grep,
        S::HashObject,
        S::Init,
        S::Log,
        S::LsTree,
        S::MergeBase,
        S::MergeTree,
        S::Mktag,
        S::Mktree,
        S::PackObjects,
        S::PackRefs,
        S::PatchId,
        S::Prune,
        S::PrunePacked,
        S::ReceivePack,
        S::Repack,
        S::RevList,
        S::RevParse,
        S::ShowRef,
        S::SymbolicRef,
        S::UpdateRef,
        S::UploadArchive,
        S::UploadPack,
        S::Version,
    ];

    pub fn description(self) -> &'static Description {
        &TABLE[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.description().name
    }

    /// The subcommand git knows as `name`.
    pub fn from_name(name: &str) -> Option<Subcommand> {
        TABLE.iter().find(|d| d.name == name).map(|d| d.sub)
    }
}

impl std::fmt::Display for Subcommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Revisions {
    /// One client revision (or pseudo revision, where allowed) checked by this rule. The
    /// pattern of `--glob=` & co. may hold anything but NUL and line ends (it becomes one
    /// line of `--stdin`), within the bound of a revision.
    pub fn check(self, rev: &[u8]) -> Result<&str> {
        match self {
            Revisions::None => Err(Error::invalid("this command takes no revisions")),
            Revisions::AllowPseudo if is_pseudo_revision(rev) => {
                validate::size("revision", rev, validate::MAX_REVISION)?;
                if rev.iter().any(|&b| b == 0 || b == b'\n' || b == b'\r') {
                    return Err(Error::invalid(format!(
                        "invalid revision: {:?}",
                        String::from_utf8_lossy(rev)
                    )));
                }
                std::str::from_utf8(rev).map_err(|_| Error::invalid("revision is not valid UTF-8"))
            }
            Revisions::AllowPseudo if rev.starts_with(b"-") => Err(Error::invalid(format!(
                "invalid revision: {:?}",
                String::from_utf8_lossy(rev)
            ))),
            Revisions::Plain | Revisions::AllowPseudo => validate::revision(rev),
        }
    }

    /// Input for `--stdin`: one checked revision a line, in the order given.
    pub fn stdin<R: AsRef<[u8]>>(self, revisions: &[R]) -> Result<Vec<u8>> {
        let mut input = Vec::new();
        for r in revisions {
            input.extend_from_slice(self.check(r.as_ref())?.as_bytes());
            input.push(b'\n');
        }
        Ok(input)
    }

    /// [`Revisions::stdin`] where revisions may also be path-scoped, `<rev>:<path>` (Gitaly's
    /// `AllowPathScopedRevision`, e.g. ListBlobs): the path part any bytes but NUL and line
    /// ends ([`validate::scoped_revision`]).
    pub fn stdin_scoped<R: AsRef<[u8]>>(self, revisions: &[R]) -> Result<Vec<u8>> {
        let mut input = Vec::new();
        for r in revisions {
            let r = r.as_ref();
            match r.contains(&b':') && self != Revisions::None && !is_pseudo_revision(r) {
                true => input.extend_from_slice(validate::scoped_revision(r, true)?),
                false => input.extend_from_slice(self.check(r)?.as_bytes()),
            }
            input.push(b'\n');
        }
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_follows_the_enum_and_names_are_unique() {
        for (i, sub) in Subcommand::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].sub, *sub);
            assert_eq!(*sub as usize, i);
            assert_eq!(Subcommand::from_name(sub.as_str()), Some(*sub));
        }
        assert_eq!(Subcommand::from_name("rebase"), None);
    }

    #[test]
    fn what_the_table_says() {
        for sub in [S::Archive, S::Blame, S::CheckAttr, S::Grep, S::PatchId] {
            let d = sub.description();
            assert!(
                !d.end_of_options && d.revisions == Revisions::Plain,
                "{sub}"
            );
        }
        assert_eq!(
            Subcommand::Diff
                .description()
                .config_pairs()
                .collect::<Vec<_>>(),
            ["attr.tree=HEAD", "diff.noprefix=false"]
        );
        let grep: Vec<_> = Subcommand::Grep.description().config_pairs().collect();
        let n: u32 = grep[0]
            .strip_prefix("grep.threads=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(n >= 1 && 1 << n <= std::thread::available_parallelism().unwrap().get().max(2));
        let d = Subcommand::UploadArchive.description();
        assert!(!d.end_of_options && d.revisions == Revisions::None && d.client_config);
        assert!(Subcommand::UpdateRef.description().updates_refs);
        assert!(!Subcommand::CatFile.description().updates_refs);
        assert!(!Subcommand::Log.description().client_config);
        assert_eq!(
            Subcommand::UploadPack
                .description()
                .config_pairs()
                .collect::<Vec<_>>(),
            [
                "uploadpack.allowFilter=true",
                "uploadpack.allowAnySHA1InWant=true"
            ]
        );
    }

    #[test]
    fn stdin_revisions_keep_pseudo_revisions_in_place() {
        let input = Revisions::AllowPseudo
            .stdin(&["main", "--not", "--all"])
            .unwrap();
        assert_eq!(input, b"main\n--not\n--all\n");
        let gitaly = [
            "--branches",
            "--tags",
            "--alternate-refs",
            "--branches=feat/*",
            "--tags=v1.*",
            "--glob=refs/keep-around/*",
        ];
        assert!(Revisions::AllowPseudo.stdin(&gitaly).is_ok());
        for bad in [
            "--output=/tmp/x",
            "-n",
            "--branch",
            "--remotes",
            "--glob=a\n--output=x",
            "--glob=a\0",
            "--all=x",
            "a b",
            "",
        ] {
            assert!(
                Revisions::AllowPseudo.stdin(&[bad]).is_err(),
                "{bad:?} accepted"
            );
        }
        let scoped = Revisions::AllowPseudo
            .stdin_scoped(&[&b"main:caf\xe9 dir"[..], b"--not", b"--glob=a:b"])
            .unwrap();
        assert_eq!(scoped, b"main:caf\xe9 dir\n--not\n--glob=a:b\n");
        for bad in [&b"main:a\nb"[..], b":a", b"-x:a", b"--output=a:b"] {
            assert!(
                Revisions::AllowPseudo.stdin_scoped(&[bad]).is_err(),
                "{bad:?}"
            );
        }
        assert!(Revisions::AllowPseudo.stdin(&["main:a b"]).is_err());
        assert!(Revisions::Plain.stdin(&["--not"]).is_err());
        assert!(Revisions::None.stdin(&["main"]).is_err());
    }
}

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
    Bundle,
    CatFile,
    Clone,
    CountObjects,
    Diff,
    DiffTree,
    Fetch,
    ForEachRef,
    FormatPatch,
    Init,
    Log,
    LsTree,
    MergeBase,
    ReceivePack,
    Remote,
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
    /// Plain revisions and the pseudo revisions in [`PSEUDO_REVISIONS`] (`<new> --not
    /// --all`). These count as options, so their position matters and they can't follow
    /// `--end-of-options`: they are given on standard input (`--stdin`, see
    /// [`Revisions::stdin`]), where git takes them in order and nothing else starting with `-`.
    AllowPseudo,
}

/// The pseudo revisions a client may give where [`Revisions::AllowPseudo`] applies (those
/// Gitaly's clients send; Gitaly's `AllowPseudoRevision` also has `--branches`, `--tags`,
/// `--glob=`, `--alternate-refs`).
pub const PSEUDO_REVISIONS: &[&str] = &["--not", "--all"];

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
    pub default_config: &'static [(&'static str, &'static str)],
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

    const fn config(mut self, c: &'static [(&'static str, &'static str)]) -> Self {
        self.default_config = c;
        self
    }

    const fn client_config(mut self) -> Self {
        self.client_config = true;
        self
    }
}

use Subcommand as S;

/// In the order of [`Subcommand`] (a test checks it).
static TABLE: [Description; 24] = [
    // git 2.47 takes `--end-of-options` for a path ("pathspec '--' did not match"); its
    // revisions are still checked (no leading `-`), as Gitaly does.
    Description::new(S::Archive, "archive").no_end_of_options(),
    // `bundle create - --all` (CreateBundle): an action word, then our own arguments.
    Description::new(S::Bundle, "bundle")
        .no_end_of_options()
        .revisions(Revisions::None),
    Description::new(S::CatFile, "cat-file"),
    // `clone --mirror` of a bundle file into a new repository (CreateRepositoryFromBundle);
    // Gitaly's fsck setting for bundles (git 2.46 started checking them).
    Description::new(S::Clone, "clone")
        .revisions(Revisions::None)
        .config(&[("transfer.fsckObjects", "false")])
        .updates_refs(),
    Description::new(S::CountObjects, "count-objects"),
    Description::new(S::Diff, "diff"),
    Description::new(S::DiffTree, "diff-tree"),
    // From another server's upload-pack through our relay (ReplicateRepository), with
    // Gitaly's settings for internal fetches.
    Description::new(S::Fetch, "fetch")
        .revisions(Revisions::None)
        .config(&[
            ("fetch.negotiationAlgorithm", "skipping"),
            ("fetch.fsckObjects", "false"),
            ("transfer.fsckObjects", "false"),
            ("advice.fetchShowForcedUpdates", "false"),
        ])
        .updates_refs(),
    Description::new(S::ForEachRef, "for-each-ref"),
    Description::new(S::FormatPatch, "format-patch"),
    Description::new(S::Init, "init"),
    Description::new(S::Log, "log"),
    Description::new(S::LsTree, "ls-tree"),
    Description::new(S::MergeBase, "merge-base"),
    // What Gitaly sets for every push (`receive.denyCurrentBranch` only matters to a
    // repository with a work tree; ours are bare, but a client-created one may not be).
    Description::new(S::ReceivePack, "receive-pack")
        .config(&[("receive.denyCurrentBranch", "ignore")])
        .client_config()
        .updates_refs(),
    // `remote remove origin` after a mirror clone: an action word, no options.
    Description::new(S::Remote, "remote")
        .no_end_of_options()
        .revisions(Revisions::None),
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
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
        ])
        .client_config(),
    Description::new(S::Version, "version"),
];

impl Subcommand {
    /// Every subcommand, in declaration order.
    pub const ALL: [Subcommand; 24] = [
        S::Archive,
        S::Bundle,
        S::CatFile,
        S::Clone,
        S::CountObjects,
        S::Diff,
        S::DiffTree,
        S::Fetch,
        S::ForEachRef,
        S::FormatPatch,
        S::Init,
        S::Log,
        S::LsTree,
        S::MergeBase,
        S::ReceivePack,
        S::Remote,
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
    /// One client revision (or pseudo revision, where allowed) checked by this rule.
    pub fn check(self, rev: &[u8]) -> Result<&str> {
        match self {
            Revisions::None => Err(Error::invalid("this command takes no revisions")),
            Revisions::AllowPseudo if PSEUDO_REVISIONS.iter().any(|p| p.as_bytes() == rev) => {
                Ok(std::str::from_utf8(rev).expect("a pseudo revision is ASCII"))
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
        let d = Subcommand::Archive.description();
        assert!(!d.end_of_options && d.revisions == Revisions::Plain);
        let d = Subcommand::UploadArchive.description();
        assert!(!d.end_of_options && d.revisions == Revisions::None && d.client_config);
        assert!(Subcommand::UpdateRef.description().updates_refs);
        assert!(!Subcommand::CatFile.description().updates_refs);
        assert!(!Subcommand::Log.description().client_config);
        assert_eq!(
            Subcommand::UploadPack.description().default_config,
            [
                ("uploadpack.allowFilter", "true"),
                ("uploadpack.allowAnySHA1InWant", "true")
            ]
        );
    }

    #[test]
    fn stdin_revisions_keep_pseudo_revisions_in_place() {
        let input = Revisions::AllowPseudo
            .stdin(&["main", "--not", "--all"])
            .unwrap();
        assert_eq!(input, b"main\n--not\n--all\n");
        for bad in ["--output=/tmp/x", "-n", "--branches", "a b", ""] {
            assert!(
                Revisions::AllowPseudo.stdin(&[bad]).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(Revisions::Plain.stdin(&["--not"]).is_err());
        assert!(Revisions::None.stdin(&["main"]).is_err());
    }
}

//! The argument vectors [`Command`] builds.

use std::os::unix::ffi::OsStrExt;

use super::*;

/// The argument vector as bytes (for non-UTF-8 arguments).
fn argv_bytes(c: &Command) -> Vec<Vec<u8>> {
    c.args(&[])
        .unwrap()
        .into_iter()
        .map(|a| a.as_bytes().to_vec())
        .collect()
}

fn err(c: Command) -> String {
    c.args(&[]).unwrap_err().to_string()
}

fn argv(c: &Command, server: &[&str]) -> Vec<String> {
    let server: Vec<OsString> = server.iter().map(OsString::from).collect();
    c.args(&server)
        .unwrap()
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect()
}

#[test]
fn builds_end_of_options_and_paths() {
    let c = Command::in_repo(Path::new("/r.git"), Subcommand::Log)
        .config("core.quotePath", "false")
        .flag("--format=%H")
        .flag_value("--max-count", 3)
        .rev("main")
        .path("a b.txt");
    assert_eq!(
        argv(&c, &[]),
        [
            "-c",
            "attr.tree=HEAD",
            "-c",
            "log.showSignature=false",
            "-c",
            "log.follow=false",
            "-c",
            "core.quotePath=false",
            "--git-dir=/r.git",
            "log",
            "--format=%H",
            "--max-count=3",
            "--end-of-options",
            "main",
            "--",
            "a b.txt"
        ]
    );
}

#[test]
fn injected_options_are_refused() {
    for bad in ["--output=/tmp/x", "-p", "a\0b", "a b", "--not"] {
        let err = Command::new(Subcommand::RevParse)
            .rev(bad)
            .args(&[])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{bad}: {err}");
    }
    let err = Command::new(Subcommand::Log)
        .arg("a\0b")
        .args(&[])
        .unwrap_err();
    assert_eq!(err.to_string(), "argument can't contain NUL");
}

#[test]
fn config_order_server_defaults_ours_client() {
    let client = crate::client_config::check(&["uploadpack.allowFilter=false".into()]).unwrap();
    let c = Command::in_repo(Path::new("/r.git"), Subcommand::UploadPack)
        .config("core.quotePath", "false")
        .client_config(&client)
        .flag("--stateless-rpc")
        .arg("/r.git");
    assert_eq!(
        argv(&c, &["core.hooksPath=/srv/hooks"]),
        [
            "-c",
            "core.hooksPath=/srv/hooks",
            "-c",
            "uploadpack.allowFilter=true",
            "-c",
            "uploadpack.allowAnySHA1InWant=true",
            "-c",
            "core.quotePath=false",
            "-c",
            "uploadpack.allowFilter=false",
            "--git-dir=/r.git",
            "upload-pack",
            "--stateless-rpc",
            "--end-of-options",
            "/r.git"
        ]
    );
    let err = Command::new(Subcommand::Log)
        .client_config(&client)
        .args(&[])
        .unwrap_err();
    assert_eq!(err.to_string(), "git log takes no client config");
}

#[test]
fn subcommands_without_end_of_options() {
    let c = Command::in_repo(Path::new("/r.git"), Subcommand::UploadArchive).arg("/r.git");
    assert_eq!(
        argv(&c, &[]),
        ["--git-dir=/r.git", "upload-archive", "/r.git"]
    );
    let err = Command::new(Subcommand::UploadArchive)
        .rev("main")
        .args(&[])
        .unwrap_err();
    assert_eq!(err.to_string(), "git upload-archive takes no revisions");
}

#[test]
fn checked_revisions_without_end_of_options() {
    let c = Command::in_repo(Path::new("/r.git"), Subcommand::Archive)
        .flag("--format=tar")
        .rev("main")
        .path("a.txt");
    assert_eq!(
        argv(&c, &[]),
        [
            "-c",
            "attr.tree=HEAD",
            "--git-dir=/r.git",
            "archive",
            "--format=tar",
            "main",
            "--",
            "a.txt"
        ]
    );
    let err = Command::new(Subcommand::Archive)
        .rev("--remote=x")
        .args(&[])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn oversized_arguments_refused() {
    for cmd in [
        Command::new(Subcommand::RevParse).arg("x".repeat(MAX_ARG + 1)),
        (0..20).fold(Command::new(Subcommand::RevParse), |c, _| {
            c.arg("x".repeat(MAX_ARG))
        }),
    ] {
        let err = cmd.args(&[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("arguments too long for git rev-parse"),
            "{err}"
        );
    }
}

#[test]
fn paths_are_bytes() {
    let c = Command::in_repo(Path::new("/r.git"), Subcommand::DiffTree)
        .rev("main")
        .path(b"caf\xe9.txt")
        .path(b"new\nline")
        .path(b"-dash");
    assert_eq!(
        argv_bytes(&c),
        [
            &b"--git-dir=/r.git"[..],
            b"diff-tree",
            b"--end-of-options",
            b"main",
            b"--",
            b"caf\xe9.txt",
            b"new\nline",
            b"-dash"
        ]
    );
    assert_eq!(
        err(Command::new(Subcommand::DiffTree).path(b"a\0b")),
        "path can't contain NUL"
    );
    assert!(
        err(Command::new(Subcommand::DiffTree).path(vec![b'a'; 5000])).starts_with("path too long")
    );
}

#[test]
fn flag_values_stuck_and_bytes() {
    let c = Command::new(Subcommand::Blame)
        .flag("--porcelain")
        .short_flag_value("-L", "1,5")
        .rev("main")
        .path("a.txt");
    assert_eq!(
        argv(&c, &[]),
        ["blame", "--porcelain", "-L1,5", "main", "--", "a.txt"]
    );
    let c = Command::new(Subcommand::Grep)
        .short_flag_value("-e", "--output=x")
        .flag_value_bytes("--author", b"caf\xe9");
    let a = argv_bytes(&c);
    assert_eq!(
        a[a.len() - 2..],
        [&b"-e--output=x"[..], b"--author=caf\xe9"]
    );
    for bad in [
        Command::new(Subcommand::Grep).short_flag_value("--e", "x"),
        Command::new(Subcommand::Grep).short_flag_value("e", "x"),
        Command::new(Subcommand::Grep).short_flag_value("-e", "a\0b"),
        Command::new(Subcommand::Log).flag_value_bytes("--author", "a\0b"),
    ] {
        assert!(err(bad).starts_with("invalid value for"));
    }
}

#[test]
fn revisions_in_flags_and_path_scoped() {
    let c = Command::new(Subcommand::CheckAttr)
        .rev_flag("--source", "main")
        .flag("-z")
        .arg("diff")
        .path("a.txt");
    assert_eq!(
        argv(&c, &[]),
        [
            "-c",
            "attr.tree=HEAD",
            "check-attr",
            "--source=main",
            "-z",
            "diff",
            "--",
            "a.txt"
        ]
    );
    assert!(err(Command::new(Subcommand::CheckAttr).rev_flag("--source", "-x")).contains("'-'"));
    // An argument of ours can't pass for an option where `--end-of-options` can't guard it.
    assert_eq!(
        err(Command::new(Subcommand::CheckAttr).arg("--all")),
        "argument can't start with '-'"
    );
    let c = Command::new(Subcommand::Diff)
        .rev_scoped(b"main:dir/caf\xe9 a.txt")
        .rev_scoped("HEAD~1");
    let a = argv_bytes(&c);
    assert_eq!(
        a[a.len() - 3..],
        [
            &b"--end-of-options"[..],
            b"main:dir/caf\xe9 a.txt",
            b"HEAD~1"
        ]
    );
    for bad in [&b":a"[..], b"-p:a", b"a b:c", b"main:a\0"] {
        assert!(
            args_fail(Command::new(Subcommand::PatchId).rev_scoped(bad)),
            "{bad:?}"
        );
    }
    assert_eq!(
        err(Command::new(Subcommand::UploadArchive).rev_scoped("main:a")),
        "git upload-archive takes no revisions"
    );
}

fn args_fail(c: Command) -> bool {
    matches!(c.args(&[]), Err(Error::InvalidArgument(_)))
}

#[test]
fn no_end_of_options_subcommands_take_checked_revisions() {
    for sub in [
        Subcommand::Archive,
        Subcommand::Blame,
        Subcommand::CheckAttr,
        Subcommand::Grep,
        Subcommand::PatchId,
    ] {
        let a = Command::new(sub).rev("main").args(&[]).unwrap();
        assert!(!a.iter().any(|x| x == "--end-of-options"), "{sub}");
        assert_eq!(a.last().unwrap(), "main");
        assert!(args_fail(Command::new(sub).rev("--output=x")), "{sub}");
    }
}

#[test]
fn stdin_revisions_follow_the_subcommand() {
    let c = Command::new(Subcommand::RevList).flag("--stdin").stdin();
    assert_eq!(
        c.stdin_revisions(&["main", "--not", "--branches=x*"], false)
            .unwrap(),
        b"main\n--not\n--branches=x*\n"
    );
    assert_eq!(
        c.stdin_revisions(&[&b"main:caf\xe9 x"[..]], true).unwrap(),
        b"main:caf\xe9 x\n"
    );
    assert!(c.stdin_revisions(&["main:a b"], false).is_err());
    assert!(c.stdin_revisions(&["main:a\nb"], true).is_err());
    let log = Command::new(Subcommand::Log);
    assert!(log.stdin_revisions(&["--not"], false).is_err());
}

#[test]
fn pack_objects_with_an_empty_shallow_file() {
    let c = Command::in_repo(Path::new("/r.git"), Subcommand::PackObjects)
        .no_shallow_file()
        .flag("--revs")
        .flag("--stdout");
    assert_eq!(
        argv(&c, &[]),
        [
            "--git-dir=/r.git",
            "--shallow-file",
            "",
            "pack-objects",
            "--revs",
            "--stdout"
        ]
    );
}

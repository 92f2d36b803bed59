//! What the read RPCs of step 11 rely on, against real git: the global config reaches every
//! git (pooled cat-files included), byte paths, stuck short options, subcommands without
//! `--end-of-options`, pseudo revisions on `rev-list --stdin`, `attr.tree=HEAD` with an unborn
//! HEAD.

use std::os::unix::ffi::OsStrExt;

use gitrpc_git::{CatFilePool, CatFilePoolConfig, Command, Subcommand};

use crate::common::{git, git_cli, repo};

/// `git replace main main~1` makes plain git read "one" for main; ours must not (Gitaly's
/// `core.useReplaceRefs=false`), neither a spawned git nor a pooled cat-file.
#[tokio::test]
async fn replace_refs_are_ignored_everywhere() {
    let (d, gd) = repo("sha1");
    let main = git_cli(d.path(), &["rev-parse", "main"]);
    let first = git_cli(d.path(), &["rev-parse", "main~1"]);
    git_cli(d.path(), &["replace", &main, &first]);
    assert_eq!(
        git_cli(d.path(), &["log", "-1", "--format=%s", "main"]),
        "one"
    );

    let git = git().await;
    let log = Command::in_repo(&gd, Subcommand::Log)
        .flag("--format=%s")
        .flag("--max-count=1")
        .rev("main");
    let out = git.output(&log).await.unwrap();
    assert_eq!(out.stdout, b"two\n");

    let pool = CatFilePool::new(git.clone(), CatFilePoolConfig::default());
    let commit = pool
        .get(&gd)
        .unwrap()
        .read_commit("main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(commit.subject, b"two");
}

/// A non-UTF-8 pathspec, `blame` with a revision and a stuck `-L`, `check-attr` with
/// `--source`, all without `--end-of-options`.
#[tokio::test]
async fn byte_paths_and_commands_without_end_of_options() {
    let (d, gd) = repo("sha1");
    let latin = std::ffi::OsStr::from_bytes(b"caf\xe9 x.txt");
    std::fs::write(d.path().join(latin), "a\nb\nc\n").unwrap();
    std::fs::write(d.path().join(".gitattributes"), "*.txt diff=x\n").unwrap();
    git_cli(d.path(), &["add", "."]);
    git_cli(d.path(), &["commit", "-qm", "latin"]);
    let git = git().await;

    let log = Command::in_repo(&gd, Subcommand::Log)
        .flag("--format=%s")
        .rev("main")
        .path(b"caf\xe9 x.txt");
    assert_eq!(git.output(&log).await.unwrap().stdout, b"latin\n");

    let blame = Command::in_repo(&gd, Subcommand::Blame)
        .flag("--porcelain")
        .short_flag_value("-L", "2,3")
        .rev("main")
        .path(b"caf\xe9 x.txt");
    let out = git.output(&blame).await.unwrap().stdout;
    let lines: Vec<&[u8]> = out
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"\t"))
        .collect();
    assert_eq!(lines, [&b"\tb"[..], b"\tc"]);

    let attr = Command::in_repo(&gd, Subcommand::CheckAttr)
        .rev_flag("--source", "main")
        .arg("diff")
        .path("f.txt");
    assert_eq!(git.output(&attr).await.unwrap().stdout, b"f.txt: diff: x\n");
}

/// Gitaly's pseudo revisions and path-scoped revisions on `rev-list --stdin`.
#[tokio::test]
async fn stdin_pseudo_and_scoped_revisions() {
    let (d, gd) = repo("sha1");
    git_cli(d.path(), &["branch", "feat/x", "main~1"]);
    git_cli(d.path(), &["tag", "v1", "main~1"]);
    let git = git().await;
    let cmd = Command::in_repo(&gd, Subcommand::RevList).flag("--stdin");
    let count = |revs: &[&str], scoped: bool| {
        let input = cmd.stdin_revisions(revs, scoped).unwrap();
        let (git, cmd) = (git.clone(), cmd.clone());
        async move {
            let out = git.output_with_input(&cmd, &input).await.unwrap();
            out.stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        }
    };
    assert_eq!(
        count(&["main", "--not", "--branches=feat/*"], false).await,
        1
    );
    assert_eq!(count(&["main", "--not", "--tags=v*"], false).await, 1);
    assert_eq!(count(&["--glob=refs/heads/*"], false).await, 2);
    assert_eq!(
        count(&["--branches", "--tags", "--alternate-refs"], false).await,
        2
    );
    let objects = Command::in_repo(&gd, Subcommand::RevList)
        .flag("--objects")
        .flag("--stdin");
    let input = objects.stdin_revisions(&["main:f.txt"], true).unwrap();
    let out = git.output_with_input(&objects, &input).await.unwrap();
    assert!(
        out.stdout.ends_with(b" f.txt\n"),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `attr.tree=HEAD` (diff, log, archive, check-attr) is harmless where HEAD is unborn.
#[tokio::test]
async fn attr_tree_with_unborn_head() {
    let d = tempfile::tempdir().unwrap();
    git_cli(d.path(), &["init", "-q", "--bare", "e.git"]);
    let gd = d.path().join("e.git");
    let git = git().await;
    let log = Command::in_repo(&gd, Subcommand::Log).flag("--all");
    assert_eq!(git.output(&log).await.unwrap().stdout, b"");
    let attr = Command::in_repo(&gd, Subcommand::CheckAttr)
        .flag("--all")
        .path("a.txt");
    assert_eq!(git.output(&attr).await.unwrap().stdout, b"");
}

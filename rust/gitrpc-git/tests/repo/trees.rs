//! Trees read through cat-file (SHA-1 and SHA-256) against `git ls-tree`, and the walker.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use gitrpc_git::objects::{mode, parse_ls_tree, EntryKind, TreeWalker};
use gitrpc_git::{CatFilePool, CatFilePoolConfig, Command, Subcommand};

use crate::common::{git, git_cli, repo};

/// Add to the index: nested directories, an executable, a symlink, a submodule, names with a
/// space, a newline and a non-UTF-8 byte; commit.
fn fill(work: &Path) {
    let w = |p: &str, data: &str| {
        let p = work.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w("a/b/c/deep.txt", "deep\n");
    w("a/only/x.txt", "x\n");
    w("run.sh", "#!/bin/sh\n");
    w("with space.txt", "s\n");
    w("dir\nnl/in.txt", "newline dir\n");
    std::fs::write(
        work.join(std::ffi::OsStr::from_bytes(b"latin\xe9.txt")),
        "latin\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("run.sh", work.join("link")).unwrap();
    git_cli(work, &["add", "."]);
    git_cli(work, &["update-index", "--chmod=+x", "run.sh"]);
    let head = git_cli(work, &["rev-parse", "HEAD"]);
    git_cli(
        work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},sub"),
        ],
    );
    git_cli(work, &["commit", "-qm", "tree"]);
}

#[tokio::test]
async fn trees_match_ls_tree_in_both_formats() {
    for format in ["sha1", "sha256"] {
        let (d, gd) = repo(format);
        fill(d.path());
        let git = git().await;
        let pool = CatFilePool::new(git.clone(), CatFilePoolConfig::default());
        let mut cat = pool.get(&gd).unwrap();
        for dir in ["", "a", "a/b"] {
            let ours = cat
                .read_tree(&format!("HEAD:{dir}"))
                .await
                .unwrap()
                .unwrap();
            let mut cmd = Command::in_repo(&gd, Subcommand::LsTree).flag("-z");
            cmd = if dir.is_empty() {
                cmd.rev("HEAD")
            } else {
                cmd.rev(format!("HEAD:{dir}"))
            };
            let theirs = parse_ls_tree(&git.output(&cmd).await.unwrap().stdout).unwrap();
            assert_eq!(ours, theirs, "{format} {dir:?}");
        }
        let root = cat.read_tree("HEAD:").await.unwrap().unwrap();
        let get = |name: &[u8]| root.iter().find(|e| e.name == name).unwrap().clone();
        assert_eq!(
            (get(b"run.sh").mode, get(b"run.sh").kind),
            (mode::EXECUTABLE, EntryKind::Blob)
        );
        assert_eq!(
            (get(b"link").mode, get(b"link").kind),
            (mode::SYMLINK, EntryKind::Blob)
        );
        assert_eq!(
            (get(b"sub").mode, get(b"sub").kind),
            (mode::GITLINK, EntryKind::Submodule)
        );
        assert_eq!(
            (get(b"a").mode, get(b"a").kind),
            (mode::TREE, EntryKind::Tree)
        );
        assert_eq!(
            get(b"latin\xe9.txt").oid.len(),
            if format == "sha1" { 40 } else { 64 }
        );
        // Not a tree, or missing: None, and the process stays usable.
        assert!(cat.read_tree("HEAD:run.sh").await.unwrap().is_none());
        assert!(cat.read_tree("HEAD:nope").await.unwrap().is_none());
        assert!(cat.info("HEAD").await.unwrap().is_some());
    }
}

#[tokio::test]
async fn walker_finds_entries_by_plain_paths_only() {
    let (d, gd) = repo("sha256");
    fill(d.path());
    let git = git().await;
    let pool = CatFilePool::new(git, CatFilePoolConfig::default());
    let mut walker = TreeWalker::new(pool.get(&gd).unwrap());
    let oid = |p: &str| git_cli(d.path(), &["rev-parse", &format!("HEAD:{p}")]);
    for path in ["a/b/c/deep.txt", "a/b", "run.sh", "with space.txt", "sub"] {
        let e = walker.entry("main", path.as_bytes()).await.unwrap();
        let e = e.unwrap_or_else(|| panic!("{path} not found"));
        assert_eq!(e.oid, oid(path), "{path}");
    }
    // Directories cat-file can't be asked for are walked down to.
    let e = walker
        .entry("main", b"dir\nnl/in.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.kind, EntryKind::Blob);
    let e = walker
        .entry("main", b"latin\xe9.txt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.name, b"latin\xe9.txt");
    for missing in [
        &b""[..],
        b"nope",
        b"a/nope",
        b"run.sh/x",
        b"sub/x",
        b"./run.sh",
        b"a/../run.sh",
        b"a//only",
        b"a/",
        b"link/x",
    ] {
        assert!(
            walker.entry("main", missing).await.unwrap().is_none(),
            "{:?} found",
            String::from_utf8_lossy(missing)
        );
    }
    assert!(walker
        .entry("no-such-rev", b"run.sh")
        .await
        .unwrap()
        .is_none());
}

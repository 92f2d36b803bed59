//! Writing objects without a work tree: trees edited in memory and written with mktree
//! (SHA-1 and SHA-256), merge-tree's answers, hook executables run like git.

use std::time::{Duration, Instant};

use gitrpc_git::hook::{HookCommand, HookOutcome};
use gitrpc_git::merge::{merge_tree_command, run_merge_tree, MergeTree};
use gitrpc_git::objects::{mode, ObjectFormat};
use gitrpc_git::tree_edit::{Mktree, TreeEditError, TreeEditor};
use gitrpc_git::{CatFile, Command, Subcommand};

use crate::common::{git, git_cli, repo};

fn p(path: &str) -> Vec<&[u8]> {
    path.split('/').map(str::as_bytes).collect()
}

#[tokio::test]
async fn tree_edits_are_written_as_git_would() {
    for format in ["sha1", "sha256"] {
        let (d, gd) = repo(format);
        let work = d.path();
        std::fs::create_dir_all(work.join("a/b")).unwrap();
        std::fs::write(work.join("a/b/c.txt"), "c\n").unwrap();
        std::fs::write(work.join("a/keep.txt"), "k\n").unwrap();
        git_cli(work, &["add", "."]);
        git_cli(work, &["commit", "-qm", "three"]);
        let tree = git_cli(work, &["rev-parse", "HEAD^{tree}"]);
        let git = git().await;
        let blob = git_cli(work, &["hash-object", "-w", "f.txt"]);
        let mut cat = CatFile::spawn(&git, &gd).unwrap();
        let of = ObjectFormat::of_repository(&gd);
        let mut ed = TreeEditor::new(Some(tree), of);
        ed.add(
            &mut cat,
            &p("new/deep/x.sh"),
            mode::EXECUTABLE,
            &blob,
            false,
        )
        .await
        .unwrap();
        assert!(matches!(
            ed.add(&mut cat, &p("f.txt"), mode::BLOB, &blob, true).await,
            Err(TreeEditError::FileExists)
        ));
        assert!(matches!(
            ed.add(&mut cat, &p("a"), mode::BLOB, &blob, false).await,
            Err(TreeEditError::DirectoryExists)
        ));
        assert!(matches!(
            ed.add(&mut cat, &p("f.txt/under"), mode::BLOB, &blob, false)
                .await,
            Err(TreeEditError::FileExists)
        ));
        ed.delete(&mut cat, &p("a/b/c.txt")).await.unwrap();
        assert!(matches!(
            ed.delete(&mut cat, &p("a/nope")).await,
            Err(TreeEditError::NotFound)
        ));
        ed.modify_file(&mut cat, &p("f.txt"), |_, oid| {
            (mode::EXECUTABLE, oid.to_string())
        })
        .await
        .unwrap();
        assert_eq!(
            ed.get(&mut cat, &p("a/keep.txt")).await.unwrap().unwrap().0,
            mode::BLOB
        );
        assert!(
            ed.get(&mut cat, &p("a/b")).await.unwrap().is_none(),
            "emptied dir pruned"
        );
        let mut mk = Mktree::start(&git, Command::in_repo(&gd, Subcommand::Mktree)).unwrap();
        let new = ed.write(&mut mk).await.unwrap();
        mk.finish().await.unwrap();
        assert_eq!(new.len(), of.hex_len());
        let listing = git_cli(work, &["ls-tree", "-r", &new]);
        let keep = git_cli(work, &["rev-parse", "HEAD:a/keep.txt"]);
        let f = git_cli(work, &["rev-parse", "HEAD:f.txt"]);
        assert_eq!(
            listing,
            format!(
                "100644 blob {keep}\ta/keep.txt\n100755 blob {f}\tf.txt\n100755 blob {blob}\tnew/deep/x.sh"
            )
        );
        git_cli(work, &["fsck", "--no-dangling"]);
    }
}

#[tokio::test]
async fn a_tree_naming_a_missing_object_is_refused() {
    let (_d, gd) = repo("sha1");
    let git = git().await;
    let mut cat = CatFile::spawn(&git, &gd).unwrap();
    let mut ed = TreeEditor::new(None, ObjectFormat::Sha1);
    ed.add(&mut cat, &p("x"), mode::BLOB, &"1".repeat(40), false)
        .await
        .unwrap();
    let mut mk = Mktree::start(&git, Command::in_repo(&gd, Subcommand::Mktree)).unwrap();
    let err = ed.write(&mut mk).await.unwrap_err();
    assert!(err.to_string().contains("is unavailable"), "{err}");
}

#[tokio::test]
async fn merge_tree_clean_conflicted_and_unrelated() {
    let (d, gd) = repo("sha1");
    let w = d.path();
    let base = git_cli(w, &["rev-parse", "HEAD"]);
    std::fs::write(w.join("g.txt"), "g\n").unwrap();
    git_cli(w, &["add", "."]);
    git_cli(w, &["commit", "-qm", "g"]);
    let ours = git_cli(w, &["rev-parse", "HEAD"]);
    git_cli(w, &["checkout", "-q", "-b", "side", &base]);
    std::fs::write(w.join("h.txt"), "h\n").unwrap();
    std::fs::write(w.join("f.txt"), "side\n").unwrap();
    git_cli(w, &["add", "."]);
    git_cli(w, &["commit", "-qm", "h"]);
    let theirs = git_cli(w, &["rev-parse", "HEAD"]);
    let git = git().await;
    let cmd = |o: &str, t: &str| {
        merge_tree_command(
            Command::in_repo(&gd, Subcommand::MergeTree),
            o,
            t,
            None,
            false,
        )
    };
    let MergeTree::Clean { tree } = run_merge_tree(&git, &cmd(&ours, &theirs)).await.unwrap()
    else {
        panic!("conflict")
    };
    assert_eq!(
        tree,
        git_cli(w, &["merge-tree", "--write-tree", &ours, &theirs])
    );
    git_cli(w, &["checkout", "-q", "main"]);
    std::fs::write(w.join("f.txt"), "main\n").unwrap();
    std::fs::write(w.join("h.txt"), "other h\n").unwrap();
    git_cli(w, &["add", "."]);
    git_cli(w, &["commit", "-qm", "conflicting"]);
    let ours = git_cli(w, &["rev-parse", "HEAD"]);
    match run_merge_tree(&git, &cmd(&ours, &theirs)).await.unwrap() {
        MergeTree::Conflict { paths, .. } => {
            assert_eq!(paths, [b"f.txt".to_vec(), b"h.txt".to_vec()])
        }
        other => panic!("{other:?}"),
    }
    git_cli(w, &["checkout", "-q", "--orphan", "lonely"]);
    git_cli(w, &["commit", "-qm", "root"]);
    let lonely = git_cli(w, &["rev-parse", "HEAD"]);
    assert!(matches!(
        run_merge_tree(&git, &cmd(&ours, &lonely)).await,
        Err(gitrpc_git::merge::MergeError::UnrelatedHistories)
    ));
}

#[tokio::test]
async fn hooks_run_with_our_env_and_time_out_as_a_group() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let hook = d.path().join("h");
    std::fs::write(
        &hook,
        "#!/bin/sh\nread line\necho \"in=$line arg=$1 x=$X\"\necho err >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let git = git().await;
    let mut cmd = HookCommand {
        program: hook.clone(),
        args: vec!["a1".into()],
        env: vec![("X".into(), "y".into())],
        cwd: d.path().to_path_buf(),
        stdin: b"hello\n".to_vec(),
    };
    let out = git.run_hook(&cmd, Duration::from_secs(30)).await.unwrap();
    let HookOutcome::Exited(status) = out.outcome else {
        panic!("timed out")
    };
    assert_eq!(status.code(), Some(3));
    assert_eq!(out.stdout, b"in=hello arg=a1 x=y\n");
    assert_eq!(out.stderr, b"err\n");
    // A hook (and its child) still running at the timeout is killed with its group.
    let pidfile = d.path().join("pid");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nsleep 60 &\necho $! > {}\nwait\n",
            pidfile.display()
        ),
    )
    .unwrap();
    cmd.stdin.clear();
    let started = Instant::now();
    let out = git.run_hook(&cmd, Duration::from_secs(1)).await.unwrap();
    assert!(matches!(out.outcome, HookOutcome::TimedOut));
    assert!(started.elapsed() < Duration::from_secs(20));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')));
        if !alive {
            break;
        }
        assert!(Instant::now() < deadline, "the hook's sleep survived");
        std::thread::sleep(Duration::from_millis(50));
    }
}

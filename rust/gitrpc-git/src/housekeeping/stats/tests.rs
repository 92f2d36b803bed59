#![allow(clippy::disallowed_methods)] // fixtures are built with the test's own git

use super::*;

fn git(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A bare repository with `n` commits on main, each its own loose objects, and a branch
/// per commit (loose refs).
fn repo_with_commits(dir: &Path, n: usize) -> PathBuf {
    let repo = dir.join("r.git");
    let out = std::process::Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut parent: Option<String> = None;
    for i in 0..n {
        let blob = {
            let mut c = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(&repo)
                .args(["hash-object", "-w", "--stdin"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("content {i}\n").as_bytes())
                .unwrap();
            let out = c.wait_with_output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let tree = {
            let mut c = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(&repo)
                .arg("mktree")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("100644 blob {blob}\tf.txt\n").as_bytes())
                .unwrap();
            let out = c.wait_with_output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let mut args = vec!["commit-tree", "-m", "c"];
        let p;
        if let Some(parent) = &parent {
            p = parent.clone();
            args.extend(["-p", &p]);
        }
        args.push(&tree);
        let commit = git(&repo, &args).trim().to_string();
        git(&repo, &["update-ref", &format!("refs/heads/b{i}"), &commit]);
        parent = Some(commit);
    }
    git(
        &repo,
        &["update-ref", "refs/heads/main", parent.as_ref().unwrap()],
    );
    repo
}

#[test]
fn counts_loose_objects_packs_refs_and_graphs() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty.git");
    std::fs::create_dir_all(&empty).unwrap();
    git(&empty, &["init", "-q", "--bare"]);
    let info = RepositoryInfo::gather(&empty, false).unwrap();
    assert_eq!(info.loose_objects.count, 0);
    assert_eq!(info.packfiles.count, 0);
    assert_eq!(info.packfiles.midx, None);
    assert_eq!(info.references.loose_count, 0);
    assert_eq!(info.commit_graph, CommitGraph::default());
    assert_eq!(info.packfiles.last_full_repack, SystemTime::UNIX_EPOCH);

    let repo = repo_with_commits(d.path(), 5);
    let info = RepositoryInfo::gather(&repo, true).unwrap();
    // 5 × (blob, tree, commit)
    assert_eq!(info.loose_objects.count, 15);
    assert_eq!(info.loose_objects.stale_count, 0);
    assert_eq!(info.references.loose_count, 6);
    assert!(info.is_object_pool);

    // Age three of them past the grace period.
    let shard = std::fs::read_dir(repo.join("objects"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
        .flat_map(|s| std::fs::read_dir(s.path()).unwrap().flatten())
        .take(3)
        .collect::<Vec<_>>();
    for e in shard {
        let f = std::fs::File::open(e.path()).unwrap();
        f.set_modified(SystemTime::now() - STALE_OBJECTS_GRACE - Duration::from_secs(60))
            .unwrap();
    }
    assert_eq!(
        RepositoryInfo::gather(&repo, false)
            .unwrap()
            .loose_objects
            .stale_count,
        3
    );

    git(&repo, &["repack", "-d", "-q", "--write-midx"]);
    git(&repo, &["pack-refs", "--all"]);
    git(
        &repo,
        &[
            "commit-graph",
            "write",
            "--reachable",
            "--changed-paths",
            "--split",
        ],
    );
    let info = RepositoryInfo::gather(&repo, false).unwrap();
    assert_eq!(info.loose_objects.count, 0);
    assert_eq!(info.packfiles.count, 1);
    assert_eq!(info.packfiles.midx, Some(1));
    assert!(info.packfiles.size > 0);
    assert_eq!(info.references.loose_count, 0);
    assert!(info.references.packed_size > 0);
    assert_eq!(info.commit_graph.chain_length, 1);
    assert!(info.commit_graph.has_bloom_filters);
    assert!(info.commit_graph.has_generation_data);

    // A monolithic graph without Bloom filters: chain length 0.
    std::fs::remove_dir_all(repo.join("objects/info/commit-graphs")).unwrap();
    git(&repo, &["commit-graph", "write", "--reachable"]);
    let info = RepositoryInfo::gather(&repo, false).unwrap();
    assert_eq!(info.commit_graph.chain_length, 0);
    assert!(!info.commit_graph.has_bloom_filters);

    // A cruft pack after a full repack with cruft.
    git(&repo, &["update-ref", "-d", "refs/heads/b0"]);
    git(&repo, &["update-ref", "-d", "refs/heads/b1"]);
    git(&repo, &["update-ref", "-d", "refs/heads/main"]);
    for i in 2..5 {
        git(&repo, &["update-ref", "-d", &format!("refs/heads/b{i}")]);
    }
    git(&repo, &["repack", "-a", "-d", "-q", "--cruft"]);
    let info = RepositoryInfo::gather(&repo, false).unwrap();
    assert_eq!(info.packfiles.cruft_count, 1, "{info:?}");
}

#[test]
fn alternates_and_timestamp() {
    let d = tempfile::tempdir().unwrap();
    let repo = d.path().join("a.git");
    std::fs::create_dir_all(repo.join("objects/info")).unwrap();
    std::fs::write(
        repo.join("objects/info/alternates"),
        "/srv/pool.git/objects\n\n# comment\n",
    )
    .unwrap();
    std::fs::write(repo.join(FULL_REPACK_TIMESTAMP), "").unwrap();
    let info = RepositoryInfo::gather(&repo, false).unwrap();
    assert_eq!(
        info.alternates.directories,
        [PathBuf::from("/srv/pool.git/objects")]
    );
    assert!(info.alternates.last_modified.is_some());
    assert!(info.packfiles.last_full_repack > SystemTime::UNIX_EPOCH);
    // A truncated multi-pack-index reads as none.
    std::fs::create_dir_all(repo.join("objects/pack")).unwrap();
    std::fs::write(repo.join("objects/pack/multi-pack-index"), "MIDX").unwrap();
    assert_eq!(
        RepositoryInfo::gather(&repo, false).unwrap().packfiles.midx,
        None
    );
}

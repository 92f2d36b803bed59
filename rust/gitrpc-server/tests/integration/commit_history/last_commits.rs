//! ListLastCommitsForTree: every answer is what `git log -1 <rev> -- <entry>` says, on
//! histories with merges (clean, evil, criss-cross, the same change on both sides) and
//! commit dates going backwards; Gitaly's paging, ordering and errors.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::*;
use crate::common::TestServer;

fn req(w: &Work, rev: &str, path: &[u8], offset: i32, limit: i32) -> ListLastCommitsForTreeRequest {
    ListLastCommitsForTreeRequest {
        repository: Some(w.repo()),
        revision: rev.into(),
        path: path.to_vec(),
        offset,
        limit,
        ..Default::default()
    }
}

fn literal(mut r: ListLastCommitsForTreeRequest, on: bool) -> ListLastCommitsForTreeRequest {
    r.global_options = Some(GlobalOptions {
        literal_pathspecs: on,
    });
    r
}

/// `(path, commit id)` of every answer, and the number of messages.
async fn llcft(
    c: &mut Client,
    r: ListLastCommitsForTreeRequest,
) -> Result<(Vec<(Vec<u8>, String)>, usize), tonic::Status> {
    let msgs = stream(c.list_last_commits_for_tree(r).await).await?;
    let n = msgs.len();
    let items = msgs
        .into_iter()
        .flat_map(|m| m.commits)
        .map(|e| (e.path_bytes, e.commit.unwrap().id))
        .collect();
    Ok((items, n))
}

/// ls-tree's entries of `spec` at `rev`, as ListLastCommitsForTree orders them.
fn entries(w: &Work, rev: &str, spec: &[u8], literal: bool) -> Vec<Vec<u8>> {
    let mut c = git_cmd(&w.path);
    c.args(["ls-tree", "-z", rev, "--"])
        .arg(OsStr::from_bytes(spec));
    if literal {
        c.env("GIT_LITERAL_PATHSPECS", "1");
    }
    let out = run(&mut c);
    let mut rows: Vec<(u8, Vec<u8>)> = out
        .split(|&b| b == 0)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let tab = r.iter().position(|&b| b == b'\t').unwrap();
            let kind = match &r[7..11] {
                b"tree" => 0,
                b"blob" => 1,
                _ => 2,
            };
            (kind, r[tab + 1..].to_vec())
        })
        .collect();
    rows.sort_by_key(|(k, _)| *k);
    rows.into_iter().map(|(_, p)| p).collect()
}

/// Every entry of `dir` at `rev` against `git log -1`, with and without literal pathspecs.
async fn check_all(c: &mut Client, w: &Work, rev: &str, dir: &[u8]) {
    for lit in [true, false] {
        let spec: &[u8] = if dir.is_empty() { b"." } else { dir };
        let want: Vec<(Vec<u8>, String)> = entries(w, rev, spec, lit)
            .into_iter()
            .map(|p| {
                let id = git_last_commit(&w.path, rev, &p, lit);
                (p, id)
            })
            .collect();
        assert!(!want.is_empty());
        let (got, _) = llcft(c, literal(req(w, rev, dir, 0, 1000), lit))
            .await
            .unwrap();
        assert_eq!(
            got,
            want,
            "{rev} -- {} (literal: {lit})",
            String::from_utf8_lossy(dir)
        );
    }
}

/// A history whose entries' last commits hide behind merges and clock skew.
fn tangled(s: &TestServer, rel: &str, format: &str) -> Work {
    let w = Work::new(s, rel, format);
    for f in [
        "a.txt", "b.txt", "c.txt", "keep.txt", "same.txt", "dir/x", "dir/y",
    ] {
        w.write(f, format!("{f} root\n"));
    }
    w.write(b"caf\xe9.txt", "latin-1 name\n");
    w.write("-dash", "dash\n");
    w.write("sp ace.txt", "space\n");
    w.write("*.txt", "a glob of a name\n");
    w.write("deep/er/z", "z\n");
    w.commit("root");
    w.write("a.txt", "a 2\n");
    w.commit("a2");
    // A side branch with dates far in the past (printed late by git log).
    w.git(&["checkout", "-q", "-b", "side"]);
    w.write("b.txt", "b side\n");
    w.write("dir/x", "x side\n");
    w.commit_at("side 1 (old date)", 1_600_000_000);
    w.write("same.txt", "same change\n");
    w.write("deep/er/z", "z side\n");
    w.commit_at("side 2 (old date)", 1_600_000_100);
    w.git(&["checkout", "-q", "main"]);
    w.write("c.txt", "c main\n");
    // The same change as on the side: same.txt is equal in both parents of the merge.
    w.write("same.txt", "same change\n");
    w.commit("main: c, same");
    w.merge("side", "merge side", &[]);
    // An evil merge: a.txt gets content from neither side.
    w.git(&["checkout", "-q", "-b", "evil", "HEAD~1"]);
    w.write("a.txt", "a evil side\n");
    w.commit("evil side");
    w.git(&["checkout", "-q", "main"]);
    w.write("a.txt", "a main again\n");
    w.commit("a main");
    w.merge("evil", "evil merge", &[("a.txt", "a resolved\n")]);
    // Criss-cross: x and y each merge the other's first commit.
    w.git(&["checkout", "-q", "-b", "x"]);
    w.write("dir/y", "y on x\n");
    let x1 = w.commit("x");
    w.git(&["checkout", "-q", "-b", "y", "main"]);
    w.write("keep.txt", "keep on y\n");
    let y1 = w.commit_at("y (old date)", 1_650_000_000);
    w.git(&["checkout", "-q", "x"]);
    w.merge(&y1, "x merges y", &[]);
    w.git(&["checkout", "-q", "y"]);
    w.merge(&x1, "y merges x", &[]);
    w.git(&["checkout", "-q", "main"]);
    w.merge("x", "main merges x", &[]);
    w.merge("y", "main merges y", &[]);
    w.write("c.txt", "c last\n");
    w.commit("c last");
    w
}

#[tokio::test]
async fn every_entry_is_git_logs_answer() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    for (rel, format) in [("t1.git", "sha1"), ("t256.git", "sha256")] {
        let w = tangled(&s, rel, format);
        for rev in [
            "main", "main~1", "main~1^2", "main~2^2", "side", "evil", "x", "y",
        ] {
            check_all(&mut c, &w, rev, b"").await;
            check_all(&mut c, &w, rev, b"dir/").await;
        }
        check_all(&mut c, &w, "main", b"deep/").await;
        check_all(&mut c, &w, "main", b"deep/er/").await;
        // The commits are FindCommit's.
        let (got, _) = llcft(&mut c, req(&w, "main", b"dir/", 0, 10))
            .await
            .unwrap();
        let msgs = stream(
            c.list_last_commits_for_tree(req(&w, "main", b"dir/", 0, 10))
                .await,
        )
        .await
        .unwrap();
        for (e, (_, id)) in msgs[0].commits.iter().zip(&got) {
            let found = c
                .find_commit(FindCommitRequest {
                    repository: Some(w.repo()),
                    revision: id.clone().into_bytes(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .commit;
            assert_eq!(e.commit, found);
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn paging_ordering_and_paths_as_gitaly() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = Work::new(&s, "p.git", "sha1");
    w.write("changed", "not yet changed\n");
    w.write("unchanged", "unchanged\n");
    w.write("subdir/subdir-changed", "not yet changed\n");
    w.write("subdir/subdir-unchanged", "unchanged\n");
    let child = w.commit("unchanged");
    w.write("changed", "changed\n");
    w.write("subdir/subdir-changed", "changed\n");
    let parent = w.commit("changed");
    let p = |s: &str| s.as_bytes().to_vec();
    // Gitaly's table: root (trees first), limit, offset, subdirectory.
    let (got, _) = llcft(&mut c, req(&w, &parent, b"/", 0, 5)).await.unwrap();
    assert_eq!(
        got,
        vec![
            (p("subdir"), parent.clone()),
            (p("changed"), parent.clone()),
            (p("unchanged"), child.clone())
        ]
    );
    let (got, _) = llcft(&mut c, req(&w, &parent, b"", 0, 1)).await.unwrap();
    assert_eq!(got, vec![(p("subdir"), parent.clone())]);
    let (got, _) = llcft(&mut c, req(&w, &parent, b"/", 2, 25)).await.unwrap();
    assert_eq!(got, vec![(p("unchanged"), child.clone())]);
    let (got, n) = llcft(&mut c, req(&w, &parent, b"/", 14, 25)).await.unwrap();
    assert_eq!((got.len(), n), (0, 0), "offset past the end: no message");
    let (got, n) = llcft(&mut c, req(&w, &parent, b"/", 0, 0)).await.unwrap();
    assert_eq!((got.len(), n), (0, 0), "limit 0: nothing");
    let (got, _) = llcft(&mut c, req(&w, &parent, b"subdir/", 0, 5))
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            (p("subdir/subdir-changed"), parent.clone()),
            (p("subdir/subdir-unchanged"), child.clone())
        ]
    );
    // Without the slash the path names the entry itself; a file path names the file.
    let (got, _) = llcft(&mut c, req(&w, &parent, b"subdir", 0, 5))
        .await
        .unwrap();
    assert_eq!(got, vec![(p("subdir"), parent.clone())]);
    let (got, _) = llcft(&mut c, req(&w, &parent, b"unchanged", 0, 5))
        .await
        .unwrap();
    assert_eq!(got, vec![(p("unchanged"), child.clone())]);
    let (got, n) = llcft(&mut c, req(&w, &parent, b"nope/", 0, 5))
        .await
        .unwrap();
    assert_eq!((got.len(), n), (0, 0), "an absent path lists nothing");

    // Trees, then blobs, then submodules; 10 entries a message.
    for i in 0..12 {
        w.write(format!("f{i:02}"), "f\n");
        w.write(format!("d{i:02}/x"), "x\n");
    }
    w.commit("many");
    run(&mut w.cmd([
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{child},a-submodule"),
    ]));
    run(&mut w.cmd(["commit", "--quiet", "-m", "submodule"]));
    let head = w.rev("HEAD");
    let want = entries(&w, "HEAD", b".", false);
    assert_eq!(want.last().unwrap(), b"a-submodule");
    assert!(want[0].starts_with(b"d00") && want[13] == b"changed");
    let (got, n) = llcft(&mut c, req(&w, "HEAD", b"", 0, 100)).await.unwrap();
    assert_eq!(got.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), want);
    assert_eq!(n, want.len().div_ceil(10));
    assert_eq!(got.last().unwrap().1, head);
    s.stop().await;
}

#[tokio::test]
async fn odd_names_and_pathspec_magic() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = Work::new(&s, "odd.git", "sha1");
    w.write("-test/file", "something\n");
    w.write(":wq/file", "something\n");
    w.write(b"hello\x80world", "non-UTF-8\n");
    w.write("g/x.txt", "x\n");
    let first = w.commit("first");
    w.write("g/*.txt", "a file named like a glob\n");
    w.write("g/y.txt", "y\n");
    let second = w.commit("second");
    w.write("g/x.txt", "x again\n");
    let third = w.commit("third");
    let p = |s: &[u8]| s.to_vec();
    // A directory starting with '-'.
    let (got, _) = llcft(&mut c, req(&w, &third, b"-test/", 0, 25))
        .await
        .unwrap();
    assert_eq!(got, vec![(p(b"-test/file"), first.clone())]);
    // `:wq` is pathspec magic unless pathspecs are literal (Gitaly's tests).
    let (got, _) = llcft(&mut c, literal(req(&w, &third, b":wq", 0, 25), true))
        .await
        .unwrap();
    assert_eq!(got, vec![(p(b":wq"), first.clone())]);
    let (got, n) = llcft(&mut c, literal(req(&w, &third, b":wq", 0, 25), false))
        .await
        .unwrap();
    assert_eq!((got.len(), n), (0, 0));
    // Non-UTF-8 names come back as they are.
    let (got, _) = llcft(&mut c, literal(req(&w, &third, b"", 0, 25), true))
        .await
        .unwrap();
    assert!(
        got.contains(&(p(b"hello\x80world"), first.clone())),
        "{got:?}"
    );
    // Without literal pathspecs the root entry `:wq` is magic for `git log -1 -- :wq`
    // too, which finds nothing: Gitaly fails the page then.
    assert_eq!(
        failure(llcft(&mut c, literal(req(&w, &third, b"", 0, 25), false)).await),
        (
            Code::Internal,
            "commit not resolved for \":wq\"".to_string()
        )
    );
    // `g/*.txt` is a glob without literal pathspecs: git log -1 -- 'g/*.txt' sees x.txt's
    // change too; literally it is the file.
    let entry = |got: &[(Vec<u8>, String)]| {
        got.iter()
            .find(|(n, _)| n == b"g/*.txt")
            .map(|(_, c)| c.clone())
            .unwrap()
    };
    let (got, _) = llcft(&mut c, literal(req(&w, &third, b"g/", 0, 25), false))
        .await
        .unwrap();
    assert_eq!(entry(&got), third);
    assert_eq!(git_last_commit(&w.path, &third, b"g/*.txt", false), third);
    let (got, _) = llcft(&mut c, literal(req(&w, &third, b"g/", 0, 25), true))
        .await
        .unwrap();
    assert_eq!(entry(&got), second);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_as_gitaly() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = Work::new(&s, "bad.git", "sha1");
    w.write("a", "a\n");
    w.write("b", "b\n");
    let head = w.commit("one");
    for (r, code) in bad_repos(&s) {
        let mut q = req(&w, &head, b"", 0, 5);
        q.repository = r;
        assert_eq!(failure(llcft(&mut c, q).await).0, code);
    }
    let cases: Vec<(ListLastCommitsForTreeRequest, Code, &str)> = vec![
        (
            req(&w, "", b"/", 0, 5),
            Code::InvalidArgument,
            "empty revision",
        ),
        (
            req(&w, "--output=/meow", b"", 0, 5),
            Code::InvalidArgument,
            "revision can't start with '-'",
        ),
        (
            req(&w, &head, b"", -1, 25),
            Code::InvalidArgument,
            "offset negative",
        ),
        (
            req(&w, &head, b"", 0, -1),
            Code::InvalidArgument,
            "limit negative",
        ),
        // Ambiguous or unknown: ls-tree's exit status.
        (req(&w, "a", b"", 0, 5), Code::Internal, "exit status 128"),
        (
            req(&w, "nope", b"", 0, 5),
            Code::Internal,
            "exit status 128",
        ),
    ];
    for (q, code, msg) in cases {
        let what = format!("{:?}", (&q.revision, q.offset, q.limit));
        assert_eq!(
            failure(llcft(&mut c, q).await),
            (code, msg.to_string()),
            "{what}"
        );
    }
    assert!(!std::path::Path::new("/meow").exists());
    wait_no_git(s.dir.path(), "bad.git").await;
    // An empty repository: ls-tree fails.
    let empty = Work::new(&s, "empty.git", "sha1");
    assert_eq!(
        failure(llcft(&mut c, req(&empty, "HEAD", b"", 0, 5)).await),
        (Code::Internal, "exit status 128".to_string())
    );
    s.stop().await;
}

#[tokio::test]
async fn a_cancelled_walk_leaves_no_git() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = Work::new(&s, "cancel.git", "sha1");
    for i in 0..30 {
        w.write(format!("d/f{i}"), format!("{i}\n"));
    }
    w.commit("root");
    for i in 0..40 {
        w.write(format!("d/f{}", i % 7), format!("{i} again\n"));
        w.commit("change");
    }
    let mut st = c
        .list_last_commits_for_tree(req(&w, "main", b"d/", 0, 30))
        .await
        .unwrap()
        .into_inner();
    drop(st.message().await);
    drop(st);
    wait_no_git(s.dir.path(), "cancel.git").await;
    s.stop().await;
}

//! SearchFilesByName and SearchFilesByContent against `git ls-tree` and `git grep`; the
//! content search's pattern deadline.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::{client, files};
use crate::commit_history::{bad_repos, failure, git_cmd, stream, wait_no_git};
use crate::common::TestServer;

#[tokio::test]
async fn search_by_name_matches_ls_tree() {
    let s = TestServer::start().await;
    let w = files(&s, "s.git");
    let mut c = client(&s);
    let req = |query: &str, filter: &str, offset: u32, limit: u32| SearchFilesByNameRequest {
        repository: Some(w.repo()),
        query: query.into(),
        r#ref: b"main".to_vec(),
        filter: filter.into(),
        limit,
        offset,
    };
    let all: Vec<Vec<u8>> = crate::commit_history::run(&mut w.cmd([
        "ls-tree",
        "--full-tree",
        "-r",
        "-z",
        "--name-only",
        "main",
    ]))
    .split(|&b| b == 0)
    .filter(|p| !p.is_empty())
    .map(<[u8]>::to_vec)
    .collect();
    let names = |msgs: Vec<SearchFilesByNameResponse>| -> Vec<Vec<u8>> {
        msgs.into_iter().flat_map(|m| m.files).collect()
    };
    let got = names(
        stream(c.search_files_by_name(req(".", "", 0, 0)).await)
            .await
            .unwrap(),
    );
    assert_eq!(got, all);
    assert!(got.contains(&b"caf\xe9/f.txt".to_vec()));
    let txt: Vec<Vec<u8>> = all
        .iter()
        .filter(|p| p.ends_with(b".txt"))
        .cloned()
        .collect();
    let got = names(
        stream(c.search_files_by_name(req(".", r"\.txt$", 0, 0)).await)
            .await
            .unwrap(),
    );
    assert_eq!(got, txt);
    let got = names(
        stream(c.search_files_by_name(req(".", r"\.txt$", 1, 2)).await)
            .await
            .unwrap(),
    );
    assert_eq!(got, txt[1..3]);
    let got = names(
        stream(c.search_files_by_name(req("sub", "", 0, 0)).await)
            .await
            .unwrap(),
    );
    assert_eq!(
        got,
        all.iter()
            .filter(|p| p.starts_with(b"sub/"))
            .cloned()
            .collect::<Vec<_>>()
    );
    // A ref that doesn't resolve: one message, no files.
    let mut r = req(".", "", 0, 0);
    r.r#ref = b"nope".to_vec();
    let msgs = stream(c.search_files_by_name(r).await).await.unwrap();
    assert_eq!(msgs, vec![SearchFilesByNameResponse { files: vec![] }]);
    let long = "a".repeat(1001);
    let mut dash = req(".", "", 0, 0);
    dash.r#ref = b"--output=x".to_vec();
    let mut no_ref = req(".", "", 0, 0);
    no_ref.r#ref = Vec::new();
    for (r, msg) in [
        (req("", "", 0, 0), "no query given"),
        (no_ref, "no ref given"),
        (dash, "invalid ref argument"),
        (req(".", &long, 0, 0), "filter exceeds maximum length"),
    ] {
        assert_eq!(
            failure(c.search_files_by_name(r).await),
            (Code::InvalidArgument, msg.to_string())
        );
    }
    let (code, msg) = failure(c.search_files_by_name(req(".", "(", 0, 0)).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.starts_with("filter did not compile: "), "{msg}");
    for (repo, code) in bad_repos(&s) {
        let mut r = req(".", "", 0, 0);
        r.repository = repo;
        assert_eq!(failure(c.search_files_by_name(r).await).0, code);
    }
    wait_no_git(s.dir.path(), "s.git").await;
    s.stop().await;
}

/// Match blocks as `git grep` separates them with `--` lines.
fn git_blocks(out: &[u8]) -> Vec<Vec<u8>> {
    let mut blocks = vec![Vec::new()];
    for line in out.split_inclusive(|&b| b == b'\n') {
        if line == b"--\n" {
            blocks.push(Vec::new());
        } else {
            blocks.last_mut().unwrap().extend_from_slice(line);
        }
    }
    blocks.retain(|b| !b.is_empty());
    blocks
}

#[tokio::test]
async fn search_by_content_frames_git_grep() {
    let s = TestServer::start().await;
    let w = files(&s, "s.git");
    let text: String = (0..40)
        .map(|i| {
            if i % 9 == 0 {
                format!("Needle {i}\n")
            } else {
                format!("hay {i}\n")
            }
        })
        .collect();
    w.write("hay.txt", &text);
    w.write("bin.dat", b"needle\0binary\n");
    // One block of ~300 KiB: every line matches.
    let big: String = (0..20_000)
        .map(|i| format!("needle line {i:08}\n"))
        .collect();
    w.write("big.txt", &big);
    w.commit("needles");
    let mut c = client(&s);
    let req = |q: &str, r: &[u8]| SearchFilesByContentRequest {
        repository: Some(w.repo()),
        query: q.into(),
        r#ref: r.to_vec(),
    };
    let msgs = stream(c.search_files_by_content(req("needle", b"main")).await)
        .await
        .unwrap();
    let mut blocks = vec![Vec::new()];
    for m in &msgs {
        assert!(m.match_data.len() <= 128 * 1024);
        if m.end_of_match {
            assert!(m.match_data.is_empty());
            blocks.push(Vec::new());
        } else {
            blocks.last_mut().unwrap().extend_from_slice(&m.match_data);
        }
    }
    assert!(
        blocks.pop().unwrap().is_empty(),
        "the last message ends a block"
    );
    let want = crate::commit_history::run(&mut w.cmd([
        "grep",
        "--ignore-case",
        "-I",
        "--line-number",
        "--null",
        "--before-context=2",
        "--after-context=2",
        "--perl-regexp",
        "-eneedle",
        "main",
        "--",
    ]));
    assert_eq!(blocks, git_blocks(&want));
    assert!(!blocks.iter().any(|b| b.starts_with(b"main:bin.dat")));
    assert!(blocks.len() >= 5);
    // The big block: 128 KiB pieces, then its end.
    let big_len = blocks.iter().map(Vec::len).max().unwrap();
    assert!(big_len > 256 * 1024);
    let full = msgs
        .iter()
        .filter(|m| m.match_data.len() == 128 * 1024)
        .count();
    assert_eq!(full, big_len / (128 * 1024));
    // Nothing found: no messages; a bad ref or a bad pattern: git fails, nothing found.
    for r in [
        req("zzzznothing", b"main"),
        req("needle", b"nope"),
        req("(", b"main"),
    ] {
        assert!(stream(c.search_files_by_content(r).await)
            .await
            .unwrap()
            .is_empty());
    }
    let long = "a".repeat(1001);
    for (r, msg) in [
        (req("", b"main"), "no query given"),
        (req("x", b""), "no ref given"),
        (req("x", b"-x"), "invalid ref argument"),
        (req(&long, b"main"), "query exceeds maximum length"),
    ] {
        assert_eq!(
            failure(c.search_files_by_content(r).await),
            (Code::InvalidArgument, msg.to_string())
        );
    }
    for (repo, code) in bad_repos(&s) {
        let mut r = req("x", b"main");
        r.repository = repo;
        assert_eq!(failure(c.search_files_by_content(r).await).0, code);
    }
    wait_no_git(s.dir.path(), "s.git").await;
    s.stop().await;
}

/// A run of `a` and a `!` per file: PCRE backtracks `(a+)+$` exponentially in the run's length.
/// 22 is the longest run under PCRE's default match limit here (23 makes git stop with
/// "match limit exceeded"): about 19 ms of CPU per file (a run of 20: about 5 ms).
const RUN: usize = 22;
/// Files of such runs: each under PCRE's match limit (else git stops with an error and
/// finds nothing), together far more work than the deadline allows (about a minute of CPU).
const SLOW_FILES: usize = 3000;

/// `git grep -P` of a pathological pattern over a lot of content: past `[reads]
/// regex_timeout` git is killed and the call fails with DEADLINE_EXCEEDED.
#[tokio::test]
async fn a_pathological_content_search_meets_the_deadline() {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let server = crate::common::serving(dir.path(), |c| {
        c.reads.regex_timeout = Duration::from_secs(1)
    })
    .await;
    let repo = dir.path().join("storage").join("slow.git");
    std::fs::create_dir_all(&repo).unwrap();
    crate::commit_history::run(git_cmd(&repo).args(["init", "--bare", "-q", "-b", "main"]));
    let line = format!("{}!\n", "a".repeat(RUN));
    let mut import =
        b"commit refs/heads/main\ncommitter A <a@example.com> 1700000000 +0000\ndata 4\nslow\n"
            .to_vec();
    for i in 0..SLOW_FILES {
        write!(
            import,
            "M 100644 inline f{i:05}.txt\ndata {}\n{line}\n",
            line.len()
        )
        .unwrap();
    }
    let mut fi = git_cmd(&repo)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    fi.stdin.take().unwrap().write_all(&import).unwrap();
    assert!(fi.wait().unwrap().success());
    let pattern = "(a+)+$";
    // git itself gets through a few of the files without an error and finds nothing: it
    // would go on through all of them, not stop early.
    let out = git_cmd(&repo)
        .args([
            "grep",
            "-I",
            "-i",
            "-P",
            "-e",
            pattern,
            "main",
            "--",
            "f0000*.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (Some(1), "")
    );

    let channel = gitrpc_client::connect(
        &format!("unix:{}", dir.path().join("s.sock").display()),
        &gitrpc_client::Options::default(),
    )
    .await
    .unwrap();
    let mut c = super::Client::new(channel);
    let req = SearchFilesByContentRequest {
        repository: Some(Repository {
            storage_name: crate::common::STORAGE.into(),
            relative_path: "slow.git".into(),
            ..Default::default()
        }),
        query: pattern.into(),
        r#ref: b"main".to_vec(),
    };
    let started = Instant::now();
    let call = tokio::spawn(async move { stream(c.search_files_by_content(req).await).await });
    // The server's git grep is seen at work before the deadline ends it.
    let seen = loop {
        if !crate::common::git_processes(dir.path(), " grep ").is_empty() {
            break true;
        }
        if call.is_finished() || started.elapsed() > Duration::from_secs(30) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let e = call.await.unwrap().unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::DeadlineExceeded,
            "SearchFilesByContent: pattern evaluation exceeded 1s"
        )
    );
    assert!(seen, "git grep never ran");
    assert!(started.elapsed() < Duration::from_secs(30));
    wait_no_git(dir.path(), "slow.git").await;
    drop(server);
}

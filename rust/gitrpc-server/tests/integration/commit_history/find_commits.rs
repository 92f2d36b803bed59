//! FindCommits: each option against `git log` with the same flags; Gitaly's NOT_FOUND with
//! `FindCommitsError`; the regex deadline; CommitsByMessage against `git log --grep -i`.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::*;
use crate::common::{serving, TestServer};

/// ```text
/// main: c1 (README) - c2 (lib, trailers; tag v1.0) - m3 (merge feature) - c4 (rename lib → core)
///          \- f1 (feature.txt) -/                                       - c5 (Grace: core) - c6
/// tags: light (c1)
/// ```
pub fn history(s: &TestServer, rel: &str, format: &str) -> Work {
    let w = Work::new(s, rel, format);
    w.write("README.md", "hello\n");
    w.commit("c1: initial commit");
    w.git(&["tag", "light"]);
    w.write("README.md", "hello\nworld\n");
    w.write(
        "src/lib.rs",
        "pub fn answer() -> u32 {\n    42\n}\n\npub fn question() -> &'static str {\n    \"six by nine\"\n}\n",
    );
    w.commit(
        "c2: add lib\n\nThe library answers.\n\nSigned-off-by: Ada Lovelace <ada@example.com>\nCo-authored-by: Charles\n  Babbage <charles@example.com>",
    );
    w.git(&["tag", "-a", "v1.0", "-m", "release 1.0"]);
    w.git(&["checkout", "-q", "-b", "feature", "HEAD~1"]);
    w.write("feature.txt", "feature\n");
    w.commit("f1: feature work");
    w.git(&["checkout", "-q", "main"]);
    w.merge("feature", "m3: merge feature", &[]);
    w.git(&["mv", "src/lib.rs", "src/core.rs"]);
    w.write(
        "src/core.rs",
        "pub fn answer() -> u32 {\n    42\n}\n\npub fn question() -> &'static str {\n    \"six by seven\"\n}\n",
    );
    w.commit("c4: rename lib to core");
    w.write("src/core.rs", "pub fn answer() -> u32 {\n    42\n}\n");
    run(w
        .cmd(["commit", "-qam", "c5: fix TYPO in core"])
        .env("GIT_AUTHOR_NAME", "Grace Hopper")
        .env("GIT_AUTHOR_EMAIL", "grace@example.com")
        .env("GIT_AUTHOR_DATE", "1700009000 +0000")
        .env("GIT_COMMITTER_DATE", "1700009000 +0000"));
    w.write("docs/a b.txt", "spaced name\n");
    w.commit("c6: docs");
    w
}

fn find(w: &Work) -> FindCommitsRequest {
    FindCommitsRequest {
        repository: Some(w.repo()),
        limit: 100,
        ..Default::default()
    }
}

async fn found(c: &mut Client, r: FindCommitsRequest) -> Result<Vec<GitCommit>, tonic::Status> {
    Ok(stream(c.find_commits(r).await)
        .await?
        .into_iter()
        .flat_map(|m| m.commits)
        .collect())
}

async fn found_ids(c: &mut Client, r: FindCommitsRequest) -> Vec<String> {
    found(c, r)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// `git log --format=%H <args>`.
fn git_log(w: &Work, args: &[&str]) -> Vec<String> {
    let mut a = vec!["log", "--format=%H"];
    a.extend_from_slice(args);
    w.git(&a).lines().map(str::to_string).collect()
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

#[tokio::test]
async fn each_option_as_git_log() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    for (rel, format) in [("f1.git", "sha1"), ("f256.git", "sha256")] {
        let w = history(&s, rel, format);
        let r = || find(&w);
        let with = |f: &dyn Fn(&mut FindCommitsRequest)| {
            let mut q = r();
            f(&mut q);
            q
        };
        let cases: Vec<(FindCommitsRequest, Vec<String>)> = vec![
            // No revision: the default branch.
            (r(), git_log(&w, &["--max-count=100", "refs/heads/main"])),
            (
                with(&|q| {
                    q.revision = b"main".to_vec();
                    q.limit = 2;
                    q.offset = 1;
                }),
                git_log(&w, &["--skip=1", "--max-count=2", "main"]),
            ),
            (with(&|q| q.limit = 0), vec![]),
            (
                with(&|q| q.paths = vec![b"README.md".to_vec(), b"feature.txt".to_vec()]),
                git_log(&w, &["main", "--", "README.md", "feature.txt"]),
            ),
            (
                with(&|q| {
                    q.paths = vec![b"src/core.rs".to_vec()];
                    q.follow = true;
                }),
                git_log(&w, &["--follow", "main", "--", "src/core.rs"]),
            ),
            (
                with(&|q| {
                    q.paths = vec![b"src/core.rs".to_vec()];
                    q.follow = true;
                    q.offset = 1;
                }),
                git_log(&w, &["--follow", "main", "--", "src/core.rs"])[1..].to_vec(),
            ),
            (
                with(&|q| q.skip_merges = true),
                git_log(&w, &["--no-merges", "main"]),
            ),
            (
                with(&|q| q.author = b"Grace".to_vec()),
                git_log(&w, &["--author=Grace", "main"]),
            ),
            (
                with(&|q| {
                    q.after = ts(1_700_000_150);
                    q.before = ts(1_700_000_250);
                }),
                git_log(&w, &["--after=@1700000150", "--before=@1700000250", "main"]),
            ),
            (
                with(&|q| q.all = true),
                git_log(&w, &["--all", "--reverse", "--max-count=100"]),
            ),
            (
                with(&|q| q.first_parent = true),
                git_log(&w, &["--first-parent", "main"]),
            ),
            (
                with(&|q| q.order = find_commits_request::Order::Topo as i32),
                git_log(&w, &["--topo-order", "main"]),
            ),
            (
                with(&|q| q.message_regex = "typo".into()),
                git_log(&w, &["--grep=typo", "-i", "main"]),
            ),
            (
                with(&|q| q.revision = b"v1.0".to_vec()),
                git_log(&w, &["v1.0"]),
            ),
        ];
        for (q, want) in cases {
            let what = format!("{q:?}");
            assert!(
                !want.is_empty() || q.limit == 0,
                "a case that finds nothing: {what}"
            );
            assert_eq!(found_ids(&mut c, q).await, want, "{what}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn trailers_stats_and_references() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = history(&s, "t.git", "sha1");
    let mut q = find(&w);
    q.revision = b"main".to_vec();
    q.trailers = true;
    q.include_shortstat = true;
    q.include_referenced_by = vec![
        b"refs/heads/".to_vec(),
        b"refs/tags/".to_vec(),
        b"HEAD".to_vec(),
    ];
    let commits = found(&mut c, q).await.unwrap();
    assert_eq!(commits.len(), 7);
    for commit in &commits {
        // Trailers: as git parses them.
        let raw = w.git(&[
            "log",
            "-1",
            "--format=%(trailers:unfold,separator=%x00)",
            &commit.id,
        ]);
        let want: Vec<(Vec<u8>, Vec<u8>)> = raw
            .trim_end()
            .split('\0')
            .filter(|t| !t.is_empty())
            .map(|t| {
                let (k, v) = t.split_once(':').unwrap();
                (k.as_bytes().to_vec(), v.trim().as_bytes().to_vec())
            })
            .collect();
        let got: Vec<(Vec<u8>, Vec<u8>)> = commit
            .trailers
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        assert_eq!(got, want, "{}", commit.id);
        // Short stats: git's line; merges have none.
        let line = w.git(&["log", "-1", "--shortstat", "--format=", &commit.id]);
        let nums: Vec<i32> = line
            .split(|ch: char| !ch.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect();
        match &commit.short_stats {
            None => assert_eq!(commit.parent_ids.len(), 2, "{line:?}"),
            Some(st) => {
                assert!(line.contains("changed"), "{line:?}");
                assert_eq!(st.changed_files, nums[0]);
                let adds = if line.contains("insertion") {
                    nums[1]
                } else {
                    0
                };
                let dels = if line.contains("deletion") {
                    *nums.last().unwrap()
                } else {
                    0
                };
                assert_eq!((st.additions, st.deletions), (adds, dels), "{line:?}");
            }
        }
    }
    let c2 = commits
        .iter()
        .find(|c| c.subject == b"c2: add lib")
        .unwrap();
    assert_eq!(
        c2.trailers
            .iter()
            .map(|t| (
                String::from_utf8_lossy(&t.key).into_owned(),
                String::from_utf8_lossy(&t.value).into_owned()
            ))
            .collect::<Vec<_>>(),
        vec![
            (
                "Signed-off-by".to_string(),
                "Ada Lovelace <ada@example.com>".to_string()
            ),
            (
                "Co-authored-by".to_string(),
                "Charles Babbage <charles@example.com>".to_string()
            )
        ]
    );
    assert_eq!(c2.referenced_by, vec![b"refs/tags/v1.0".to_vec()]);
    assert_eq!(
        commits[0].referenced_by,
        vec![b"HEAD".to_vec(), b"refs/heads/main".to_vec()]
    );
    let c1 = commits.last().unwrap();
    assert_eq!(c1.referenced_by, vec![b"refs/tags/light".to_vec()]);
    // Only what the patterns name.
    let mut q = find(&w);
    q.include_referenced_by = vec![b"refs/tags/".to_vec()];
    let commits = found(&mut c, q).await.unwrap();
    assert!(commits[0].referenced_by.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn not_found_and_bad_input_as_gitaly() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = history(&s, "nf.git", "sha1");
    let unknown = "1234567890123456789012345678901234567890";
    for rev in [
        "nope".to_string(),
        unknown.to_string(),
        format!("{unknown}..{}", &unknown.replace('1', "a")),
    ] {
        let mut q = find(&w);
        q.revision = rev.clone().into_bytes();
        let e = found(&mut c, q).await.unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::NotFound, "commits not found"),
            "{rev}"
        );
        let d: Option<FindCommitsError> = gitrpc_server::error::detail(&e, "FindCommitsError");
        assert_eq!(d, Some(FindCommitsError::default()), "{rev}");
    }
    // An empty repository: no default branch, nothing to log.
    let empty = Work::new(&s, "empty.git", "sha1");
    for paths in [vec![], vec![b"a".to_vec()]] {
        let mut q = find(&empty);
        q.paths = paths;
        let e = found(&mut c, q).await.unwrap_err();
        assert_eq!(
            (e.code(), e.message()),
            (Code::NotFound, "commits not found")
        );
    }
    let bad: Vec<(FindCommitsRequest, &str)> = vec![
        (
            FindCommitsRequest {
                revision: b"--output=/tmp/x".to_vec(),
                ..find(&w)
            },
            "revision can't start with '-'",
        ),
        (
            FindCommitsRequest {
                paths: vec![b"a".to_vec(), Vec::new()],
                ..find(&w)
            },
            "path is empty string",
        ),
        (
            FindCommitsRequest {
                author: vec![b'a'; 1001],
                ..find(&w)
            },
            "author exceeds maximum length",
        ),
    ];
    for (q, msg) in bad {
        assert_eq!(
            failure(found(&mut c, q).await),
            (Code::InvalidArgument, msg.to_string())
        );
    }
    for (r, code) in bad_repos(&s) {
        let mut q = find(&w);
        q.repository = r;
        assert_eq!(failure(found(&mut c, q).await).0, code);
    }
    wait_no_git(s.dir.path(), "nf.git").await;
    s.stop().await;
}

async fn by_message(
    c: &mut Client,
    r: CommitsByMessageRequest,
) -> Result<Vec<String>, tonic::Status> {
    Ok(stream(c.commits_by_message(r).await)
        .await?
        .into_iter()
        .flat_map(|m| m.commits)
        .map(|c| c.id)
        .collect())
}

#[tokio::test]
async fn commits_by_message_as_git_log_grep() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = history(&s, "m.git", "sha1");
    let q = |query: &str| CommitsByMessageRequest {
        repository: Some(w.repo()),
        query: query.into(),
        ..Default::default()
    };
    let cases: Vec<(CommitsByMessageRequest, Vec<String>)> = vec![
        (
            q("C[0-9]:"),
            git_log(&w, &["--grep=C[0-9]:", "-i", "refs/heads/main"]),
        ),
        (
            CommitsByMessageRequest {
                offset: 1,
                limit: 2,
                ..q("c")
            },
            git_log(&w, &["--grep=c", "-i", "--skip=1", "--max-count=2", "main"]),
        ),
        (
            CommitsByMessageRequest {
                path: b"src/core.rs".to_vec(),
                ..q("core")
            },
            git_log(&w, &["--grep=core", "-i", "main", "--", "src/core.rs"]),
        ),
        (
            CommitsByMessageRequest {
                revision: b"feature".to_vec(),
                ..q("work")
            },
            git_log(&w, &["--grep=work", "-i", "feature"]),
        ),
    ];
    for (r, want) in cases {
        assert!(!want.is_empty());
        assert_eq!(by_message(&mut c, r).await.unwrap(), want);
    }
    // git failing (an unknown revision) finds nothing.
    let r = CommitsByMessageRequest {
        revision: b"nope".to_vec(),
        ..q("c")
    };
    assert_eq!(by_message(&mut c, r).await.unwrap(), Vec::<String>::new());
    assert_eq!(
        failure(by_message(&mut c, q("")).await),
        (Code::InvalidArgument, "empty Query".to_string())
    );
    let r = CommitsByMessageRequest {
        revision: b"-x".to_vec(),
        ..q("c")
    };
    assert_eq!(
        failure(by_message(&mut c, r).await),
        (
            Code::InvalidArgument,
            "revision can't start with '-'".to_string()
        )
    );
    s.stop().await;
}

/// A pattern git's regex engine takes ages on (nested groups and back references over a
/// long run of `a`): past `[reads] regex_timeout` git is killed and the call fails.
#[tokio::test]
async fn a_pathological_pattern_meets_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(dir.path(), |c| {
        c.reads.regex_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    let storage = dir.path().join("storage");
    let repo = storage.join("slow.git");
    std::fs::create_dir_all(&repo).unwrap();
    run(git_cmd(&repo).args(["init", "--bare", "-q", "-b", "main"]));
    let work = tempfile::tempdir().unwrap();
    run(git_cmd(work.path()).args(["init", "-q", "-b", "main"]));
    let long = format!("{}!", "a".repeat(150));
    run(git_cmd(work.path()).args(["commit", "-q", "--allow-empty", "-m", &long]));
    run(git_cmd(work.path()).args(["push", "-q", repo.to_str().unwrap(), "main"]));
    let channel = gitrpc_client::connect(
        &format!("unix:{}", dir.path().join("s.sock").display()),
        &gitrpc_client::Options::default(),
    )
    .await
    .unwrap();
    let mut c = Client::new(channel);
    let repository = Repository {
        storage_name: crate::common::STORAGE.into(),
        relative_path: "slow.git".into(),
        ..Default::default()
    };
    let pattern = r"\(a*\)\(a*\)\(a*\)\(a*\)\(a*\)\(a*\)\2\3\4\5\6b";
    let started = std::time::Instant::now();
    let e = found(
        &mut c,
        FindCommitsRequest {
            repository: Some(repository.clone()),
            message_regex: pattern.into(),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::DeadlineExceeded,
            "FindCommits: pattern evaluation exceeded 1s"
        )
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let e = by_message(
        &mut c,
        CommitsByMessageRequest {
            repository: Some(repository),
            query: pattern.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);
    wait_no_git(dir.path(), "slow.git").await;
    drop(server);
}

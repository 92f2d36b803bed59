use futures::StreamExt;
use gitrpc_proto::gitaly::diff_service_client::DiffServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::{Code, Status};

use crate::blob::{extras, raw, BIG};
use crate::common::*;

type Client = DiffServiceClient<tonic::transport::Channel>;

fn client(s: &TestServer) -> Client {
    DiffServiceClient::new(s.channel.clone())
}

async fn collect<T>(
    s: Result<tonic::Response<tonic::Streaming<T>>, Status>,
) -> Result<Vec<T>, Status> {
    let mut s = s?.into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        out.push(m?);
    }
    Ok(out)
}

async fn raw_diff(
    c: &mut Client,
    repo: Repository,
    left: &str,
    right: &str,
) -> Result<(Vec<u8>, usize), Status> {
    let msgs = collect(
        c.raw_diff(RawDiffRequest {
            repository: Some(repo),
            left_commit_id: left.into(),
            right_commit_id: right.into(),
        })
        .await,
    )
    .await?;
    Ok((
        msgs.iter().flat_map(|m| m.data.clone()).collect(),
        msgs.len(),
    ))
}

async fn raw_patch(
    c: &mut Client,
    repo: Repository,
    left: &str,
    right: &str,
) -> Result<(Vec<u8>, usize), Status> {
    let msgs = collect(
        c.raw_patch(RawPatchRequest {
            repository: Some(repo),
            left_commit_id: left.into(),
            right_commit_id: right.into(),
        })
        .await,
    )
    .await?;
    Ok((
        msgs.iter().flat_map(|m| m.data.clone()).collect(),
        msgs.len(),
    ))
}

async fn commit_delta(
    c: &mut Client,
    repo: Repository,
    left: &str,
    right: &str,
    paths: &[&str],
) -> Result<Vec<CommitDelta>, Status> {
    let msgs = collect(
        c.commit_delta(CommitDeltaRequest {
            repository: Some(repo),
            left_commit_id: left.into(),
            right_commit_id: right.into(),
            paths: paths.iter().map(|p| p.as_bytes().to_vec()).collect(),
        })
        .await,
    )
    .await?;
    Ok(msgs.into_iter().flat_map(|m| m.deltas).collect())
}

async fn diff_stats(
    c: &mut Client,
    repo: Repository,
    left: &str,
    right: &str,
) -> Result<Vec<DiffStats>, Status> {
    let msgs = collect(
        c.diff_stats(DiffStatsRequest {
            repository: Some(repo),
            left_commit_id: left.into(),
            right_commit_id: right.into(),
        })
        .await,
    )
    .await?;
    Ok(msgs.into_iter().flat_map(|m| m.stats).collect())
}

/// Deltas from `git diff --raw -z` as Gitaly reports them (type changes split in two).
fn expected_deltas(f: &Fixture, left: &str, right: &str, paths: &[&str]) -> Vec<CommitDelta> {
    let mut args = vec![
        "diff",
        "--raw",
        "-z",
        "--no-abbrev",
        "--find-renames",
        left,
        right,
        "--",
    ];
    args.extend_from_slice(paths);
    let out = raw(f, &args);
    let zero = "0".repeat(f.rev_parse("main").len());
    let mut fields = out.split(|&b| b == 0).filter(|f| !f.is_empty());
    let mut want = Vec::new();
    while let Some(header) = fields.next() {
        let header = std::str::from_utf8(header).unwrap();
        let h: Vec<&str> = header[1..].split(' ').collect();
        let from_path = fields.next().unwrap().to_vec();
        let status = h[4].as_bytes()[0];
        let to_path = if status == b'R' || status == b'C' {
            fields.next().unwrap().to_vec()
        } else {
            from_path.clone()
        };
        let d = CommitDelta {
            from_path,
            to_path,
            from_id: h[2].into(),
            to_id: h[3].into(),
            old_mode: i32::from_str_radix(h[0], 8).unwrap(),
            new_mode: i32::from_str_radix(h[1], 8).unwrap(),
        };
        if status == b'T' {
            want.push(CommitDelta {
                new_mode: 0,
                to_id: zero.clone(),
                ..d.clone()
            });
            want.push(CommitDelta {
                old_mode: 0,
                from_id: zero.clone(),
                ..d
            });
        } else {
            want.push(d);
        }
    }
    want
}

/// Stats from `git diff --numstat -z`; binary files count 0/0 as in Gitaly.
fn expected_stats(f: &Fixture, left: &str, right: &str) -> Vec<DiffStats> {
    let out = raw(f, &["diff", "--numstat", "-z", left, right]);
    let mut fields = out.split(|&b| b == 0);
    let mut want = Vec::new();
    let num = |n: &[u8]| {
        if n == b"-" {
            0
        } else {
            std::str::from_utf8(n).unwrap().parse().unwrap()
        }
    };
    while let Some(rec) = fields.next() {
        if rec.is_empty() {
            continue;
        }
        let parts: Vec<&[u8]> = rec.splitn(3, |&b| b == b'\t').collect();
        let mut s = DiffStats {
            additions: num(parts[0]),
            deletions: num(parts[1]),
            path: parts[2].to_vec(),
            old_path: Vec::new(),
        };
        if s.path.is_empty() {
            s.old_path = fields.next().unwrap().to_vec();
            s.path = fields.next().unwrap().to_vec();
        }
        want.push(s);
    }
    want
}

/// (left, right) pairs worth comparing on the fixture plus [`extras`].
fn ranges(f: &Fixture) -> Vec<(String, String)> {
    let r = |x: &str| f.rev_parse(x);
    let mut v = vec![
        (r("main~1"), r("main")),
        (r("light"), r("main~1")),
        (r("main~3"), r("main~2")),
        (r("main"), r("light")),
        (r("main"), r("main")),
        (r("feature"), r("main~1")),
    ];
    if f.git(&["log", "-1", "--format=%s", "main"])
        .starts_with("c5")
    {
        v.push((r("main~1"), r("main")));
        v.push((r("light"), r("main")));
        v.push((r("main"), r("main~1")));
    }
    v
}

#[tokio::test]
async fn raw_diff_matches_git_diff() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    extras(&f);
    let g = s.fixture_sha256("g.git");
    let mut c = client(&s);
    for (rel, f) in [("r.git", &f), ("g.git", &g)] {
        for (l, r) in ranges(f) {
            let want = raw(f, &["diff", "--full-index", &l, &r]);
            let (got, _) = raw_diff(&mut c, s.repo(rel), &l, &r).await.unwrap();
            assert!(
                got == want,
                "{rel} {l}..{r}:\n{}",
                String::from_utf8_lossy(&got[..got.len().min(2000)])
            );
        }
        // Revisions other than ids work too.
        let want = raw(f, &["diff", "--full-index", "v1.0", "main"]);
        assert!(
            raw_diff(&mut c, s.repo(rel), "v1.0", "main")
                .await
                .unwrap()
                .0
                == want
        );
    }
    // The large file makes a diff of several messages.
    let (got, n) = raw_diff(
        &mut c,
        s.repo("r.git"),
        &f.rev_parse("main~1"),
        &f.rev_parse("main"),
    )
    .await
    .unwrap();
    assert!(
        got.len() > BIG && n > 4,
        "{} bytes in {n} messages",
        got.len()
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("rename from src/lib.rs\nrename to src/answer.rs\n"));
    assert!(text.contains("Binary files /dev/null and b/binary.dat differ"));
    assert!(text.contains("new mode 100755") || text.contains("new file mode 100755"));
}

#[tokio::test]
async fn raw_patch_matches_format_patch() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    extras(&f);
    let g = s.fixture_sha256("g.git");
    let mut c = client(&s);
    for (rel, f) in [("r.git", &f), ("g.git", &g)] {
        for (l, r) in ranges(f) {
            let range = format!("{l}..{r}");
            let want = raw(
                f,
                &["format-patch", "--stdout", "--signature=GitLab", &range],
            );
            let (got, _) = raw_patch(&mut c, s.repo(rel), &l, &r).await.unwrap();
            assert!(
                got == want,
                "{rel} {range}:\n{}",
                String::from_utf8_lossy(&got[..got.len().min(2000)])
            );
        }
    }
    let (got, n) = raw_patch(&mut c, s.repo("r.git"), &f.rev_parse("light"), "main")
        .await
        .unwrap();
    assert!(n > 4, "{n} messages");
    let text = String::from_utf8_lossy(&got);
    // Merges are skipped; every other commit is one mail, signed like Gitaly's.
    assert_eq!(
        text.matches("\nSubject: [PATCH ").count(),
        4,
        "c2, f1, c4, c5"
    );
    assert!(
        text.ends_with("-- \nGitLab\n\n"),
        "{:?}",
        &text[text.len() - 40..]
    );
    // An empty range is an empty answer.
    assert!(raw_patch(&mut c, s.repo("r.git"), "main", "main")
        .await
        .unwrap()
        .0
        .is_empty());
}

#[tokio::test]
async fn commit_delta_matches_git_diff_raw() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    extras(&f);
    let g = s.fixture_sha256("g.git");
    let mut c = client(&s);
    for (rel, f) in [("r.git", &f), ("g.git", &g)] {
        for (l, r) in ranges(f) {
            let got = commit_delta(&mut c, s.repo(rel), &l, &r, &[])
                .await
                .unwrap();
            assert_eq!(got, expected_deltas(f, &l, &r, &[]), "{rel} {l}..{r}");
        }
    }
    let (l, r) = (f.rev_parse("main~1"), f.rev_parse("main"));
    let got = commit_delta(&mut c, s.repo("r.git"), &l, &r, &[])
        .await
        .unwrap();
    let find = |p: &str| {
        got.iter()
            .filter(|d| d.to_path == p.as_bytes())
            .cloned()
            .collect::<Vec<_>>()
    };
    let zero = "0".repeat(40);
    // A rename keeps both paths.
    let rename = &find("src/answer.rs")[0];
    assert_eq!(
        (
            rename.from_path.as_slice(),
            rename.old_mode,
            rename.new_mode
        ),
        (&b"src/lib.rs"[..], 0o100644, 0o100644)
    );
    assert_eq!(rename.from_id, rename.to_id);
    // Added and deleted files have a zero id and mode on the missing side.
    let added = &find("run.sh")[0];
    assert_eq!(
        (added.from_id.as_str(), added.old_mode, added.new_mode),
        (zero.as_str(), 0, 0o100755)
    );
    assert_eq!(added.to_id, f.rev_parse("main:run.sh"));
    let deleted = &find("feature.txt")[0];
    assert_eq!(
        (deleted.to_id.as_str(), deleted.new_mode),
        (zero.as_str(), 0)
    );
    // A type change (file -> symlink) is a deletion then an addition.
    let changed = find("docs/a b.txt");
    assert_eq!(changed.len(), 2);
    assert_eq!(
        (
            changed[0].old_mode,
            changed[0].new_mode,
            changed[0].to_id.as_str()
        ),
        (0o100644, 0, zero.as_str())
    );
    assert_eq!(
        (
            changed[1].old_mode,
            changed[1].new_mode,
            changed[1].from_id.as_str()
        ),
        (0, 0o120000, zero.as_str())
    );
    assert_eq!(find("sub")[0].new_mode, 0o160000);
    assert_eq!(find("ünï.txt").len(), 1, "paths are raw bytes, not quoted");

    // Path filters, including one with a space and a directory.
    for paths in [
        &["README.md"][..],
        &["docs", "big.txt"],
        &["docs/a b.txt"],
        &["nope"],
    ] {
        let got = commit_delta(&mut c, s.repo("r.git"), &l, &r, paths)
            .await
            .unwrap();
        assert_eq!(got, expected_deltas(&f, &l, &r, paths), "{paths:?}");
    }
    assert!(commit_delta(&mut c, s.repo("r.git"), &l, &r, &["nope"])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn diff_stats_match_numstat() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    extras(&f);
    let g = s.fixture_sha256("g.git");
    let mut c = client(&s);
    for (rel, f) in [("r.git", &f), ("g.git", &g)] {
        for (l, r) in ranges(f) {
            let got = diff_stats(&mut c, s.repo(rel), &l, &r).await.unwrap();
            assert_eq!(got, expected_stats(f, &l, &r), "{rel} {l}..{r}");
        }
    }
    let got = diff_stats(&mut c, s.repo("r.git"), "main~1", "main")
        .await
        .unwrap();
    let find = |p: &str| {
        got.iter()
            .find(|d| d.path == p.as_bytes())
            .cloned()
            .unwrap()
    };
    let rename = find("src/answer.rs");
    assert_eq!(
        (
            rename.old_path.as_slice(),
            rename.additions,
            rename.deletions
        ),
        (&b"src/lib.rs"[..], 0, 0)
    );
    let binary = find("binary.dat");
    assert_eq!(
        (binary.additions, binary.deletions, binary.old_path.len()),
        (0, 0, 0)
    );
    let readme = find("README.md");
    assert_eq!((readme.additions, readme.deletions), (1, 0));
    assert_eq!(
        find("big.txt").additions as usize,
        crate::blob::big_text(BIG).lines().count()
    );
    assert_eq!(find("feature.txt").deletions, 1);
}

#[derive(Clone, Copy, Debug)]
enum Rpc {
    RawDiff,
    RawPatch,
    CommitDelta,
    DiffStats,
}

async fn call(
    c: &mut Client,
    rpc: Rpc,
    repo: Option<Repository>,
    left: &str,
    right: &str,
) -> Result<(), Status> {
    let (l, r) = (left.to_string(), right.to_string());
    match rpc {
        Rpc::RawDiff => collect(
            c.raw_diff(RawDiffRequest {
                repository: repo,
                left_commit_id: l,
                right_commit_id: r,
            })
            .await,
        )
        .await
        .map(drop),
        Rpc::RawPatch => collect(
            c.raw_patch(RawPatchRequest {
                repository: repo,
                left_commit_id: l,
                right_commit_id: r,
            })
            .await,
        )
        .await
        .map(drop),
        Rpc::CommitDelta => collect(
            c.commit_delta(CommitDeltaRequest {
                repository: repo,
                left_commit_id: l,
                right_commit_id: r,
                paths: Vec::new(),
            })
            .await,
        )
        .await
        .map(drop),
        Rpc::DiffStats => collect(
            c.diff_stats(DiffStatsRequest {
                repository: repo,
                left_commit_id: l,
                right_commit_id: r,
            })
            .await,
        )
        .await
        .map(drop),
    }
}

#[tokio::test]
async fn diff_bad_input() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let (l, r) = (f.rev_parse("main~1"), f.rev_parse("main"));
    let zero = "0".repeat(40);
    let mut c = client(&s);
    let repo = || Some(s.repo("r.git"));
    let mut unknown = s.repo("r.git");
    unknown.storage_name = "nope".into();
    for rpc in [
        Rpc::RawDiff,
        Rpc::RawPatch,
        Rpc::CommitDelta,
        Rpc::DiffStats,
    ] {
        call(&mut c, rpc, repo(), &l, &r).await.unwrap();
        let cases: Vec<(Option<Repository>, &str, &str, Code)> = vec![
            (repo(), "", &r, Code::InvalidArgument),
            (repo(), &l, "", Code::InvalidArgument),
            (repo(), "-p", &r, Code::InvalidArgument),
            (repo(), &l, "--output=/tmp/x", Code::InvalidArgument),
            (repo(), "main main", &r, Code::InvalidArgument),
            (repo(), "a\nb", &r, Code::InvalidArgument),
            // Unknown commits: git's failure, reported as Gitaly's diff RPCs do.
            (repo(), &zero, &r, Code::FailedPrecondition),
            (repo(), &l, "does-not-exist", Code::FailedPrecondition),
            (repo(), "main:./README.md", &r, Code::FailedPrecondition),
            (Some(unknown.clone()), &l, &r, Code::InvalidArgument),
            (Some(s.repo("../r.git")), &l, &r, Code::InvalidArgument),
            (Some(s.repo("x/../../r.git")), &l, &r, Code::InvalidArgument),
            (Some(s.repo("missing.git")), &l, &r, Code::NotFound),
            (None, &l, &r, Code::InvalidArgument),
        ];
        for (repo, left, right, code) in cases {
            let err = call(&mut c, rpc, repo.clone(), left, right)
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                code,
                "{rpc:?} {repo:?} {left:?} {right:?}: {err:?}"
            );
        }
    }
    // Objects git refuses to compare (a blob with a commit) fail in git, after the stream
    // started: still an error status.
    let blob = f.rev_parse("main:README.md");
    for rpc in [Rpc::RawDiff, Rpc::CommitDelta, Rpc::DiffStats] {
        let err = call(&mut c, rpc, repo(), &blob, &r).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{rpc:?}: {err:?}");
    }
    // Bad paths for CommitDelta.
    let err = c
        .commit_delta(CommitDeltaRequest {
            repository: repo(),
            left_commit_id: l.clone(),
            right_commit_id: r.clone(),
            paths: vec![b"a\0b".to_vec()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

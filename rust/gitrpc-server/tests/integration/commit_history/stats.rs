//! CountDivergingCommits against `git rev-list --left-right --count`, CommitStats against
//! `git diff --numstat` sums.

use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::find_commits::history;
use super::*;
use crate::common::TestServer;

fn diverging(w: &Work, from: &str, to: &str, max: i32) -> CountDivergingCommitsRequest {
    CountDivergingCommitsRequest {
        repository: Some(w.repo()),
        from: from.as_bytes().to_vec(),
        to: to.as_bytes().to_vec(),
        max_count: max,
    }
}

#[tokio::test]
async fn count_diverging_commits_as_rev_list() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    let w = history(&s, "d.git", "sha1");
    w.git(&["checkout", "-q", "-b", "other", "main~3"]);
    for i in 0..3 {
        w.write("other.txt", format!("{i}\n"));
        w.commit("other");
    }
    for (from, to, max) in [
        ("main", "other", 0),
        ("other", "main", 0),
        ("main", "main", 0),
        ("feature", "main", 0),
        ("main", "other", 2),
        ("v1.0", "light", 0),
    ] {
        let mut args = vec!["rev-list", "--count", "--left-right"];
        let cap = format!("--max-count={max}");
        if max != 0 {
            args.push(&cap);
        }
        let range = format!("{from}...{to}");
        args.push(&range);
        let out = w.git(&args);
        let want: Vec<i32> = out.split_whitespace().map(|n| n.parse().unwrap()).collect();
        let r = c
            .count_diverging_commits(diverging(&w, from, to, max))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(vec![r.left_count, r.right_count], want, "{range} {max}");
    }
    let bad = [
        (
            diverging(&w, "", "main", 0),
            Code::InvalidArgument,
            "from and to are both required",
        ),
        (
            diverging(&w, "main", "", 0),
            Code::InvalidArgument,
            "from and to are both required",
        ),
        (
            diverging(&w, "nope", "main", 0),
            Code::Internal,
            "gi rev-list error: exit status 128",
        ),
        (
            diverging(&w, "main", "nope", 0),
            Code::Internal,
            "gi rev-list error: exit status 128",
        ),
    ];
    for (r, code, msg) in bad {
        assert_eq!(
            failure(c.count_diverging_commits(r).await),
            (code, msg.to_string())
        );
    }
    // An option in either place is refused before git runs, or is no option to git.
    assert_eq!(
        failure(
            c.count_diverging_commits(diverging(&w, "--all", "main", 0))
                .await
        )
        .0,
        Code::InvalidArgument
    );
    let out = s.dir.path().join("written");
    let option = format!("--output={}", out.display());
    assert_eq!(
        failure(
            c.count_diverging_commits(diverging(&w, "main", &option, 0))
                .await
        )
        .0,
        Code::Internal
    );
    assert!(!out.exists());
    // Empty from/to is checked before the repository.
    let mut r = diverging(&w, "", "", 0);
    r.repository = None;
    assert_eq!(
        failure(c.count_diverging_commits(r).await),
        (
            Code::InvalidArgument,
            "from and to are both required".to_string()
        )
    );
    for (repo, code) in bad_repos(&s) {
        let mut r = diverging(&w, "main", "other", 0);
        r.repository = repo;
        assert_eq!(failure(c.count_diverging_commits(r).await).0, code);
    }
    s.stop().await;
}

fn stats_req(w: &Work, rev: &str) -> CommitStatsRequest {
    CommitStatsRequest {
        repository: Some(w.repo()),
        revision: rev.as_bytes().to_vec(),
    }
}

/// `(additions, deletions, files)` from `git diff --numstat <base> <commit>`.
fn numstat(w: &Work, base: &str, commit: &str) -> (i32, i32, i32) {
    let out = w.git(&["diff", "--numstat", base, commit]);
    let mut t = (0, 0, 0);
    for l in out.lines() {
        let f: Vec<&str> = l.splitn(3, '\t').collect();
        t.2 += 1;
        if f[0] != "-" {
            t.0 += f[0].parse::<i32>().unwrap();
            t.1 += f[1].parse::<i32>().unwrap();
        }
    }
    t
}

#[tokio::test]
async fn commit_stats_as_numstat() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    for (rel, format, empty_tree) in [
        ("s1.git", "sha1", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
        (
            "s256.git",
            "sha256",
            "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321",
        ),
    ] {
        let w = history(&s, rel, format);
        w.write("bin.dat", b"\x00\x01\x02binary\x00".as_slice());
        w.write(b"caf\xe9.txt", "un\n");
        w.commit("binary and latin-1");
        for rev in [
            "main", "main~1", "main~2", "main~3", "main~4", "main~5", "v1.0",
        ] {
            let id = w.rev(&format!("{rev}^{{commit}}"));
            let parents = w.git(&["log", "-1", "--format=%P", &id]);
            let base = parents
                .split_whitespace()
                .next()
                .unwrap_or(empty_tree)
                .to_string();
            let r = c
                .commit_stats(stats_req(&w, rev))
                .await
                .unwrap()
                .into_inner();
            let want = numstat(&w, &base, &id);
            assert_eq!((r.additions, r.deletions, r.files), want, "{rev}");
            assert_eq!(r.oid, id);
        }
        // The root commit, against the empty tree.
        let root = w.rev("main~6");
        assert_eq!(w.git(&["log", "-1", "--format=%P", &root]).trim(), "");
        let r = c
            .commit_stats(stats_req(&w, &root))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.additions, r.deletions, r.files),
            numstat(&w, empty_tree, &root)
        );
        assert_eq!(
            failure(c.commit_stats(stats_req(&w, "nope")).await),
            (Code::Internal, "object not found".to_string())
        );
        assert_eq!(
            failure(c.commit_stats(stats_req(&w, "")).await),
            (Code::InvalidArgument, "empty revision".to_string())
        );
        assert_eq!(
            failure(c.commit_stats(stats_req(&w, "--stat")).await),
            (
                Code::InvalidArgument,
                "revision can't start with '-'".to_string()
            )
        );
    }
    s.stop().await;
}

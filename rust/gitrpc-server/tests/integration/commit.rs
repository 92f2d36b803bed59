use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::{Code, Status};

use crate::common::*;

type Client = CommitServiceClient<tonic::transport::Channel>;

fn client(s: &TestServer) -> Client {
    CommitServiceClient::new(s.channel.clone())
}

/// All messages of a server stream, or the status it (or the call) failed with.
async fn stream<T>(
    r: Result<tonic::Response<tonic::Streaming<T>>, Status>,
) -> Result<Vec<T>, Status> {
    let mut s = r?.into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await? {
        out.push(m);
    }
    Ok(out)
}

/// Repositories every RPC must refuse, with the code: unknown storage, a path escaping the
/// storage, no repository at all, and a repository that doesn't exist.
fn bad_repos(s: &TestServer) -> Vec<(Option<Repository>, Code)> {
    let mut unknown = s.repo("r.git");
    unknown.storage_name = "nope".into();
    vec![
        (Some(unknown), Code::InvalidArgument),
        (Some(s.repo("../r.git")), Code::InvalidArgument),
        (Some(s.repo("a/../../r.git")), Code::InvalidArgument),
        (None, Code::InvalidArgument),
        (Some(s.repo("missing.git")), Code::NotFound),
    ]
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn ids(commits: &[GitCommit]) -> Vec<String> {
    commits.iter().map(|c| c.id.clone()).collect()
}

/// A signature as git prints it with `--date=raw`.
fn author(name: &str, email: &str, raw_date: &str) -> CommitAuthor {
    let (secs, tz) = raw_date.split_once(' ').unwrap();
    CommitAuthor {
        name: name.into(),
        email: email.into(),
        date: Some(prost_types::Timestamp {
            seconds: secs.parse().unwrap(),
            nanos: 0,
        }),
        timezone: tz.into(),
    }
}

/// The GitCommit Gitaly returns for `rev`, built from git's own output.
fn expected_commit(f: &Fixture, rev: &str) -> GitCommit {
    let id = f.rev_parse(&format!("{rev}^{{commit}}"));
    let out = f.git(&[
        "log",
        "-1",
        "--date=raw",
        "--format=%T%x00%P%x00%an%x00%ae%x00%ad%x00%cn%x00%ce%x00%cd%x00%s",
        &id,
    ]);
    let v: Vec<&str> = out.trim_end_matches('\n').split('\0').collect();
    let raw = f.git(&["cat-file", "commit", &id]);
    let body = &raw[raw.find("\n\n").unwrap() + 2..];
    GitCommit {
        id,
        subject: v[8].into(),
        body: body.into(),
        author: Some(author(v[2], v[3], v[4])),
        committer: Some(author(v[5], v[6], v[7])),
        parent_ids: v[1].split_whitespace().map(str::to_string).collect(),
        body_size: body.len() as i64,
        signature_type: SignatureType::None as i32,
        tree_id: v[0].into(),
        ..Default::default()
    }
}

async fn find(
    c: &mut Client,
    repo: &Repository,
    rev: &str,
    trailers: bool,
) -> Result<Option<GitCommit>, Status> {
    c.find_commit(FindCommitRequest {
        repository: Some(repo.clone()),
        revision: rev.as_bytes().to_vec(),
        trailers,
    })
    .await
    .map(|r| r.into_inner().commit)
}

#[tokio::test]
async fn find_commit_matches_git() {
    let s = TestServer::start().await;
    for (rel, f) in [
        ("r.git", s.fixture("r.git")),
        ("r256.git", s.fixture_sha256("r256.git")),
    ] {
        let repo = s.repo(rel);
        let mut c = client(&s);
        let c2 = f.rev_parse("main~1^1");
        for rev in [
            "main",
            "HEAD",
            "main~1",
            "main~2",
            "feature",
            "v1.0",
            "light",
            &c2,
            &c2[..10],
        ] {
            let got = find(&mut c, &repo, rev, false)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{rel} {rev}"));
            assert_eq!(got, expected_commit(&f, rev), "{rel} {rev}");
        }
        // Merge commit: two parents, in order.
        let merge = find(&mut c, &repo, "main~1", false).await.unwrap().unwrap();
        assert_eq!(
            merge.parent_ids,
            [f.rev_parse("main~2"), f.rev_parse("feature")]
        );
        assert_eq!(merge.id.len(), if rel == "r.git" { 40 } else { 64 });
        // Trailers only when asked for.
        let with = find(&mut c, &repo, "v1.0", true).await.unwrap().unwrap();
        assert_eq!(
            with.trailers,
            [CommitTrailer {
                key: b"Signed-off-by".to_vec(),
                value: b"Ada Lovelace <ada@example.com>".to_vec(),
            }]
        );
        assert_eq!(with.subject, b"c2: add lib");
        let without = find(&mut c, &repo, "v1.0", false).await.unwrap().unwrap();
        assert!(without.trailers.is_empty());
        let author = with.author.unwrap();
        assert_eq!(author.timezone, b"+0130");
        assert_eq!(author.date.unwrap().seconds, 1700000000);
        assert_eq!(with.committer.unwrap().timezone, b"-0800");

        // Unknown revisions and non-commits are an empty answer, not an error.
        for rev in [
            "nope",
            "refs/heads/nope",
            "main:README.md",
            "main^{tree}",
            &"0".repeat(c2.len()),
        ] {
            assert_eq!(
                find(&mut c, &repo, rev, false).await.unwrap(),
                None,
                "{rev}"
            );
        }
    }
}

#[tokio::test]
async fn find_commit_is_served_by_the_pool() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let repo = s.repo("r.git");
    let mut c = client(&s);
    find(&mut c, &repo, "main", false).await.unwrap().unwrap();
    let (_, misses, _) = s.deps.catfile.stats();
    for _ in 0..5 {
        find(&mut c, &repo, "main~1", false).await.unwrap().unwrap();
    }
    let (hits, misses_after, _) = s.deps.catfile.stats();
    assert_eq!(
        misses_after, misses,
        "every FindCommit after the first reuses a cat-file"
    );
    assert!(hits >= 5);
}

#[tokio::test]
async fn find_commit_bad_inputs() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let mut c = client(&s);
    for (repo, code) in bad_repos(&s) {
        let err = c
            .find_commit(FindCommitRequest {
                repository: repo.clone(),
                revision: b"main".to_vec(),
                trailers: false,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{repo:?}: {err:?}");
    }
    let repo = s.repo("r.git");
    for bad in ["", "-main", "--output=/tmp/x", "a b", "a\0b", "main\n"] {
        let err = find(&mut c, &repo, bad, false).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
    }
    let err = find(&mut c, &repo, "", false).await.unwrap_err();
    assert!(
        err.message().contains("empty revision"),
        "{}",
        err.message()
    );
}

fn list_req(repo: &Repository, revs: &[&str]) -> ListCommitsRequest {
    ListCommitsRequest {
        repository: Some(repo.clone()),
        revisions: revs.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    }
}

async fn list(c: &mut Client, req: ListCommitsRequest) -> Result<Vec<GitCommit>, Status> {
    let msgs = stream(c.list_commits(req).await).await?;
    Ok(msgs.into_iter().flat_map(|m| m.commits).collect())
}

#[tokio::test]
async fn list_commits_matches_rev_list() {
    let s = TestServer::start().await;
    for (rel, f) in [
        ("r.git", s.fixture("r.git")),
        ("r256.git", s.fixture_sha256("r256.git")),
    ] {
        let repo = s.repo(rel);
        let mut c = client(&s);
        let dangling = f.git(&["commit-tree", "main^{tree}", "-p", "main", "-m", "dangling"]);
        let dangling = dangling.trim();
        type Tweak = fn(&mut ListCommitsRequest);
        let cases: Vec<(Vec<&str>, Tweak, Vec<&str>)> = vec![
            (vec!["main"], |_| {}, vec![]),
            (vec!["main", "feature"], |_| {}, vec![]),
            (vec!["main", "^feature"], |_| {}, vec![]),
            (vec!["feature..main"], |_| {}, vec![]),
            (vec!["main", "--not", "feature"], |_| {}, vec![]),
            (vec!["--not", "feature", "--not", "main"], |_| {}, vec![]),
            (vec![dangling, "--not", "--all"], |_| {}, vec![]),
            (vec!["--all"], |_| {}, vec![]),
            (
                vec!["main"],
                |r| r.order = list_commits_request::Order::Topo as i32,
                vec!["--topo-order"],
            ),
            (
                vec!["main"],
                |r| r.order = list_commits_request::Order::Date as i32,
                vec!["--date-order"],
            ),
            (vec!["main"], |r| r.reverse = true, vec!["--reverse"]),
            (vec!["main"], |r| r.max_parents = 1, vec!["--max-parents=1"]),
            (
                vec!["main"],
                |r| r.first_parent = true,
                vec!["--first-parent"],
            ),
            (
                vec!["main", "feature"],
                |r| r.disable_walk = true,
                vec!["--no-walk"],
            ),
            (vec!["main"], |r| r.skip = 2, vec!["--skip=2"]),
            (
                vec!["main"],
                |r| r.author = b"Ada".to_vec(),
                vec!["--author=Ada"],
            ),
            (
                vec!["main"],
                |r| r.author = b"ada lovelace".to_vec(),
                vec!["--author=ada lovelace"],
            ),
            (
                vec!["main"],
                |r| {
                    r.author = b"ada lovelace".to_vec();
                    r.ignore_case = true;
                },
                vec!["--author=ada lovelace", "--regexp-ignore-case"],
            ),
            (
                vec!["main"],
                |r| r.commit_message_patterns = vec![b"^c2".to_vec(), b"feature$".to_vec()],
                vec!["--grep=^c2", "--grep=feature$"],
            ),
            (
                vec!["main"],
                |r| r.paths = vec![b"src/lib.rs".to_vec()],
                vec!["--", "src/lib.rs"],
            ),
            (
                vec!["main"],
                |r| r.paths = vec![b"docs/a b.txt".to_vec()],
                vec!["--", "docs/a b.txt"],
            ),
            (
                vec!["main"],
                |r| r.paths = vec![b"*.txt".to_vec()],
                vec!["--", "*.txt"],
            ),
            (
                vec!["main"],
                |r| {
                    r.after = Some(prost_types::Timestamp {
                        seconds: 1700000101,
                        nanos: 0,
                    })
                },
                vec!["--after=@1700000101"],
            ),
            (
                vec!["main"],
                |r| {
                    r.before = Some(prost_types::Timestamp {
                        seconds: 1700000101,
                        nanos: 0,
                    })
                },
                vec!["--before=@1700000101"],
            ),
        ];
        for (revs, tweak, flags) in cases {
            let mut req = list_req(&repo, &revs);
            tweak(&mut req);
            let got = ids(&list(&mut c, req)
                .await
                .unwrap_or_else(|e| panic!("{revs:?} {flags:?}: {e:?}")));
            let mut args = vec!["rev-list"];
            let (opts, paths) = match flags.iter().position(|f| *f == "--") {
                Some(i) => (&flags[..i], &flags[i..]),
                None => (&flags[..], &[][..]),
            };
            args.extend(opts);
            args.extend(&revs);
            args.extend(paths);
            let want = lines(&f.git(&args));
            assert_eq!(got, want, "{rel} {revs:?} {flags:?}");
        }
        // Literal pathspecs: no file is named "*.txt".
        let mut req = list_req(&repo, &["main"]);
        req.paths = vec![b"*.txt".to_vec()];
        req.global_options = Some(GlobalOptions {
            literal_pathspecs: true,
        });
        let want = lines(&f.git(&["--literal-pathspecs", "rev-list", "main", "--", "*.txt"]));
        assert_eq!(ids(&list(&mut c, req).await.unwrap()), want);
        assert!(want.is_empty());

        // The walk for new commits finds exactly the dangling one; the list is not empty
        // by accident elsewhere.
        let got = ids(
            &list(&mut c, list_req(&repo, &[dangling, "--not", "--all"]))
                .await
                .unwrap(),
        );
        assert_eq!(got, [dangling.to_string()]);
        assert_eq!(
            list(&mut c, list_req(&repo, &["main"]))
                .await
                .unwrap()
                .len(),
            5
        );

        // Full commits, as FindCommit returns them (without trailers).
        let all = list(&mut c, list_req(&repo, &["main"])).await.unwrap();
        for commit in &all {
            assert_eq!(commit, &expected_commit(&f, &commit.id));
        }
    }
}

#[tokio::test]
async fn list_commits_pagination() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let repo = s.repo("r.git");
    let mut c = client(&s);
    let all = lines(&f.git(&["rev-list", "main"]));
    let page = |token: &str, limit: i32| {
        let mut r = list_req(&repo, &["main"]);
        r.pagination_params = Some(PaginationParameter {
            page_token: token.into(),
            limit,
        });
        r
    };
    assert_eq!(ids(&list(&mut c, page("", 2)).await.unwrap()), all[..2]);
    assert_eq!(
        ids(&list(&mut c, page(&all[1], 2)).await.unwrap()),
        all[2..4]
    );
    assert_eq!(
        ids(&list(&mut c, page(&all[3], 2)).await.unwrap()),
        all[4..]
    );
    assert_eq!(
        ids(&list(&mut c, page(&all[4], 2)).await.unwrap()),
        Vec::<String>::new()
    );
    // A limit of zero (or below) means no limit; an unknown token yields nothing.
    assert_eq!(ids(&list(&mut c, page("", 0)).await.unwrap()), all);
    assert_eq!(ids(&list(&mut c, page("", -1)).await.unwrap()), all);
    assert_eq!(
        ids(&list(&mut c, page("deadbeef", 10)).await.unwrap()),
        Vec::<String>::new()
    );

    // Many commits come back in several messages (of about 1 MiB), in order.
    let body = format!("many\n\n{}", "body ".repeat(2200));
    for _ in 0..110 {
        f.git(&["commit", "--quiet", "--allow-empty", "-m", &body]);
    }
    let msgs = stream(c.list_commits(list_req(&repo, &["main"])).await)
        .await
        .unwrap();
    assert!(msgs.len() > 1, "{} messages", msgs.len());
    let got: Vec<String> = msgs.iter().flat_map(|m| ids(&m.commits)).collect();
    assert_eq!(got, lines(&f.git(&["rev-list", "main"])));
}

#[tokio::test]
async fn list_commits_bad_inputs() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let mut c = client(&s);
    for (repo, code) in bad_repos(&s) {
        let mut req = list_req(&s.repo("r.git"), &["main"]);
        req.repository = repo.clone();
        let err = list(&mut c, req).await.unwrap_err();
        assert_eq!(err.code(), code, "{repo:?}: {err:?}");
    }
    let repo = s.repo("r.git");
    let err = list(&mut c, list_req(&repo, &[])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("missing revisions"),
        "{}",
        err.message()
    );
    for bad in [
        vec!["-main"],
        vec!["main", "--output=/tmp/x"],
        vec!["--stdin"],
        vec!["main", ""],
        vec!["a b"],
        vec!["main\n--all"],
    ] {
        let err = list(&mut c, list_req(&repo, &bad)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
    }
    let mut req = list_req(&repo, &["main"]);
    req.order = 42;
    assert_eq!(
        list(&mut c, req).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    // An unknown revision fails the walk, as in Gitaly.
    let err = list(&mut c, list_req(&repo, &["main", "nope"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err:?}");
}

#[tokio::test]
async fn list_commits_by_oid_skips_unknown() {
    let s = TestServer::start().await;
    for (rel, f) in [
        ("r.git", s.fixture("r.git")),
        ("r256.git", s.fixture_sha256("r256.git")),
    ] {
        let mut c = client(&s);
        let c1 = f.rev_parse("main~2^1");
        let c4 = f.rev_parse("main");
        let tag = f.rev_parse("v1.0");
        let tree = f.rev_parse("main^{tree}");
        let oid = vec![
            c1.clone(),
            "nope".into(),
            "0".repeat(c1.len()),
            c4[..12].to_string(),
            tree,
            tag,
            String::new(),
            "a\nb".into(),
            c1.clone(),
        ];
        let msgs = stream(
            c.list_commits_by_oid(ListCommitsByOidRequest {
                repository: Some(s.repo(rel)),
                oid,
            })
            .await,
        )
        .await
        .unwrap();
        let commits: Vec<GitCommit> = msgs.into_iter().flat_map(|m| m.commits).collect();
        assert_eq!(
            ids(&commits),
            [c1.clone(), c4, f.rev_parse("v1.0^{commit}"), c1],
            "{rel}"
        );
        assert_eq!(commits[0], expected_commit(&f, &commits[0].id));
        // Nothing asked, nothing sent.
        let msgs = stream(
            c.list_commits_by_oid(ListCommitsByOidRequest {
                repository: Some(s.repo(rel)),
                oid: vec![],
            })
            .await,
        )
        .await
        .unwrap();
        assert!(msgs.is_empty());
    }
    let mut c = client(&s);
    for (repo, code) in bad_repos(&s) {
        let err = stream(
            c.list_commits_by_oid(ListCommitsByOidRequest {
                repository: repo.clone(),
                oid: vec!["main".into()],
            })
            .await,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), code, "{repo:?}: {err:?}");
    }
}

#[tokio::test]
async fn commit_is_ancestor_matches_merge_base() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let missing = "1".repeat(40);
    let pairs = [
        ("main~3", "main"),
        ("main", "main~3"),
        ("feature", "main"),
        ("main", "feature"),
        ("main", "main"),
        ("v1.0", "main"),
        (missing.as_str(), "main"),
        ("main", missing.as_str()),
        ("nope", "main"),
    ];
    for (a, b) in pairs {
        let got = c
            .commit_is_ancestor(CommitIsAncestorRequest {
                repository: Some(s.repo("r.git")),
                ancestor_id: a.into(),
                child_id: b.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .value;
        let want = git_output(&f.path, &["merge-base", "--is-ancestor", a, b])
            .status
            .success();
        assert_eq!(got, want, "{a} {b}");
    }
    for (a, b) in [
        ("", "main"),
        ("main", ""),
        ("-main", "main"),
        ("main", "--output=/tmp/x"),
    ] {
        let err = c
            .commit_is_ancestor(CommitIsAncestorRequest {
                repository: Some(s.repo("r.git")),
                ancestor_id: a.into(),
                child_id: b.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{a:?} {b:?}");
    }
    for (repo, code) in bad_repos(&s) {
        let err = c
            .commit_is_ancestor(CommitIsAncestorRequest {
                repository: repo.clone(),
                ancestor_id: "main~1".into(),
                child_id: "main".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{repo:?}");
    }
}

#[allow(deprecated)]
fn count_req(repo: &Repository, revision: &str) -> CountCommitsRequest {
    CountCommitsRequest {
        repository: Some(repo.clone()),
        revision: revision.as_bytes().to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
#[allow(deprecated)]
async fn count_commits_matches_rev_list() {
    let s = TestServer::start().await;
    for (rel, f) in [
        ("r.git", s.fixture("r.git")),
        ("r256.git", s.fixture_sha256("r256.git")),
    ] {
        let repo = s.repo(rel);
        let c = client(&s);
        let count = |req: CountCommitsRequest| {
            let mut c = c.clone();
            async move { c.count_commits(req).await.map(|r| r.into_inner().count) }
        };
        let git_count = |args: &[&str]| -> i32 {
            let mut a = vec!["rev-list", "--count"];
            a.extend(args);
            f.git(&a).trim().parse().unwrap()
        };
        assert_eq!(
            count(count_req(&repo, "main")).await.unwrap(),
            git_count(&["main"])
        );
        assert_eq!(
            count(count_req(&repo, "feature")).await.unwrap(),
            git_count(&["feature"])
        );
        assert_eq!(
            count(count_req(&repo, "feature..main")).await.unwrap(),
            git_count(&["feature..main"])
        );
        let mut r = count_req(&repo, "");
        r.all = true;
        f.git(&["commit-tree", "main^{tree}", "-m", "unreferenced"]);
        assert_eq!(count(r).await.unwrap(), git_count(&["--all"]));
        let mut r = count_req(&repo, "main");
        r.path = b"src/lib.rs".to_vec();
        assert_eq!(
            count(r).await.unwrap(),
            git_count(&["main", "--", "src/lib.rs"])
        );
        let mut r = count_req(&repo, "main");
        r.path = b"docs/a b.txt".to_vec();
        assert_eq!(count(r).await.unwrap(), 1);
        let mut r = count_req(&repo, "main");
        r.max_count = 2;
        assert_eq!(count(r).await.unwrap(), 2);
        let mut r = count_req(&repo, "main");
        r.first_parent = true;
        assert_eq!(
            count(r).await.unwrap(),
            git_count(&["--first-parent", "main"])
        );
        let mut r = count_req(&repo, "main");
        r.after = Some(prost_types::Timestamp {
            seconds: 1700000101,
            nanos: 0,
        });
        assert_eq!(count(r).await.unwrap(), 0);
        let mut r = count_req(&repo, "main");
        r.before = Some(prost_types::Timestamp {
            seconds: 1700000101,
            nanos: 0,
        });
        assert_eq!(count(r).await.unwrap(), git_count(&["main"]));
        // `revisions` supersedes revision/all and takes --not/--all in place.
        let mut r = count_req(&repo, "");
        r.revisions = vec![b"main".to_vec(), b"--not".to_vec(), b"feature".to_vec()];
        assert_eq!(
            count(r).await.unwrap(),
            git_count(&["main", "--not", "feature"])
        );
        let mut r = count_req(&repo, "");
        r.revisions = vec![b"main".to_vec(), b"--not".to_vec(), b"--all".to_vec()];
        assert_eq!(count(r).await.unwrap(), 0);
        // Unknown revisions count nothing (as Gitaly).
        assert_eq!(count(count_req(&repo, "nope")).await.unwrap(), 0);
    }
    let repo = s.repo("r.git");
    let mut c = client(&s);
    for bad in [
        count_req(&repo, ""),
        count_req(&repo, "-main"),
        count_req(&repo, "--all"),
        {
            let mut r = count_req(&repo, "");
            r.revisions = vec![b"--output=/tmp/x".to_vec()];
            r
        },
    ] {
        let err = c.count_commits(bad.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
    }
    for (r, code) in bad_repos(&s) {
        let mut req = count_req(&repo, "main");
        req.repository = r.clone();
        assert_eq!(
            c.count_commits(req).await.unwrap_err().code(),
            code,
            "{r:?}"
        );
    }
}

fn entry_req(repo: &Repository, rev: &str, path: &str) -> TreeEntryRequest {
    TreeEntryRequest {
        repository: Some(repo.clone()),
        revision: rev.as_bytes().to_vec(),
        path: path.as_bytes().to_vec(),
        limit: 0,
        max_size: 0,
    }
}

async fn tree_entry(
    c: &mut Client,
    req: TreeEntryRequest,
) -> Result<Vec<TreeEntryResponse>, Status> {
    stream(c.tree_entry(req).await).await
}

#[tokio::test]
async fn tree_entry_matches_git() {
    let s = TestServer::start().await;
    for (rel, f) in [
        ("r.git", s.fixture("r.git")),
        ("r256.git", s.fixture_sha256("r256.git")),
    ] {
        let repo = s.repo(rel);
        let mut c = client(&s);
        for (rev, path) in [
            ("main", "README.md"),
            ("main", "docs/a b.txt"),
            ("main", "src/lib.rs"),
            ("main~2", "README.md"),
            ("v1.0", "src/lib.rs"),
            ("feature", "feature.txt"),
        ] {
            let msgs = tree_entry(&mut c, entry_req(&repo, rev, path))
                .await
                .unwrap();
            assert_eq!(msgs.len(), 1, "{rev}:{path}");
            let m = &msgs[0];
            let spec = format!("{rev}:{path}");
            let data = f.git(&["cat-file", "-p", &spec]);
            assert_eq!(m.r#type, tree_entry_response::ObjectType::Blob as i32);
            assert_eq!(m.oid, f.rev_parse(&spec), "{spec}");
            assert_eq!(m.size, data.len() as i64);
            assert_eq!(m.mode, 0o100644);
            assert_eq!(m.data, data.as_bytes(), "{spec}");
        }
        // Trees: type, oid, size, mode and no data; a trailing slash is ignored.
        for path in ["src", "src/", "docs"] {
            let msgs = tree_entry(&mut c, entry_req(&repo, "main", path))
                .await
                .unwrap();
            let spec = format!("main:{}", path.trim_end_matches('/'));
            assert_eq!(
                msgs,
                [TreeEntryResponse {
                    r#type: tree_entry_response::ObjectType::Tree as i32,
                    oid: f.rev_parse(&spec),
                    size: f.git(&["cat-file", "-s", &spec]).trim().parse().unwrap(),
                    mode: 0o40000,
                    data: vec![],
                }],
                "{path}"
            );
        }
        // limit truncates the data but not the size; max_size refuses bigger blobs.
        let mut req = entry_req(&repo, "main", "README.md");
        req.limit = 3;
        let msgs = tree_entry(&mut c, req).await.unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].data, b"hel");
        assert_eq!(msgs[0].size, 12);
        let mut req = entry_req(&repo, "main", "README.md");
        req.limit = 100;
        assert_eq!(
            tree_entry(&mut c, req).await.unwrap()[0].data,
            b"hello\nworld\n"
        );
        let mut req = entry_req(&repo, "main", "README.md");
        req.max_size = 12;
        assert_eq!(
            tree_entry(&mut c, req).await.unwrap()[0].data,
            b"hello\nworld\n"
        );
        let mut req = entry_req(&repo, "main", "README.md");
        req.max_size = 5;
        let err = tree_entry(&mut c, req).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(
            err.message()
                .contains("object size (12) is bigger than the maximum allowed size (5)"),
            "{}",
            err.message()
        );

        // Missing paths and revisions, and paths git would resolve relative to a work tree,
        // are NOT_FOUND.
        for (rev, path) in [
            ("main", "nope"),
            ("main", "docs/a b"),
            ("main", "docs/nope.txt"),
            ("main", "README.md/x"),
            ("main~3", "docs/a b.txt"),
            ("nope", "README.md"),
            ("main", "."),
            ("main", "/"),
            ("main", "./README.md"),
            ("main", "../README.md"),
            ("main", "src/../README.md"),
            ("main", "/README.md"),
            ("main", "src//lib.rs"),
            ("main", "//"),
        ] {
            let err = tree_entry(&mut c, entry_req(&repo, rev, path))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::NotFound, "{rev}:{path}: {err:?}");
            assert!(
                err.message().contains("tree entry not found"),
                "{}",
                err.message()
            );
        }
    }
}

#[tokio::test]
async fn tree_entry_modes_and_submodules() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let blob = f.rev_parse("main:README.md");
    let c1 = f.rev_parse("main~3");
    f.git(&["read-tree", "main"]);
    for info in [
        format!("100755,{blob},run.sh"),
        format!("120000,{blob},link"),
        format!("160000,{c1},sub"),
    ] {
        f.git(&["update-index", "--add", "--cacheinfo", &info]);
    }
    f.git(&["commit", "--quiet", "-m", "modes"]);
    let repo = s.repo("r.git");
    let mut c = client(&s);
    let one = |path: &str| entry_req(&repo, "main", path);
    let run = tree_entry(&mut c, one("run.sh")).await.unwrap();
    assert_eq!(
        (run[0].mode, run[0].r#type),
        (0o100755, tree_entry_response::ObjectType::Blob as i32)
    );
    let link = tree_entry(&mut c, one("link")).await.unwrap();
    assert_eq!(
        (link[0].mode, link[0].r#type),
        (0o120000, tree_entry_response::ObjectType::Blob as i32)
    );
    assert_eq!(link[0].data, b"hello\nworld\n");
    let sub = tree_entry(&mut c, one("sub")).await.unwrap();
    assert_eq!(
        sub,
        [TreeEntryResponse {
            r#type: tree_entry_response::ObjectType::Commit as i32,
            oid: c1,
            size: 0,
            mode: 0o160000,
            data: vec![],
        }]
    );
    // The submodule shows as a COMMIT entry in listings too.
    let entries = tree_entries(&mut c, tree_req(&repo, "main", "."))
        .await
        .unwrap();
    let sub = entries.iter().find(|e| e.path == b"sub").unwrap();
    assert_eq!(
        (sub.r#type, sub.mode),
        (tree_entry::EntryType::Commit as i32, 0o160000)
    );
}

#[tokio::test]
async fn tree_entry_streams_large_blobs() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let content: String = (0..3_000_000u32)
        .map(|i| {
            if i % 101 == 100 {
                '\n'
            } else {
                (b'a' + ((i.wrapping_mul(7919) ^ (i >> 7)) % 26) as u8) as char
            }
        })
        .collect();
    f.write("big/big file.bin", &content);
    f.commit("big blob");
    let want = f.git(&["cat-file", "-p", "main:big/big file.bin"]);
    assert_eq!(want.len(), content.len());
    let repo = s.repo("r.git");
    let mut c = client(&s);
    let msgs = tree_entry(&mut c, entry_req(&repo, "main", "big/big file.bin"))
        .await
        .unwrap();
    assert!(msgs.len() > 1, "one message for 3 MB");
    assert_eq!(msgs[0].oid, f.rev_parse("main:big/big file.bin"));
    assert_eq!(msgs[0].size, content.len() as i64);
    assert_eq!(msgs[0].mode, 0o100644);
    for m in &msgs[1..] {
        assert_eq!(
            (m.oid.as_str(), m.size, m.mode),
            ("", 0, 0),
            "only the first message has metadata"
        );
    }
    let data: Vec<u8> = msgs.iter().flat_map(|m| m.data.iter().copied()).collect();
    assert!(data == want.as_bytes(), "streamed data differs from git's");

    // A limit inside a large blob stops early; the pool stays usable afterwards.
    let mut req = entry_req(&repo, "main", "big/big file.bin");
    req.limit = 100_000;
    let msgs = tree_entry(&mut c, req).await.unwrap();
    let data: Vec<u8> = msgs.iter().flat_map(|m| m.data.iter().copied()).collect();
    assert_eq!(data, want.as_bytes()[..100_000]);
    let again = tree_entry(&mut c, entry_req(&repo, "main", "README.md"))
        .await
        .unwrap();
    assert_eq!(again[0].data, b"hello\nworld\n");

    // Dropping the stream mid-blob is fine too.
    let mut st = c
        .tree_entry(entry_req(&repo, "main", "big/big file.bin"))
        .await
        .unwrap()
        .into_inner();
    st.message().await.unwrap().unwrap();
    drop(st);
    let again = tree_entry(&mut c, entry_req(&repo, "main", "src/lib.rs"))
        .await
        .unwrap();
    assert_eq!(again[0].data, b"pub fn answer() -> u32 {\n    42\n}\n");
}

#[tokio::test]
async fn tree_entry_bad_inputs() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let repo = s.repo("r.git");
    let mut c = client(&s);
    for (r, code) in bad_repos(&s) {
        let mut req = entry_req(&repo, "main", "README.md");
        req.repository = r.clone();
        assert_eq!(
            tree_entry(&mut c, req).await.unwrap_err().code(),
            code,
            "{r:?}"
        );
    }
    let mut neg_limit = entry_req(&repo, "main", "README.md");
    neg_limit.limit = -1;
    let mut neg_max = entry_req(&repo, "main", "README.md");
    neg_max.max_size = -1;
    for (req, msg) in [
        (entry_req(&repo, "", "README.md"), "empty revision"),
        (
            entry_req(&repo, "-main", "README.md"),
            "revision can't start with '-'",
        ),
        (
            entry_req(&repo, "--output=/tmp/x", "README.md"),
            "revision can't start with '-'",
        ),
        (entry_req(&repo, "main", ""), "empty Path"),
        (entry_req(&repo, "main", "a\nb"), "path"),
        (neg_limit, "negative Limit"),
        (neg_max, "negative MaxSize"),
    ] {
        let err = tree_entry(&mut c, req.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{req:?}");
        assert!(err.message().contains(msg), "{}", err.message());
    }
}

fn tree_req(repo: &Repository, rev: &str, path: &str) -> GetTreeEntriesRequest {
    GetTreeEntriesRequest {
        repository: Some(repo.clone()),
        revision: rev.as_bytes().to_vec(),
        path: path.as_bytes().to_vec(),
        ..Default::default()
    }
}

async fn tree_entries(
    c: &mut Client,
    req: GetTreeEntriesRequest,
) -> Result<Vec<TreeEntry>, Status> {
    let msgs = stream(c.get_tree_entries(req).await).await?;
    Ok(msgs.into_iter().flat_map(|m| m.entries).collect())
}

/// `git ls-tree -z <args>` as TreeEntry messages (flat paths left empty).
fn ls_tree(f: &Fixture, rev: &str, args: &[&str]) -> Vec<TreeEntry> {
    let mut a = vec!["ls-tree", "-z"];
    a.extend(args);
    f.git(&a)
        .split('\0')
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (head, path) = r.split_once('\t').unwrap();
            let v: Vec<&str> = head.split(' ').collect();
            TreeEntry {
                oid: v[2].into(),
                path: path.into(),
                r#type: match v[1] {
                    "tree" => tree_entry::EntryType::Tree,
                    "commit" => tree_entry::EntryType::Commit,
                    _ => tree_entry::EntryType::Blob,
                } as i32,
                mode: i32::from_str_radix(v[0], 8).unwrap(),
                commit_oid: rev.into(),
                flat_path: vec![],
            }
        })
        .collect()
}

fn paths(entries: &[TreeEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect()
}

#[tokio::test]
async fn get_tree_entries_matches_ls_tree() {
    let s = TestServer::start().await;
    for (rel, f) in [
        ("r.git", s.fixture("r.git")),
        ("r256.git", s.fixture_sha256("r256.git")),
    ] {
        f.write("deep/a/b/c.txt", "deep\n");
        f.write("deep2/x/y.txt", "y\n");
        f.write("deep2/x/z.txt", "z\n");
        f.write("a.txt", "a\n");
        f.write("a/b.txt", "b\n");
        f.commit("nesting");
        let repo = s.repo(rel);
        let mut c = client(&s);
        for rev in ["main", "v1.0"] {
            // Non-recursive: git's order, flat paths skip single-directory chains.
            for (path, args) in [
                (".", vec![rev]),
                ("src", vec![rev, "src/"]),
                ("docs/", vec![rev, "docs/"]),
            ] {
                if rev == "v1.0" && path == "docs/" {
                    continue;
                }
                let mut want = ls_tree(&f, rev, &args);
                for e in &mut want {
                    e.flat_path = match e.path.as_slice() {
                        b"deep" => b"deep/a/b".to_vec(),
                        b"deep2" => b"deep2/x".to_vec(),
                        p => p.to_vec(),
                    };
                }
                let got = tree_entries(&mut c, tree_req(&repo, rev, path))
                    .await
                    .unwrap();
                assert_eq!(got, want, "{rel} {rev} {path}");
                // skip_flat_paths leaves them empty.
                let mut req = tree_req(&repo, rev, path);
                req.skip_flat_paths = true;
                let got = tree_entries(&mut c, req).await.unwrap();
                assert!(got.iter().all(|e| e.flat_path.is_empty()));
                assert_eq!(got.len(), want.len());
            }
            // Recursive: trees before their contents, as `ls-tree -r -t`; no flat paths.
            for (path, args) in [
                (".", vec!["-r", "-t", rev]),
                ("docs", vec!["-r", "-t", rev, "docs/"]),
            ] {
                if rev == "v1.0" && path == "docs" {
                    continue;
                }
                // `ls-tree -t <rev> docs/` shows docs itself too; GetTreeEntries lists below it.
                let want: Vec<TreeEntry> = ls_tree(&f, rev, &args)
                    .into_iter()
                    .filter(|e| path == "." || e.path != path.as_bytes())
                    .collect();
                let mut req = tree_req(&repo, rev, path);
                req.recursive = true;
                assert_eq!(
                    tree_entries(&mut c, req).await.unwrap(),
                    want,
                    "{rel} {rev} {path} recursive"
                );
            }
        }
        let docs = tree_entries(&mut c, tree_req(&repo, "main", "docs"))
            .await
            .unwrap();
        assert_eq!(paths(&docs), ["docs/a b.txt"]);
        assert_eq!(docs[0].commit_oid, "main");

        // Sorting: trees first (stable), or by path bytes.
        let mut req = tree_req(&repo, "main", ".");
        req.sort = get_tree_entries_request::SortBy::TreesFirst as i32;
        let got = paths(&tree_entries(&mut c, req).await.unwrap());
        assert_eq!(
            got,
            [
                "a",
                "deep",
                "deep2",
                "docs",
                "src",
                "README.md",
                "a.txt",
                "feature.txt"
            ]
        );
        let mut req = tree_req(&repo, "main", ".");
        req.sort = get_tree_entries_request::SortBy::Filesystem as i32;
        req.recursive = true;
        let got = paths(&tree_entries(&mut c, req).await.unwrap());
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted);
        assert_eq!(&got[..3], ["README.md", "a", "a.txt"]);

        // A path naming a blob lists nothing.
        for recursive in [false, true] {
            let mut req = tree_req(&repo, "main", "README.md");
            req.recursive = recursive;
            assert_eq!(
                stream(c.get_tree_entries(req).await).await.unwrap().len(),
                0
            );
        }
    }
}

#[tokio::test]
async fn get_tree_entries_pagination() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let repo = s.repo("r.git");
    let mut c = client(&s);
    let all = tree_entries(&mut c, tree_req(&repo, "main", "."))
        .await
        .unwrap();
    assert_eq!(paths(&all), ["README.md", "docs", "feature.txt", "src"]);
    let page = |token: &str, limit: i32| {
        let mut r = tree_req(&repo, "main", ".");
        r.pagination_params = Some(PaginationParameter {
            page_token: token.into(),
            limit,
        });
        r
    };
    let msgs = stream(c.get_tree_entries(page("", 2)).await).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(paths(&msgs[0].entries), ["README.md", "docs"]);
    let cursor = msgs[0].pagination_cursor.clone().unwrap().next_cursor;
    // Gitaly's token: base64 of {"file_name":"docs"}.
    assert_eq!(cursor, "eyJmaWxlX25hbWUiOiJkb2NzIn0=");
    let msgs = stream(c.get_tree_entries(page(&cursor, 2)).await)
        .await
        .unwrap();
    assert_eq!(paths(&msgs[0].entries), ["feature.txt", "src"]);
    assert_eq!(msgs[0].pagination_cursor.clone().unwrap().next_cursor, "");
    // Old-style tokens are object ids.
    let readme = f.rev_parse("main:README.md");
    assert_eq!(
        paths(&tree_entries(&mut c, page(&readme, -1)).await.unwrap()),
        ["docs", "feature.txt", "src"]
    );
    // Zero means nothing; a limit past the end is the rest without a cursor.
    assert!(stream(c.get_tree_entries(page("", 0)).await)
        .await
        .unwrap()
        .is_empty());
    let msgs = stream(c.get_tree_entries(page("", 100)).await)
        .await
        .unwrap();
    assert_eq!(msgs[0].entries.len(), 4);
    assert_eq!(msgs[0].pagination_cursor.clone().unwrap().next_cursor, "");
    let err = stream(c.get_tree_entries(page("non-existent", 2)).await)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(
        err.message()
            .contains("could not find starting OID: non-existent"),
        "{}",
        err.message()
    );

    // Big listings come in several messages; only the first carries the cursor.
    for i in 0..2500 {
        f.write(&format!("many/f{i:04}"), "");
    }
    f.commit("many files");
    let msgs = stream(c.get_tree_entries(tree_req(&repo, "main", "many")).await)
        .await
        .unwrap();
    assert!(msgs.len() > 1);
    assert!(msgs[0].pagination_cursor.is_some());
    assert!(msgs[1..].iter().all(|m| m.pagination_cursor.is_none()));
    assert_eq!(msgs.iter().map(|m| m.entries.len()).sum::<usize>(), 2500);
}

#[tokio::test]
async fn get_tree_entries_bad_inputs() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let repo = s.repo("r.git");
    let mut c = client(&s);
    for (r, code) in bad_repos(&s) {
        let mut req = tree_req(&repo, "main", ".");
        req.repository = r.clone();
        assert_eq!(
            tree_entries(&mut c, req).await.unwrap_err().code(),
            code,
            "{r:?}"
        );
    }
    for (req, msg) in [
        (tree_req(&repo, "", "."), "empty revision"),
        (
            tree_req(&repo, "--output=/tmp/x", "."),
            "revision can't start with '-'",
        ),
        (tree_req(&repo, "main", ""), "empty path"),
    ] {
        let err = tree_entries(&mut c, req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(msg), "{}", err.message());
    }
    // Missing revision or path: INVALID_ARGUMENT, or NOT_FOUND when recursive (as Gitaly).
    for (rev, path) in [
        ("nope", "."),
        ("main", "nope"),
        ("main", "./.."),
        ("main", "./src/.."),
        ("main", "/src"),
    ] {
        let err = tree_entries(&mut c, tree_req(&repo, rev, path))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{rev} {path}");
        assert!(
            err.message().contains("invalid revision or path"),
            "{}",
            err.message()
        );
        let mut req = tree_req(&repo, rev, path);
        req.recursive = true;
        let err = tree_entries(&mut c, req).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{rev} {path} recursive");
    }
}

async fn last_commit(
    c: &mut Client,
    repo: &Repository,
    rev: &str,
    path: &str,
    literal: bool,
) -> Result<Option<String>, Status> {
    c.last_commit_for_path(LastCommitForPathRequest {
        repository: Some(repo.clone()),
        revision: rev.as_bytes().to_vec(),
        path: path.as_bytes().to_vec(),
        literal_pathspec: literal,
        global_options: None,
    })
    .await
    .map(|r| r.into_inner().commit.map(|c| c.id))
}

#[tokio::test]
async fn last_commit_for_path_matches_git_log() {
    let s = TestServer::start().await;
    for (rel, f) in [
        ("r.git", s.fixture("r.git")),
        ("r256.git", s.fixture_sha256("r256.git")),
    ] {
        f.write(":wq", "vim\n");
        f.commit("odd name");
        let repo = s.repo(rel);
        let mut c = client(&s);
        for rev in ["main", "main~1", "feature", "v1.0"] {
            for path in [
                "README.md",
                "src",
                "src/lib.rs",
                "docs/a b.txt",
                "feature.txt",
                "",
                "/",
                "*.md",
                "nope",
            ] {
                let spec = if path.is_empty() || path == "/" {
                    "."
                } else {
                    path
                };
                let want = f
                    .git(&["log", "-1", "--format=%H", rev, "--", spec])
                    .trim()
                    .to_string();
                let got = last_commit(&mut c, &repo, rev, path, false).await.unwrap();
                assert_eq!(
                    got,
                    (!want.is_empty()).then_some(want),
                    "{rel} {rev} {path:?}"
                );
            }
        }
        // The full commit is returned.
        let resp = c
            .last_commit_for_path(LastCommitForPathRequest {
                repository: Some(repo.clone()),
                revision: b"main".to_vec(),
                path: b"src/lib.rs".to_vec(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let commit = resp.commit.unwrap();
        assert_eq!(commit, expected_commit(&f, &commit.id));
        assert_eq!(commit.subject, b"c2: add lib");

        // Literal pathspecs: ":wq" is a file, "*.md" is not.
        let odd = f.rev_parse("main");
        assert_eq!(
            last_commit(&mut c, &repo, "main", ":wq", true)
                .await
                .unwrap(),
            Some(odd)
        );
        assert_eq!(
            last_commit(&mut c, &repo, "main", ":wq", false)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            last_commit(&mut c, &repo, "main", "*.md", true)
                .await
                .unwrap(),
            None
        );
        let resp = c
            .last_commit_for_path(LastCommitForPathRequest {
                repository: Some(repo.clone()),
                revision: b"main".to_vec(),
                path: b"*.md".to_vec(),
                literal_pathspec: false,
                global_options: Some(GlobalOptions {
                    literal_pathspecs: true,
                }),
            })
            .await
            .unwrap();
        assert_eq!(resp.into_inner().commit, None);

        // Unknown revisions find nothing.
        assert_eq!(
            last_commit(&mut c, &repo, "nope", "README.md", false)
                .await
                .unwrap(),
            None
        );
    }
    let repo = s.repo("r.git");
    let mut c = client(&s);
    for (rev, path) in [
        ("", "README.md"),
        ("-main", "README.md"),
        ("--output=/tmp/x", ""),
        ("main", "../x"),
        ("main", "/etc/passwd"),
    ] {
        let err = last_commit(&mut c, &repo, rev, path, false)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{rev} {path}: {err:?}");
    }
    for (r, code) in bad_repos(&s) {
        let err = c
            .last_commit_for_path(LastCommitForPathRequest {
                repository: r.clone(),
                revision: b"main".to_vec(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{r:?}");
    }
}

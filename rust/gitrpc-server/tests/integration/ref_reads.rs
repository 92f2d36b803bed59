//! RefService reads of step 11 against git's own answers: branch and tag names containing a
//! commit, FindRefsByOID, GetTagMessages, GetTagSignatures, FindAllRemoteBranches.

use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use crate::commit_history::{bad_repos, failure, stream, wait_no_git};
use crate::common::*;

type Client = RefServiceClient<tonic::transport::Channel>;

fn client(s: &TestServer) -> Client {
    RefServiceClient::new(s.channel.clone())
}

/// `git for-each-ref --format=%(refname) <args>` with `prefix` stripped from each line.
fn git_names(f: &Fixture, args: &[&str], prefix: &str) -> Vec<Vec<u8>> {
    let mut all = vec!["for-each-ref", "--format=%(refname)"];
    all.extend_from_slice(args);
    f.git(&all)
        .lines()
        .map(|l| l.strip_prefix(prefix).unwrap_or(l).as_bytes().to_vec())
        .collect()
}

#[tokio::test]
async fn names_containing_a_commit_match_git() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    for i in 0..30 {
        f.git(&["branch", &format!("b{i:02}"), "main~1"]);
        f.git(&["tag", &format!("t{i:02}"), "main~1"]);
    }
    f.git(&["branch", "ünïcode", "feature"]);
    let mut c = client(&s);
    let c1 = f.rev_parse("main~2");
    let c4 = f.rev_parse("main");
    let f1 = f.rev_parse("feature");
    for (oid, limit) in [(&c1, 0), (&c4, 0), (&f1, 0), (&c1, 5), (&f1, 1)] {
        let mut args = vec![format!("--contains={oid}")];
        if limit > 0 {
            args.push(format!("--count={limit}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let branches: Vec<Vec<u8>> = stream(
            c.list_branch_names_containing_commit(ListBranchNamesContainingCommitRequest {
                repository: Some(s.repo("r.git")),
                commit_id: oid.clone(),
                limit,
            })
            .await,
        )
        .await
        .unwrap()
        .into_iter()
        .flat_map(|m| m.branch_names)
        .collect();
        let mut want_args = args.clone();
        want_args.push("refs/heads");
        assert_eq!(
            branches,
            git_names(&f, &want_args, "refs/heads/"),
            "{oid} {limit}"
        );
        let tags: Vec<Vec<u8>> = stream(
            c.list_tag_names_containing_commit(ListTagNamesContainingCommitRequest {
                repository: Some(s.repo("r.git")),
                commit_id: oid.clone(),
                limit,
            })
            .await,
        )
        .await
        .unwrap()
        .into_iter()
        .flat_map(|m| m.tag_names)
        .collect();
        let mut want_args = args.clone();
        want_args.push("refs/tags");
        assert_eq!(
            tags,
            git_names(&f, &want_args, "refs/tags/"),
            "{oid} {limit}"
        );
    }
    // A commit on no branch: nothing.
    f.git(&["branch", "gone", "main"]);
    f.git(&["commit-tree", "-m", "dangling", "-p", "main", "main^{tree}"]);
    let bad = |id: &str| ListBranchNamesContainingCommitRequest {
        repository: Some(s.repo("r.git")),
        commit_id: id.into(),
        limit: 0,
    };
    for (id, code, msg) in [
        (
            "invalid",
            Code::InvalidArgument,
            "invalid object ID: \"invalid\", expected length 40, got 7",
        ),
        (
            "",
            Code::InvalidArgument,
            "invalid object ID: \"\", expected length 40, got 0",
        ),
        (
            "-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            Code::InvalidArgument,
            "invalid object ID: \"-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", invalid character '-'",
        ),
        (
            "1234567890123456789012345678901234567890",
            Code::Internal,
            "exit status 129",
        ),
    ] {
        let r = stream(c.list_branch_names_containing_commit(bad(id)).await).await;
        assert_eq!(failure(r), (code, msg.to_string()), "{id}");
    }
    for (repo, code) in bad_repos(&s) {
        let mut r = bad(&c4);
        r.repository = repo;
        assert_eq!(
            failure(c.list_branch_names_containing_commit(r).await).0,
            code
        );
    }
    wait_no_git(s.dir.path(), "r.git").await;
    s.stop().await;
}

#[tokio::test]
async fn refs_by_oid_match_git() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let c4 = f.rev_parse("main");
    f.git(&["branch", "zz", "main"]);
    f.git(&["branch", "aa", "main"]);
    f.git(&["tag", "on-main", "main"]);
    f.git(&["update-ref", "refs/keep/x", "main"]);
    let mut c = client(&s);
    let req = |oid: &str, patterns: &[&str], sort: &str, limit: u32| FindRefsByOidRequest {
        repository: Some(s.repo("r.git")),
        oid: oid.into(),
        ref_patterns: patterns.iter().map(|p| p.to_string()).collect(),
        sort_field: sort.into(),
        limit,
    };
    let git_refs = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["for-each-ref", "--format=%(refname)"];
        all.extend_from_slice(args);
        f.git(&all).lines().map(str::to_string).collect()
    };
    let points = format!("--points-at={c4}");
    let got = c.find_refs_by_oid(req(&c4, &[], "", 0)).await.unwrap();
    assert_eq!(
        got.into_inner().refs,
        git_refs(&[&points, "refs/tags/", "refs/heads/"])
    );
    assert!(git_refs(&[&points, "refs/tags/", "refs/heads/"]).len() >= 4);
    let got = c
        .find_refs_by_oid(req(
            &c4[..10],
            &["refs/keep/", "refs/heads/"],
            "-refname",
            2,
        ))
        .await
        .unwrap();
    assert_eq!(
        got.into_inner().refs,
        git_refs(&[
            &points,
            "--sort=-refname",
            "--count=2",
            "refs/keep/",
            "refs/heads/"
        ])
    );
    // An annotated tag is pointed at by its ref.
    let tag = f.rev_parse("refs/tags/v1.0");
    let got = c.find_refs_by_oid(req(&tag, &[], "", 0)).await.unwrap();
    assert_eq!(got.into_inner().refs, ["refs/tags/v1.0"]);
    // Unknown but well formed: nothing.
    let none = c
        .find_refs_by_oid(req("1234567890123456789012345678901234567890", &[], "", 0))
        .await
        .unwrap();
    assert!(none.into_inner().refs.is_empty());
    for (r, code, msg) in [
        (req("", &[], "", 0), Code::InvalidArgument, "empty Oid"),
        (
            req("nosuchname", &[], "", 0),
            Code::InvalidArgument,
            "for-each-ref pipeline command: exit status 129",
        ),
        (
            req(&c4, &[], "nosuchfield", 0),
            Code::Internal,
            "for-each-ref pipeline command: exit status 128",
        ),
    ] {
        assert_eq!(
            failure(c.find_refs_by_oid(r).await),
            (code, msg.to_string())
        );
    }
    for (repo, code) in bad_repos(&s) {
        let mut r = req(&c4, &[], "", 0);
        r.repository = repo;
        assert_eq!(failure(c.find_refs_by_oid(r).await).0, code);
    }
    s.stop().await;
}

#[tokio::test]
async fn tag_messages_are_whole_and_chunked() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let long = "x".repeat(300 * 1024);
    let msg_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(msg_file.path(), format!("long\n\n{long}\n")).unwrap();
    f.git(&[
        "tag",
        "-a",
        "long",
        "-F",
        msg_file.path().to_str().unwrap(),
        "main",
    ]);
    let v1 = f.rev_parse("refs/tags/v1.0");
    let lt = f.rev_parse("refs/tags/long");
    let mut c = client(&s);
    let msgs = stream(
        c.get_tag_messages(GetTagMessagesRequest {
            repository: Some(s.repo("r.git")),
            tag_ids: vec![v1.clone(), lt.clone()],
        })
        .await,
    )
    .await
    .unwrap();
    let mut got: Vec<(String, Vec<u8>)> = Vec::new();
    for m in &msgs {
        if !m.tag_id.is_empty() {
            assert!(m.message.is_empty());
            got.push((m.tag_id.clone(), Vec::new()));
        } else {
            assert!(m.message.len() <= 128 * 1024);
            got.last_mut().unwrap().1.extend_from_slice(&m.message);
        }
    }
    // What git stores after the header.
    let body = |oid: &str| {
        let raw = f.git(&["cat-file", "tag", oid]);
        raw.split_once("\n\n").unwrap().1.as_bytes().to_vec()
    };
    assert_eq!(got, vec![(v1.clone(), body(&v1)), (lt.clone(), body(&lt))]);
    assert_eq!(msgs.len(), 2 + 1 + 3, "300 KiB is three messages");
    let c4 = f.rev_parse("main");
    for (ids, msg) in [
        (vec![c4.clone()], "getting tag: expected tag, got commit"),
        (
            vec!["1234567890123456789012345678901234567890".into()],
            "getting tag: object not found",
        ),
        (vec!["a\nb".into()], "getting tag: object not found"),
    ] {
        let r = stream(
            c.get_tag_messages(GetTagMessagesRequest {
                repository: Some(s.repo("r.git")),
                tag_ids: ids,
            })
            .await,
        )
        .await;
        assert_eq!(failure(r), (Code::Internal, msg.to_string()));
    }
    s.stop().await;
}

#[tokio::test]
async fn tag_signatures_split_like_gitaly() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    // A "signed" tag written by hand (git mktag checks no signature).
    let c4 = f.rev_parse("main");
    let sig = "-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
    let raw = format!(
        "object {c4}\ntype commit\ntag signed\ntagger T <t@example.com> 1700000000 +0000\n\nsigned tag\n{sig}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &raw).unwrap();
    let signed = f
        .git(&[
            "hash-object",
            "-t",
            "tag",
            "-w",
            file.path().to_str().unwrap(),
        ])
        .trim()
        .to_string();
    f.git(&["update-ref", "refs/tags/signed", &signed]);
    // A tag of the signed tag.
    f.git(&["tag", "-a", "nested", "-m", "nested", "signed"]);
    let nested = f.rev_parse("refs/tags/nested");
    let v1 = f.rev_parse("refs/tags/v1.0");
    let mut c = client(&s);
    let req = |revs: &[&str]| GetTagSignaturesRequest {
        repository: Some(s.repo("r.git")),
        tag_revisions: revs.iter().map(|r| r.to_string()).collect(),
    };
    let sigs = |msgs: Vec<GetTagSignaturesResponse>| -> Vec<_> {
        msgs.into_iter()
            .flat_map(|m| m.signatures)
            .map(|t| (t.tag_id, t.content, t.signature))
            .collect()
    };
    let got = sigs(
        stream(c.get_tag_signatures(req(&[&nested])).await)
            .await
            .unwrap(),
    );
    let nested_raw = f.git(&["cat-file", "tag", &nested]).into_bytes();
    let content = raw.strip_suffix(sig).unwrap().as_bytes().to_vec();
    assert_eq!(
        got,
        vec![
            (nested.clone(), nested_raw, Vec::new()),
            (
                signed.clone(),
                content.clone(),
                sig.trim_end().as_bytes().to_vec()
            ),
        ]
    );
    // Pseudo revisions; a commit yields nothing.
    let got = sigs(
        stream(c.get_tag_signatures(req(&["--tags"])).await)
            .await
            .unwrap(),
    );
    let mut ids: Vec<String> = got.into_iter().map(|t| t.0).collect();
    ids.sort();
    let mut want = vec![nested.clone(), signed.clone(), v1.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert!(stream(c.get_tag_signatures(req(&["main"])).await)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        failure(c.get_tag_signatures(req(&[])).await),
        (Code::InvalidArgument, "missing revisions".to_string())
    );
    assert_eq!(
        failure(c.get_tag_signatures(req(&["-x"])).await),
        (
            Code::InvalidArgument,
            "invalid revision: revision can't start with '-'".to_string()
        )
    );
    let (code, _) = failure(
        stream(
            c.get_tag_signatures(req(&["1234567890123456789012345678901234567890"]))
                .await,
        )
        .await,
    );
    assert_eq!(code, Code::Internal);
    s.stop().await;
}

#[tokio::test]
async fn remote_branches_with_full_names() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let c4 = f.rev_parse("main");
    let f1 = f.rev_parse("feature");
    for i in 0..25 {
        f.git(&["update-ref", &format!("refs/remotes/origin/b{i:02}"), &c4]);
    }
    f.git(&["update-ref", "refs/remotes/origin/feature", &f1]);
    f.git(&["update-ref", "refs/remotes/origin2/x", &c4]);
    let mut c = client(&s);
    let msgs = stream(
        c.find_all_remote_branches(FindAllRemoteBranchesRequest {
            repository: Some(s.repo("r.git")),
            remote_name: "origin".into(),
        })
        .await,
    )
    .await
    .unwrap();
    assert_eq!(
        msgs.iter().map(|m| m.branches.len()).collect::<Vec<_>>(),
        [20, 6]
    );
    let got: Vec<(String, String)> = msgs
        .into_iter()
        .flat_map(|m| m.branches)
        .map(|b| {
            (
                String::from_utf8(b.name).unwrap(),
                b.target_commit.unwrap().id,
            )
        })
        .collect();
    let want: Vec<(String, String)> = f
        .git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/remotes/origin",
        ])
        .lines()
        .map(|l| {
            let (n, o) = l.split_once(' ').unwrap();
            (n.to_string(), o.to_string())
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        failure(
            c.find_all_remote_branches(FindAllRemoteBranchesRequest {
                repository: Some(s.repo("r.git")),
                remote_name: String::new(),
            })
            .await
        ),
        (Code::InvalidArgument, "empty RemoteName".to_string())
    );
    s.stop().await;
}

//! RefService reads of step 11, each against git's own output on the fixture.

use futures::StreamExt;
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use crate::common::*;

type Client = RefServiceClient<tonic::transport::Channel>;

fn client(s: &TestServer) -> Client {
    RefServiceClient::new(s.channel.clone())
}

async fn collect<T>(mut s: tonic::Streaming<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        out.push(m.unwrap());
    }
    out
}

/// git's own answer: short names under `prefix` containing `oid`.
fn git_containing(f: &Fixture, oid: &str, prefix: &str) -> Vec<Vec<u8>> {
    f.git(&[
        "for-each-ref",
        "--format=%(refname)",
        &format!("--contains={oid}"),
        prefix.trim_end_matches('/'),
    ])
    .lines()
    .map(|l| l.strip_prefix(prefix).unwrap().as_bytes().to_vec())
    .collect()
}

#[tokio::test]
async fn names_containing_a_commit_match_git() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let c1 = f.rev_parse("main~3");
    let f1 = f.rev_parse("feature");
    for oid in [&c1, &f1] {
        let req = ListBranchNamesContainingCommitRequest {
            repository: Some(s.repo("r.git")),
            commit_id: oid.clone(),
            limit: 0,
        };
        let got: Vec<Vec<u8>> = collect(
            c.list_branch_names_containing_commit(req)
                .await
                .unwrap()
                .into_inner(),
        )
        .await
        .into_iter()
        .flat_map(|m| m.branch_names)
        .collect();
        assert_eq!(got, git_containing(&f, oid, "refs/heads/"));
        let req = ListTagNamesContainingCommitRequest {
            repository: Some(s.repo("r.git")),
            commit_id: oid.clone(),
            limit: 0,
        };
        let got: Vec<Vec<u8>> = collect(
            c.list_tag_names_containing_commit(req)
                .await
                .unwrap()
                .into_inner(),
        )
        .await
        .into_iter()
        .flat_map(|m| m.tag_names)
        .collect();
        assert_eq!(got, git_containing(&f, oid, "refs/tags/"));
    }
    // c1 is in both branches and both tags; the limit cuts.
    assert_eq!(git_containing(&f, &c1, "refs/heads/").len(), 2);
    let req = ListBranchNamesContainingCommitRequest {
        repository: Some(s.repo("r.git")),
        commit_id: c1.clone(),
        limit: 1,
    };
    let got: usize = collect(
        c.list_branch_names_containing_commit(req)
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .iter()
    .map(|m| m.branch_names.len())
    .sum();
    assert_eq!(got, 1);
    // Bad ids: a short one is refused before git runs; a missing one is git's failure.
    for (id, code) in [
        ("abc1234", Code::InvalidArgument),
        ("", Code::InvalidArgument),
        ("--all", Code::InvalidArgument),
        (&"1".repeat(40)[..], Code::Internal),
    ] {
        let req = ListBranchNamesContainingCommitRequest {
            repository: Some(s.repo("r.git")),
            commit_id: id.to_string(),
            limit: 0,
        };
        let err = match c.list_branch_names_containing_commit(req).await {
            Err(e) => e,
            Ok(r) => r.into_inner().next().await.unwrap().unwrap_err(),
        };
        assert_eq!(err.code(), code, "{id}: {err:?}");
    }
}

#[tokio::test]
async fn refs_by_oid_match_git() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let c2 = f.rev_parse("v1.0^{commit}");
    f.git(&["branch", "at-c2", &c2]);
    let req = |oid: &str, patterns: Vec<String>| FindRefsByOidRequest {
        repository: Some(s.repo("r.git")),
        oid: oid.to_string(),
        ref_patterns: patterns,
        sort_field: String::new(),
        limit: 0,
    };
    let got = c
        .find_refs_by_oid(req(&c2, vec![]))
        .await
        .unwrap()
        .into_inner()
        .refs;
    let want: Vec<String> = f
        .git(&[
            "for-each-ref",
            "--format=%(refname)",
            &format!("--points-at={c2}"),
            "refs/tags/",
            "refs/heads/",
        ])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got, want);
    assert!(got.contains(&"refs/heads/at-c2".to_string()), "{got:?}");
    let got = c
        .find_refs_by_oid(req(&c2, vec!["refs/heads/".into()]))
        .await
        .unwrap()
        .into_inner()
        .refs;
    assert_eq!(got, vec!["refs/heads/at-c2".to_string()]);
    let err = c.find_refs_by_oid(req("", vec![])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "empty Oid");
}

#[tokio::test]
async fn tag_messages_and_signatures_are_raw() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let tag = f.rev_parse("v1.0");
    let req = GetTagMessagesRequest {
        repository: Some(s.repo("r.git")),
        tag_ids: vec![tag.clone()],
    };
    let msgs = collect(c.get_tag_messages(req).await.unwrap().into_inner()).await;
    assert_eq!(msgs[0].tag_id, tag);
    let message: Vec<u8> = msgs.iter().flat_map(|m| m.message.clone()).collect();
    assert_eq!(message, b"release 1.0\n");
    let commit = f.rev_parse("main");
    let req = GetTagMessagesRequest {
        repository: Some(s.repo("r.git")),
        tag_ids: vec![commit],
    };
    let err = match c.get_tag_messages(req).await {
        Err(e) => e,
        Ok(r) => r.into_inner().next().await.unwrap().unwrap_err(),
    };
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("expected tag"), "{err:?}");

    // A signed-looking tag: the signature is split off at its first line.
    let raw = f.git(&["cat-file", "tag", "v1.0"]);
    let signed =
        format!("{raw}-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tag"), &signed).unwrap();
    let signed_id = f
        .git(&[
            "hash-object",
            "-t",
            "tag",
            "-w",
            dir.path().join("tag").to_str().unwrap(),
        ])
        .trim()
        .to_string();
    f.git(&["update-ref", "refs/tags/signed", &signed_id]);
    let req = GetTagSignaturesRequest {
        repository: Some(s.repo("r.git")),
        tag_revisions: vec!["v1.0".into(), "signed".into()],
    };
    let sigs: Vec<_> = collect(c.get_tag_signatures(req).await.unwrap().into_inner())
        .await
        .into_iter()
        .flat_map(|m| m.signatures)
        .collect();
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    let plain = sigs.iter().find(|s| s.tag_id == tag).unwrap();
    assert_eq!(plain.content, raw.as_bytes());
    assert!(plain.signature.is_empty());
    let signed_sig = sigs.iter().find(|s| s.tag_id == signed_id).unwrap();
    assert_eq!(signed_sig.content, raw.as_bytes());
    assert_eq!(
        signed_sig.signature,
        b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----"
    );
    for (revs, msg) in [
        (vec![], "missing revisions"),
        (vec!["-x".to_string()], "invalid revision"),
    ] {
        let req = GetTagSignaturesRequest {
            repository: Some(s.repo("r.git")),
            tag_revisions: revs,
        };
        let err = c.get_tag_signatures(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(msg), "{err:?}");
    }
}

#[tokio::test]
async fn remote_branches_are_full_names() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let main = f.rev_parse("main");
    f.git(&["update-ref", "refs/remotes/origin/main", &main]);
    f.git(&["update-ref", "refs/remotes/origin2/x", &main]);
    let req = |name: &str| FindAllRemoteBranchesRequest {
        repository: Some(s.repo("r.git")),
        remote_name: name.to_string(),
    };
    let got: Vec<_> = collect(
        c.find_all_remote_branches(req("origin"))
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .into_iter()
    .flat_map(|m| m.branches)
    .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].name, b"refs/remotes/origin/main");
    assert_eq!(got[0].target_commit.as_ref().unwrap().id, main);
    let err = c.find_all_remote_branches(req("")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "empty RemoteName");
}

/// The typed calls of `gitrpc_client::Client` give the raw RPCs' answers, flattened.
#[tokio::test]
async fn typed_ref_reads() {
    use gitrpc_client::{Client as Typed, Options};
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let client = Typed::connect(&format!("unix:{}", s.socket.display()), &Options::default())
        .await
        .unwrap();
    let repo = s.repo("r.git");
    let c1 = f.rev_parse("main~3");
    assert_eq!(
        client.branch_names_containing(&repo, &c1, 0).await.unwrap(),
        git_containing(&f, &c1, "refs/heads/")
    );
    assert_eq!(
        client.tag_names_containing(&repo, &c1, 0).await.unwrap(),
        git_containing(&f, &c1, "refs/tags/")
    );
    let tag = f.rev_parse("v1.0");
    let msgs = client
        .get_tag_messages(&repo, vec![tag.clone()])
        .await
        .unwrap();
    assert_eq!(msgs, vec![(tag.clone(), b"release 1.0\n".to_vec())]);
    let sigs = client
        .get_tag_signatures(&repo, vec!["v1.0".into()])
        .await
        .unwrap();
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].tag_id, tag);
    let main = f.rev_parse("main");
    assert_eq!(
        client
            .find_refs_by_oid(&repo, &main, vec!["refs/heads/".into()], "", 0)
            .await
            .unwrap(),
        vec!["refs/heads/main".to_string()]
    );
    f.git(&["update-ref", "refs/remotes/up/main", &main]);
    let remote = client.find_all_remote_branches(&repo, "up").await.unwrap();
    assert_eq!(remote[0].name, b"refs/remotes/up/main");
}

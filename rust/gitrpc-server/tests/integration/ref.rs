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

#[tokio::test]
async fn ref_exists_native_and_errors() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    f.git(&["pack-refs", "--all"]);
    f.git(&["branch", "loose"]);
    let mut c = client(&s);
    let exists = |r: &str| RefExistsRequest {
        repository: Some(s.repo("r.git")),
        r#ref: r.as_bytes().to_vec(),
    };
    for (r, want) in [
        ("refs/heads/main", true),
        ("refs/heads/loose", true),
        ("refs/tags/v1.0", true),
        ("refs/heads/nope", false),
        ("refs/heads", false),
        ("refs/heads/../../config", false),
    ] {
        assert_eq!(
            c.ref_exists(exists(r)).await.unwrap().into_inner().value,
            want,
            "{r}"
        );
    }
    for bad in ["main", "HEAD", ""] {
        let err = c.ref_exists(exists(bad)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
    }
}

#[tokio::test]
async fn default_branch_heuristic() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let find = |head_only| FindDefaultBranchNameRequest {
        repository: Some(s.repo("r.git")),
        head_only,
    };
    assert_eq!(
        c.find_default_branch_name(find(false))
            .await
            .unwrap()
            .into_inner()
            .name,
        b"refs/heads/main"
    );
    // HEAD pointing at a missing branch: main wins over the others; head_only reports HEAD.
    f.git(&["symbolic-ref", "HEAD", "refs/heads/gone"]);
    assert_eq!(
        c.find_default_branch_name(find(false))
            .await
            .unwrap()
            .into_inner()
            .name,
        b"refs/heads/main"
    );
    assert_eq!(
        c.find_default_branch_name(find(true))
            .await
            .unwrap()
            .into_inner()
            .name,
        b"refs/heads/gone"
    );
    f.git(&["branch", "-m", "main", "zzz"]);
    assert_eq!(
        c.find_default_branch_name(find(false))
            .await
            .unwrap()
            .into_inner()
            .name,
        b"refs/heads/feature"
    );
    f.git(&["branch", "-D", "feature"]);
    assert_eq!(
        c.find_default_branch_name(find(false))
            .await
            .unwrap()
            .into_inner()
            .name,
        b"refs/heads/zzz"
    );
    // No branches at all: empty.
    s.fixture("empty.git");
    let e = s.path("empty.git");
    for b in ["main", "feature"] {
        git(&e, &["update-ref", "-d", &format!("refs/heads/{b}")]);
    }
    let resp = c
        .find_default_branch_name(FindDefaultBranchNameRequest {
            repository: Some(s.repo("empty.git")),
            head_only: false,
        })
        .await
        .unwrap();
    assert_eq!(resp.into_inner().name, b"");
}

#[tokio::test]
async fn branches_match_git() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    f.git(&["update-ref", "refs/remotes/origin/main", "main~1"]);
    let mut c = client(&s);
    let resp = collect(
        c.find_local_branches(FindLocalBranchesRequest {
            repository: Some(s.repo("r.git")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    let branches: Vec<Branch> = resp.into_iter().flat_map(|r| r.local_branches).collect();
    let names: Vec<String> = branches
        .iter()
        .map(|b| String::from_utf8_lossy(&b.name).into_owned())
        .collect();
    let want = f.git(&["for-each-ref", "--format=%(refname)", "refs/heads/"]);
    assert_eq!(names, want.lines().collect::<Vec<_>>());
    for b in &branches {
        let name = String::from_utf8_lossy(&b.name);
        let commit = b.target_commit.as_ref().unwrap();
        assert_eq!(commit.id, f.rev_parse(&name));
        assert_eq!(
            commit.subject,
            f.git(&["log", "-1", "--format=%s", &name])
                .trim()
                .as_bytes()
        );
    }

    // Pagination and exclusion.
    let page = collect(
        c.find_local_branches(FindLocalBranchesRequest {
            repository: Some(s.repo("r.git")),
            pagination_params: Some(PaginationParameter {
                page_token: "refs/heads/feature".into(),
                limit: 10,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    let names: Vec<Vec<u8>> = page
        .into_iter()
        .flat_map(|r| r.local_branches)
        .map(|b| b.name)
        .collect();
    assert_eq!(names, vec![b"refs/heads/main".to_vec()]);
    let err = c
        .find_local_branches(FindLocalBranchesRequest {
            repository: Some(s.repo("r.git")),
            exclude_patterns: vec![b"refs/tags/x".to_vec()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let all = collect(
        c.find_all_branches(FindAllBranchesRequest {
            repository: Some(s.repo("r.git")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await;
    let names: Vec<Vec<u8>> = all
        .into_iter()
        .flat_map(|r| r.branches)
        .map(|b| b.name)
        .collect();
    assert!(names.contains(&b"refs/remotes/origin/main".to_vec()));
    assert_eq!(names.len(), 3);

    let b = c
        .find_branch(FindBranchRequest {
            repository: Some(s.repo("r.git")),
            name: b"feature".to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .branch
        .unwrap();
    assert_eq!(b.name, b"feature");
    assert_eq!(b.target_commit.unwrap().id, f.rev_parse("feature"));
    let err = c
        .find_branch(FindBranchRequest {
            repository: Some(s.repo("r.git")),
            name: b"nope".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .find_branch(FindBranchRequest {
            repository: Some(s.repo("r.git")),
            name: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn tags_match_git() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let t = c
        .find_tag(FindTagRequest {
            repository: Some(s.repo("r.git")),
            tag_name: b"v1.0".to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .tag
        .unwrap();
    assert_eq!(t.name, b"v1.0");
    assert_eq!(t.id, f.rev_parse("refs/tags/v1.0"));
    assert_eq!(t.target_commit.unwrap().id, f.rev_parse("v1.0^{commit}"));
    assert_eq!(t.message, b"release 1.0\n");
    assert_eq!(t.tagger.unwrap().email, b"charles@example.com");

    let light = c
        .find_tag(FindTagRequest {
            repository: Some(s.repo("r.git")),
            tag_name: b"light".to_vec(),
        })
        .await
        .unwrap()
        .into_inner()
        .tag
        .unwrap();
    assert_eq!(light.id, f.rev_parse("light"));
    assert!(light.message.is_empty());

    let err = c
        .find_tag(FindTagRequest {
            repository: Some(s.repo("r.git")),
            tag_name: b"nope".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let tags: Vec<Tag> = collect(
        c.find_all_tags(FindAllTagsRequest {
            repository: Some(s.repo("r.git")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await
    .into_iter()
    .flat_map(|r| r.tags)
    .collect();
    let names: Vec<&[u8]> = tags.iter().map(|t| t.name.as_slice()).collect();
    assert_eq!(names, vec![&b"light"[..], b"v1.0"]);

    let desc: Vec<Vec<u8>> = collect(
        c.find_all_tags(FindAllTagsRequest {
            repository: Some(s.repo("r.git")),
            sort_by: Some(find_all_tags_request::SortBy {
                key: find_all_tags_request::sort_by::Key::Refname as i32,
                direction: SortDirection::Descending as i32,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner(),
    )
    .await
    .into_iter()
    .flat_map(|r| r.tags)
    .map(|t| t.name)
    .collect();
    assert_eq!(desc, vec![b"v1.0".to_vec(), b"light".to_vec()]);
}

#[tokio::test]
async fn list_refs_matches_git() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let c = client(&s);
    let list = |req: ListRefsRequest| {
        let mut c = c.clone();
        async move {
            let r = c.list_refs(req).await?;
            Ok::<_, tonic::Status>(
                collect(r.into_inner())
                    .await
                    .into_iter()
                    .flat_map(|r| r.references)
                    .collect::<Vec<_>>(),
            )
        }
    };
    let refs = list(ListRefsRequest {
        repository: Some(s.repo("r.git")),
        patterns: vec![b"refs/".to_vec()],
        head: true,
        peel_tags: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let got: Vec<String> = refs
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                String::from_utf8_lossy(&r.name),
                r.target,
                r.peeled_target
            )
        })
        .collect();
    let mut want = vec![format!("HEAD {} ", f.rev_parse("HEAD"))];
    want.extend(
        f.git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname) %(*objectname)",
            "refs/",
        ])
        .lines()
        .map(str::to_string),
    );
    assert_eq!(got, want);

    let tags_only = list(ListRefsRequest {
        repository: Some(s.repo("r.git")),
        patterns: vec![b"refs/tags/".to_vec()],
        pointing_at_oids: vec![f.rev_parse("light").into_bytes()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(tags_only.len(), 1);
    assert_eq!(tags_only[0].name, b"refs/tags/light");

    let err = list(ListRefsRequest {
        repository: Some(s.repo("r.git")),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn update_references_is_atomic() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let c = client(&s);
    let main = f.rev_parse("main");
    let feature = f.rev_parse("feature");
    let zero = "0".repeat(40);
    let upd = |r: &str, old: &str, new: &str| update_references_request::Update {
        reference: r.as_bytes().to_vec(),
        old_object_id: old.as_bytes().to_vec(),
        new_object_id: new.as_bytes().to_vec(),
    };
    let send = |updates: Vec<update_references_request::Update>| {
        let mut c = c.clone();
        let repo = s.repo("r.git");
        async move {
            let msgs = vec![UpdateReferencesRequest {
                repository: Some(repo),
                updates,
            }];
            c.update_references(tokio_stream::iter(msgs)).await
        }
    };
    send(vec![
        upd("refs/heads/a", &zero, &main),
        upd("refs/heads/feature", &feature, &main),
    ])
    .await
    .unwrap();
    assert_eq!(f.rev_parse("refs/heads/a"), main);
    assert_eq!(f.rev_parse("refs/heads/feature"), main);

    // One stale expectation: nothing changes.
    let err = send(vec![
        upd("refs/heads/b", &zero, &main),
        upd("refs/heads/a", &feature, &feature),
    ])
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    assert!(
        git_output(&s.path("r.git"), &["rev-parse", "--verify", "refs/heads/b"])
            .status
            .code()
            != Some(0)
    );
    assert_eq!(f.rev_parse("refs/heads/a"), main);

    // Delete with the zero id.
    send(vec![upd("refs/heads/a", &main, &zero)]).await.unwrap();
    assert!(
        !git_output(&s.path("r.git"), &["rev-parse", "--verify", "refs/heads/a"])
            .status
            .success()
    );

    for bad in [
        vec![upd("refs/heads/a..b", "", &main)],
        vec![upd("HEAD", "", &main)],
        vec![upd("refs/heads/x", "", "nothex")],
        vec![],
    ] {
        let err = send(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
}

#[tokio::test]
async fn delete_refs() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    f.git(&["branch", "x"]);
    f.git(&["branch", "y"]);
    c.delete_refs(DeleteRefsRequest {
        repository: Some(s.repo("r.git")),
        refs: vec![
            b"refs/heads/x".to_vec(),
            b"refs/heads/does-not-exist".to_vec(),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let left = f.git(&["for-each-ref", "--format=%(refname)", "refs/heads/"]);
    assert_eq!(
        left.lines().collect::<Vec<_>>(),
        ["refs/heads/feature", "refs/heads/main", "refs/heads/y"]
    );

    c.delete_refs(DeleteRefsRequest {
        repository: Some(s.repo("r.git")),
        except_with_prefix: vec![b"refs/heads/main".to_vec(), b"refs/tags/".to_vec()],
        ..Default::default()
    })
    .await
    .unwrap();
    let left = f.git(&["for-each-ref", "--format=%(refname)"]);
    assert_eq!(
        left.lines().collect::<Vec<_>>(),
        ["refs/heads/main", "refs/tags/light", "refs/tags/v1.0"]
    );

    for req in [
        DeleteRefsRequest {
            repository: Some(s.repo("r.git")),
            ..Default::default()
        },
        DeleteRefsRequest {
            repository: Some(s.repo("r.git")),
            refs: vec![b"refs/heads/a".to_vec()],
            except_with_prefix: vec![b"refs/".to_vec()],
        },
        DeleteRefsRequest {
            repository: Some(s.repo("r.git")),
            refs: vec![b"refs/heads/../x".to_vec()],
            ..Default::default()
        },
    ] {
        assert_eq!(
            c.delete_refs(req).await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }
}

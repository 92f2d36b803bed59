use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use crate::common::*;

fn client(s: &TestServer) -> RepositoryServiceClient<tonic::transport::Channel> {
    RepositoryServiceClient::new(s.channel.clone())
}

#[tokio::test]
async fn exists_and_bad_locations() {
    let s = TestServer::start().await;
    s.fixture("a/repo.git");
    let mut c = client(&s);
    let exists = |r: Repository| {
        let mut c = c.clone();
        async move {
            c.repository_exists(RepositoryExistsRequest {
                repository: Some(r),
            })
            .await
        }
    };
    assert!(
        exists(s.repo("a/repo.git"))
            .await
            .unwrap()
            .into_inner()
            .exists
    );
    assert!(
        !exists(s.repo("a/missing.git"))
            .await
            .unwrap()
            .into_inner()
            .exists
    );

    // Bad locations are INVALID_ARGUMENT, never "doesn't exist".
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), s.storage.join("escape")).unwrap();
    for bad in [
        "../x.git",
        "a/../../x.git",
        "/etc",
        "escape/repo.git",
        "",
        "+gitrpc/tmp",
    ] {
        let err = exists(s.repo(bad)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
    }
    let mut unknown = s.repo("a/repo.git");
    unknown.storage_name = "nope".into();
    let err = exists(unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("storage"), "{}", err.message());
    let err = c
        .repository_exists(RepositoryExistsRequest { repository: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Missing repository on a read RPC is NOT_FOUND.
    let err = c
        .repository_size(RepositorySizeRequest {
            repository: Some(s.repo("a/missing.git")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn create_is_atomic_and_configurable() {
    let s = TestServer::start().await;
    let mut c = client(&s);
    c.create_repository(CreateRepositoryRequest {
        repository: Some(s.repo("group/new.git")),
        default_branch: b"trunk".to_vec(),
        object_format: ObjectFormat::Sha256 as i32,
    })
    .await
    .unwrap();
    let path = s.path("group/new.git");
    assert_eq!(
        git(&path, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/trunk"
    );
    assert_eq!(
        git(&path, &["rev-parse", "--show-object-format"]).trim(),
        "sha256"
    );
    assert_eq!(
        git(&path, &["rev-parse", "--is-bare-repository"]).trim(),
        "true"
    );
    let fmt = c
        .object_format(ObjectFormatRequest {
            repository: Some(s.repo("group/new.git")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fmt.format, ObjectFormat::Sha256 as i32);

    // Default branch defaults to main, format to SHA-1.
    c.create_repository(CreateRepositoryRequest {
        repository: Some(s.repo("plain.git")),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        git(&s.path("plain.git"), &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    let fmt = c
        .object_format(ObjectFormatRequest {
            repository: Some(s.repo("plain.git")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fmt.format, ObjectFormat::Sha1 as i32);

    // Existing → ALREADY_EXISTS, untouched.
    let err = c
        .create_repository(CreateRepositoryRequest {
            repository: Some(s.repo("group/new.git")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(
        git(&path, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/trunk"
    );

    // Bad branch name → INVALID_ARGUMENT and nothing left behind.
    let err = c
        .create_repository(CreateRepositoryRequest {
            repository: Some(s.repo("bad.git")),
            default_branch: b"a..b".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(!s.path("bad.git").exists());
    let tmp = s.storage.join("+gitrpc/tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "temp dirs left: {leftovers:?}");
}

#[tokio::test]
async fn remove_size_branches() {
    let s = TestServer::start().await;
    s.fixture("r.git");
    let mut c = client(&s);
    let size = c
        .repository_size(RepositorySizeRequest {
            repository: Some(s.repo("r.git")),
        })
        .await
        .unwrap()
        .into_inner()
        .size;
    assert!(size > 0);
    let has = c
        .has_local_branches(HasLocalBranchesRequest {
            repository: Some(s.repo("r.git")),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(has.value);
    c.create_repository(CreateRepositoryRequest {
        repository: Some(s.repo("empty.git")),
        ..Default::default()
    })
    .await
    .unwrap();
    let has = c
        .has_local_branches(HasLocalBranchesRequest {
            repository: Some(s.repo("empty.git")),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!has.value);

    c.remove_repository(RemoveRepositoryRequest {
        repository: Some(s.repo("r.git")),
    })
    .await
    .unwrap();
    assert!(!s.path("r.git").exists());
    let err = c
        .remove_repository(RemoveRepositoryRequest {
            repository: Some(s.repo("r.git")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let leftovers: Vec<_> = std::fs::read_dir(s.storage.join("+gitrpc/tmp"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn merge_base_matches_git() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let c = client(&s);
    let base = |revs: Vec<&'static str>| {
        let mut c = c.clone();
        let repo = s.repo("r.git");
        async move {
            c.find_merge_base(FindMergeBaseRequest {
                repository: Some(repo),
                revisions: revs.into_iter().map(|r| r.as_bytes().to_vec()).collect(),
            })
            .await
        }
    };
    let want = f
        .git(&["merge-base", "main~1", "feature"])
        .trim()
        .to_string();
    assert_eq!(
        base(vec!["main~1", "feature"])
            .await
            .unwrap()
            .into_inner()
            .base,
        want
    );
    // Unknown revision → empty base, as Gitaly.
    assert_eq!(
        base(vec!["main", "nope"]).await.unwrap().into_inner().base,
        ""
    );
    assert_eq!(
        base(vec!["main"]).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        base(vec!["main", "--all"]).await.unwrap_err().code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn write_ref_updates_and_checks() {
    let s = TestServer::start().await;
    let f = s.fixture("r.git");
    let mut c = client(&s);
    let c1 = f.rev_parse("main~2");
    let head = f.rev_parse("main");
    let write = |r: &str, rev: &str, old: &str| WriteRefRequest {
        repository: Some(s.repo("r.git")),
        r#ref: r.as_bytes().to_vec(),
        revision: rev.as_bytes().to_vec(),
        old_revision: old.as_bytes().to_vec(),
    };
    c.write_ref(write("refs/heads/new", &c1, "")).await.unwrap();
    assert_eq!(f.rev_parse("refs/heads/new"), c1);
    // Old value must match.
    let err = c
        .write_ref(write("refs/heads/new", &head, &head))
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), Code::FailedPrecondition | Code::Aborted),
        "{err:?}"
    );
    assert_eq!(f.rev_parse("refs/heads/new"), c1);
    c.write_ref(write("refs/heads/new", &head, &c1))
        .await
        .unwrap();
    assert_eq!(f.rev_parse("refs/heads/new"), head);
    // All-zero old: only create.
    let zero = "0".repeat(40);
    assert!(c
        .write_ref(write("refs/heads/new", &c1, &zero))
        .await
        .is_err());
    c.write_ref(write("refs/heads/created", &c1, &zero))
        .await
        .unwrap();
    // HEAD is symbolic.
    c.write_ref(write("HEAD", "refs/heads/feature", ""))
        .await
        .unwrap();
    assert_eq!(
        f.git(&["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/feature"
    );
    // Bad input.
    for (r, rev) in [
        ("refs/heads/a..b", "main"),
        ("refs/heads/x", "-x"),
        ("", "main"),
        ("refs/heads/x", ""),
    ] {
        let err = c.write_ref(write(r, rev, "")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{r} {rev}");
    }
    let err = c
        .write_ref(write("refs/heads/x", "doesnotexist", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

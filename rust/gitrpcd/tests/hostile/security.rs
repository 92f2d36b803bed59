//! See main.rs. What a caller can make git do (config options, hooks, huge arguments) and
//! which paths it can reach (the private directory, path spellings, a removed storage).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::smart_http_service_client::SmartHttpServiceClient;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::transport::Channel;
use tonic::Code;

use crate::harness::*;

const RSS_SLACK_KIB: u64 = 64 * 1024;

/// The harness itself: a daemon starts, serves, and passes its own health check.
#[tokio::test]
async fn harness_smoke() {
    let mut d = Daemon::start("");
    let _w = d.seed("a.git");
    let mut c = RepositoryServiceClient::new(d.channel().await);
    let exists = c
        .repository_exists(RepositoryExistsRequest {
            repository: Some(d.repo("a.git")),
        })
        .await
        .unwrap()
        .into_inner()
        .exists;
    assert!(exists);
    let base = d.baseline();
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// `git_config_options` is an allowlist of keys and value shapes: a key that makes git read
/// a server file (`receive.fsck.skipList=/etc/passwd`, `/dev/zero`) or run a program is
/// refused before anything is spawned; allowed ones reach git in real pushes and fetches.
#[tokio::test]
async fn config_options_are_an_allowlist() {
    let mut d = json_daemon("");
    let work = d.seed("a.git");
    git_ok(work.path(), &["tag", "v1"]);
    let bare = d.storage().join("a.git");
    git_ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "v1"]);
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;

    let refused = [
        "receive.fsck.skipList=/etc/passwd",
        "receive.fsck.skiplist=/dev/zero",
        "RECEIVE.FSCK.SKIPLIST=/dev/zero",
        "receive.procReceiveRefs=refs/heads",
        "core.hooksPath=/tmp",
        "core.sshCommand=touch /tmp/pwned",
        "uploadpack.packObjectsHook=/bin/sh",
        "include.path=/etc/passwd",
        "transfer.hideRefs=--upload-pack=x",
        "receive.unpackLimit=lots",
    ];
    let mut ssh = SshServiceClient::new(ch.clone());
    let mut http = SmartHttpServiceClient::new(ch.clone());
    for opt in refused {
        let first = SshReceivePackRequest {
            repository: Some(d.repo("a.git")),
            git_config_options: vec![opt.into()],
            ..Default::default()
        };
        let e = ssh
            .ssh_receive_pack(tokio_stream::iter(vec![first]))
            .await
            .err()
            .unwrap_or_else(|| panic!("SSHReceivePack accepted {opt}"));
        assert_refused(&e, opt);
        let first = PostReceivePackRequest {
            repository: Some(d.repo("a.git")),
            git_config_options: vec![opt.into()],
            ..Default::default()
        };
        let e = http
            .post_receive_pack(tokio_stream::iter(vec![first]))
            .await
            .err()
            .unwrap_or_else(|| panic!("PostReceivePack accepted {opt}"));
        assert_refused(&e, opt);
    }
    // Nothing was spawned for any of them.
    let calls = wait_for_rpcs(&d, "ReceivePack", 2 * refused.len());
    assert!(
        calls
            .iter()
            .all(|(_, code, git)| code == "InvalidArgument" && git.is_empty()),
        "{calls:?}"
    );

    // Allowed options reach git. A real push with receive.unpackLimit=0 keeps its pack.
    let packs = |p: &Path| count_files(&p.join("objects/pack"), ".pack");
    let before = packs(&bare);
    std::fs::write(work.path().join("new.txt"), "three\n").unwrap();
    git_ok(work.path(), &["add", "."]);
    git_ok(work.path(), &["commit", "-qm", "three"]);
    let new = git_ok(work.path(), &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    let pack = pack_objects(work.path(), &format!("{new}\n^{new}~1\n"));
    let mut data = pkt(&format!(
        "{} {new} refs/heads/topic\0report-status\n",
        "0".repeat(40)
    ));
    data.extend_from_slice(b"0000");
    data.extend_from_slice(&pack);
    let first = PostReceivePackRequest {
        repository: Some(d.repo("a.git")),
        git_config_options: vec![
            "receive.unpackLimit=0".into(),
            "RECEIVE.ADVERTISEPUSHOPTIONS=true".into(),
        ],
        ..Default::default()
    };
    let body = vec![
        first,
        PostReceivePackRequest {
            data,
            ..Default::default()
        },
    ];
    let mut out = Vec::new();
    let mut s = http
        .post_receive_pack(tokio_stream::iter(body))
        .await
        .unwrap()
        .into_inner();
    while let Some(m) = s.message().await.unwrap() {
        out.extend_from_slice(&m.data);
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("ok refs/heads/topic"), "{out}");
    assert_eq!(
        git_ok(&bare, &["rev-parse", "refs/heads/topic"]).trim(),
        new
    );
    assert_eq!(
        packs(&bare),
        before + 1,
        "receive.unpackLimit=0 kept the pack"
    );

    // transfer.hideRefs hides tags from a fetch; receive.advertisePushOptions is advertised.
    let adv = |resp: Vec<InfoRefsResponse>| {
        String::from_utf8_lossy(&resp.into_iter().flat_map(|m| m.data).collect::<Vec<_>>())
            .into_owned()
    };
    let info = |opts: &[&str]| InfoRefsRequest {
        repository: Some(d.repo("a.git")),
        git_config_options: opts.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let shown = adv(collect(http.info_refs_upload_pack(info(&[])).await.unwrap()).await);
    assert!(shown.contains("refs/tags/v1"), "{shown}");
    let hidden = adv(collect(
        http.info_refs_upload_pack(info(&["transfer.hideRefs=refs/tags"]))
            .await
            .unwrap(),
    )
    .await);
    assert!(
        !hidden.contains("refs/tags/v1") && hidden.contains("refs/heads/main"),
        "{hidden}"
    );
    let push_adv = adv(collect(
        http.info_refs_receive_pack(info(&["receive.advertisePushOptions=true"]))
            .await
            .unwrap(),
    )
    .await);
    assert!(push_adv.contains("push-options"), "{push_adv}");
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// Every spelling of the server's private directory (`+gitrpc`) is refused: nothing can be
/// created, probed or removed there, and pushes keep working.
#[tokio::test]
async fn private_directory_is_reserved() {
    let mut d = json_daemon("");
    let _w = d.seed("a.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let internal = d.storage().join("+gitrpc");
    let hooks = std::fs::read_dir(&internal)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("hooks-") && n != "hooks-run")
        .expect("the server's hooks directory");
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let spellings = [
        "+gitrpc/x.git".to_string(),
        "./+gitrpc/x.git".into(),
        "x/../+gitrpc/x.git".into(),
        "a/./../+gitrpc/x".into(),
        ".//+gitrpc//tmp/y.git".into(),
        "+gitrpc/spool/z.git".into(),
        "+gitrpc/".into(),
        "+gitrpc".into(),
        "+gitrpc/spool/..".into(),
        format!("+gitrpc/{hooks}/update"),
        format!("./+gitrpc/{hooks}/update"),
    ];
    for rel in &spellings {
        let e = repos
            .create_repository(CreateRepositoryRequest {
                repository: Some(d.repo(rel)),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "create {rel}: {e:?}");
        assert!(e.message().contains("reserved"), "create {rel}: {e:?}");
        let e = repos
            .repository_exists(RepositoryExistsRequest {
                repository: Some(d.repo(rel)),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "exists {rel}: {e:?}");
        let e = repos
            .remove_repository(RemoveRepositoryRequest {
                repository: Some(d.repo(rel)),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "remove {rel}: {e:?}");
    }
    assert!(!internal.join(&hooks).join("update").exists());
    assert!(internal.join("spool").is_dir(), "the spool is still there");
    // A push still runs (the hooks directory holds no stray `update` hook).
    let work = tempfile::tempdir().unwrap();
    git_ok(
        work.path(),
        &[
            "clone",
            "-q",
            d.storage().join("a.git").to_str().unwrap(),
            ".",
        ],
    );
    git_ok(
        work.path(),
        &["commit", "-q", "--allow-empty", "-m", "three"],
    );
    let out = ssh_git(
        &d,
        work.path(),
        &["push", "-q", &ssh_url("a.git"), "HEAD:main"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// A repository's own hooks never run: not for pushes, not for the ref-writing RPCs
/// (update-ref and symbolic-ref run `reference-transaction`).
#[tokio::test]
async fn repository_hooks_never_run() {
    let mut d = json_daemon("");
    let work = d.seed("h.git");
    let bare = d.storage().join("h.git");
    let marker = d.dir.path().join("hook-ran");
    for hook in [
        "reference-transaction",
        "pre-receive",
        "update",
        "post-receive",
        "post-update",
    ] {
        let path = bare.join("hooks").join(hook);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho {hook} >> '{}'\ncat >/dev/null\n",
                marker.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let main = git_ok(&bare, &["rev-parse", "main"]).trim().to_string();
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let mut refs = RefServiceClient::new(ch.clone());
    let ran = || std::fs::read_to_string(&marker).unwrap_or_default();

    repos
        .write_ref(WriteRefRequest {
            repository: Some(d.repo("h.git")),
            r#ref: b"refs/heads/x".to_vec(),
            revision: b"main".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ran(), "", "WriteRef ran a repository hook");
    repos
        .write_ref(WriteRefRequest {
            repository: Some(d.repo("h.git")),
            r#ref: b"HEAD".to_vec(),
            revision: b"refs/heads/x".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ran(), "", "WriteRef HEAD ran a repository hook");
    let update = update_references_request::Update {
        reference: b"refs/heads/y".to_vec(),
        new_object_id: main.clone().into_bytes(),
        ..Default::default()
    };
    refs.update_references(tokio_stream::iter(vec![UpdateReferencesRequest {
        repository: Some(d.repo("h.git")),
        updates: vec![update],
    }]))
    .await
    .unwrap();
    assert_eq!(ran(), "", "UpdateReferences ran a repository hook");
    refs.delete_refs(DeleteRefsRequest {
        repository: Some(d.repo("h.git")),
        refs: vec![b"refs/heads/y".to_vec()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(ran(), "", "DeleteRefs ran a repository hook");
    assert_eq!(
        git_ok(&bare, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/x"
    );

    git_ok(
        work.path(),
        &["commit", "-q", "--allow-empty", "-m", "three"],
    );
    let out = ssh_git(
        &d,
        work.path(),
        &["push", "-q", &ssh_url("h.git"), "HEAD:main"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ran(), "", "a push ran a repository hook");
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// `[[concurrency]]` budgets are per repository, whatever its spelling: with one slot per
/// repository, `./a.git` and `x/../a.git` wait behind `a.git` (and are refused after
/// `max_queue_wait`), while `b.git` runs.
#[tokio::test]
async fn limits_key_on_the_resolved_repository() {
    let mut d = json_daemon(
        "[[concurrency]]\nrpc = \"/gitaly.SSHService/SSHUploadPack\"\nmax_per_repo = 1\n\
         max_queue_wait = \"10ms\"\n",
    );
    let _a = d.seed("a.git");
    let _b = d.seed("b.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let mut ssh = SshServiceClient::new(ch.clone());
    let first = |rel: &str| SshUploadPackRequest {
        repository: Some(d.repo(rel)),
        ..Default::default()
    };

    // Hold a.git's slot: an upload-pack session that waits for the client's wants.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(first("a.git")).await.unwrap();
    let mut held = ssh
        .ssh_upload_pack(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let adv = held.message().await.unwrap().expect("advertisement");
    assert!(!adv.stdout.is_empty());

    for rel in ["a.git", "./a.git", "x/../a.git", "a.git/", ".//a.git/."] {
        let e = ssh
            .ssh_upload_pack(tokio_stream::iter(vec![first(rel)]))
            .await
            .err()
            .unwrap_or_else(|| panic!("{rel} got its own budget"));
        assert_eq!(e.code(), Code::ResourceExhausted, "{rel}: {e:?}");
    }
    // Another repository has its own budget.
    let mut other = ssh
        .ssh_upload_pack(tokio_stream::iter(vec![first("b.git")]))
        .await
        .unwrap()
        .into_inner();
    while other.message().await.unwrap().is_some() {}

    // Once a.git's session ends, another spelling of it runs.
    drop(tx);
    while held.message().await.unwrap().is_some() {}
    let mut again = ssh
        .ssh_upload_pack(tokio_stream::iter(vec![first("x/../a.git")]))
        .await
        .unwrap()
        .into_inner();
    while again.message().await.unwrap().is_some() {}
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// A relative path is bounded (length, components) before any work, and the work is
/// linear: a 512 KB path of 256,000 components is refused at once, and while several are
/// in flight other calls are answered.
#[tokio::test]
async fn paths_are_bounded_before_any_work() {
    let mut d = json_daemon("");
    let _w = d.seed("a.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let exists = |rel: String| {
        let mut c = RepositoryServiceClient::new(ch.clone());
        let repo = d.repo(&rel);
        async move {
            c.repository_exists(RepositoryExistsRequest {
                repository: Some(repo),
            })
            .await
        }
    };
    let started = Instant::now();
    let huge = "a/".repeat(256_000);
    let hostile: Vec<_> = (0..4).map(|_| tokio::spawn(exists(huge.clone()))).collect();
    let normal = exists("a.git".into()).await.unwrap().into_inner();
    assert!(normal.exists);
    for h in hostile {
        let e = h.await.unwrap().unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert_eq!(
            e.message(),
            "relative path too long: 512000 bytes (max 4096)"
        );
    }
    // Generous: these take milliseconds now; each took ~10 s of a runtime thread before.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    let deep = "d/".repeat(200) + "r.git";
    let e = exists(deep).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("too many components"), "{e:?}");
    let e = exists("a".repeat(5000)).await.unwrap_err();
    assert!(e.message().contains("relative path too long"), "{e:?}");
    // At the bounds, a path is looked up as usual.
    let at_bound = "d/".repeat(127) + "r.git";
    assert!(!exists(at_bound).await.unwrap().into_inner().exists);
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// Oversized ref names, revisions and paths are `INVALID_ARGUMENT` naming the field, never
/// `INTERNAL` ("File name too long", "Argument list too long"). 1 MiB is past every bound
/// (4096 bytes) and past the kernel's limit for one argument (128 KiB), while staying under
/// any request size limit.
#[tokio::test]
async fn huge_arguments_are_invalid_argument() {
    const HUGE: usize = 1 << 20;
    let mut d = json_daemon("");
    let _w = d.seed("a.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let repo = || Some(d.repo("a.git"));
    let long_ref = [b"refs/heads/".to_vec(), vec![b'a'; HUGE]].concat();
    let long = vec![b'a'; HUGE];
    let mut refs = RefServiceClient::new(ch.clone());
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let mut commits = CommitServiceClient::new(ch.clone());
    let mut results: Vec<(&str, Result<(), tonic::Status>, &str)> = Vec::new();
    macro_rules! case {
        ($what:expr, $field:expr, $call:expr) => {
            results.push(($what, $call.await.map(|_| ()), $field));
        };
    }
    case!(
        "RefExists",
        "ref name",
        refs.ref_exists(RefExistsRequest {
            repository: repo(),
            r#ref: long_ref.clone(),
        })
    );
    case!(
        "FindBranch",
        "ref name",
        refs.find_branch(FindBranchRequest {
            repository: repo(),
            name: long.clone(),
        })
    );
    case!(
        "FindTag",
        "ref name",
        refs.find_tag(FindTagRequest {
            repository: repo(),
            tag_name: long.clone(),
        })
    );
    case!(
        "DeleteRefs",
        "ref name",
        refs.delete_refs(DeleteRefsRequest {
            repository: repo(),
            refs: vec![long_ref.clone()],
            ..Default::default()
        })
    );
    case!(
        "UpdateReferences",
        "ref name",
        refs.update_references(tokio_stream::iter(vec![UpdateReferencesRequest {
            repository: repo(),
            updates: vec![update_references_request::Update {
                reference: long_ref.clone(),
                new_object_id: vec![b'1'; 40],
                ..Default::default()
            }],
        }]))
    );
    case!(
        "WriteRef ref",
        "ref name",
        repos.write_ref(WriteRefRequest {
            repository: repo(),
            r#ref: long_ref.clone(),
            revision: b"main".to_vec(),
            ..Default::default()
        })
    );
    case!(
        "WriteRef revision",
        "revision",
        repos.write_ref(WriteRefRequest {
            repository: repo(),
            r#ref: b"refs/heads/x".to_vec(),
            revision: long.clone(),
            ..Default::default()
        })
    );
    case!(
        "FindCommit",
        "revision",
        commits.find_commit(FindCommitRequest {
            repository: repo(),
            revision: long.clone(),
            ..Default::default()
        })
    );
    case!(
        "CommitIsAncestor",
        "revision",
        commits.commit_is_ancestor(CommitIsAncestorRequest {
            repository: repo(),
            ancestor_id: String::from_utf8(long.clone()).unwrap(),
            child_id: "main".into(),
        })
    );
    case!(
        "TreeEntry",
        "path",
        commits.tree_entry(TreeEntryRequest {
            repository: repo(),
            revision: b"main".to_vec(),
            path: long.clone(),
            ..Default::default()
        })
    );
    case!(
        "LastCommitForPath",
        "path",
        commits.last_commit_for_path(LastCommitForPathRequest {
            repository: repo(),
            revision: b"main".to_vec(),
            path: long.clone(),
            ..Default::default()
        })
    );
    case!(
        "GetTreeEntries",
        "path",
        commits.get_tree_entries(GetTreeEntriesRequest {
            repository: repo(),
            revision: b"main".to_vec(),
            path: long.clone(),
            ..Default::default()
        })
    );
    case!(
        "CountCommits",
        "path",
        commits.count_commits(CountCommitsRequest {
            repository: repo(),
            revisions: vec![b"main".to_vec()],
            path: long.clone(),
            ..Default::default()
        })
    );
    let want_tail = " bytes (max 4096)";
    for (what, result, field) in results {
        let e = result
            .err()
            .unwrap_or_else(|| panic!("{what} accepted a huge argument"));
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(
            e.message().starts_with(&format!("{field} too long: "))
                && e.message().ends_with(want_tail),
            "{what}: {:?}",
            e.message()
        );
    }
    // A ref component over NAME_MAX (but under the bound) simply doesn't exist.
    let over_name_max = [b"refs/heads/".to_vec(), vec![b'a'; 300]].concat();
    let found = refs
        .ref_exists(RefExistsRequest {
            repository: repo(),
            r#ref: over_name_max,
        })
        .await
        .unwrap()
        .into_inner()
        .value;
    assert!(!found);
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// A storage removed while the server runs is `NOT_FOUND` naming the storage (as Gitaly
/// answers), nothing is recreated by a call, and the server serves it again once it is back,
/// with its pre-receive hook still deciding pushes.
#[tokio::test]
async fn removed_storage_is_not_found_and_recovers() {
    let hook_dir = tempfile::tempdir().unwrap();
    let hook = hook_dir.path().join("pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nif grep -q refs/heads/frozen; then echo frozen >&2; exit 1; fi\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut d = json_daemon(&format!("[hooks]\npre_receive = \"{}\"\n", hook.display()));
    let _w = d.seed("a.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let mut commits = CommitServiceClient::new(ch.clone());

    std::fs::remove_dir_all(d.storage()).unwrap();
    let e = repos
        .repository_exists(RepositoryExistsRequest {
            repository: Some(d.repo("a.git")),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(e.message(), "storage does not exist: \"default\"");
    let e = commits
        .find_commit(FindCommitRequest {
            repository: Some(d.repo("a.git")),
            revision: b"main".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = repos
        .create_repository(CreateRepositoryRequest {
            repository: Some(d.repo("new.git")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(!d.storage().exists(), "a call recreated the storage");

    // Back (empty): served again.
    std::fs::create_dir(d.storage()).unwrap();
    let exists = repos
        .repository_exists(RepositoryExistsRequest {
            repository: Some(d.repo("a.git")),
        })
        .await
        .unwrap()
        .into_inner()
        .exists;
    assert!(!exists);
    repos
        .create_repository(CreateRepositoryRequest {
            repository: Some(d.repo("new.git")),
            ..Default::default()
        })
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    git_ok(work.path(), &["init", "-q", "-b", "main"]);
    git_ok(work.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
    let url = ssh_url("new.git");
    let out = ssh_git(&d, work.path(), &["push", "-q", &url, "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ssh_git(&d, work.path(), &["push", "-q", &url, "main:frozen"]);
    assert!(!out.status.success(), "the pre-receive hook no longer ran");
    assert!(String::from_utf8_lossy(&out.stderr).contains("frozen"));
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// RemoveRepository normalises its path: `x.git/.` removes `x.git`; a path that normalises
/// to the storage root is refused, and the storage stays intact.
#[tokio::test]
async fn remove_repository_normalises() {
    let mut d = json_daemon("");
    let _x = d.seed("x.git");
    let _k = d.seed("keep.git");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let mut repos = RepositoryServiceClient::new(ch.clone());
    let remove = |rel: &str| RemoveRepositoryRequest {
        repository: Some(d.repo(rel)),
    };
    repos.remove_repository(remove("x.git/.")).await.unwrap();
    assert!(!d.storage().join("x.git").exists());
    for rel in ["keep.git/..", ".", "./", "keep.git/./..//"] {
        let e = repos.remove_repository(remove(rel)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{rel}: {e:?}");
    }
    assert!(d.storage().join("keep.git/HEAD").is_file());
    let e = repos
        .remove_repository(remove("x.git/."))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

/// A call to a method or service the server doesn't have is `UNIMPLEMENTED` with grpc-go's
/// message, from the server itself (a raw tonic client adds nothing) and through our client.
#[tokio::test]
async fn unknown_methods_say_so() {
    use tonic::codegen::http::uri::PathAndQuery;
    let mut d = json_daemon("");
    let ch = d.channel().await;
    let base = warm_baseline(&d, &ch).await;
    let cases = [
        (
            "/gitaly.RefService/NoSuch",
            "unknown method NoSuch for service gitaly.RefService",
        ),
        ("/gitaly.NoSuch/Method", "unknown service gitaly.NoSuch"),
        (
            "/grpc.health.v1.Health/NoSuch",
            "unknown method NoSuch for service grpc.health.v1.Health",
        ),
    ];
    for (path, want) in cases {
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.unwrap();
        let e = grpc
            .unary(
                tonic::Request::new(Vec::new()),
                PathAndQuery::from_static(path),
                gitrpc_client::raw::RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented, "{path}");
        assert_eq!(e.message(), want, "{path}");
    }
    let client = gitrpc_client::Client::connect(&d.address(), &Default::default())
        .await
        .unwrap();
    let e = client
        .call_unary("/gitaly.RefService/NoSuch", Vec::new())
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        "unknown method NoSuch for service gitaly.RefService"
    );
    d.assert_healthy(&base, RSS_SLACK_KIB);
}

// ---- helpers ---------------------------------------------------------------------------

/// A daemon logging JSON lines, so the RPC log (which git each call ran) can be read.
/// Idle cat-file processes are reaped within a second, so health checks see no git.
fn json_daemon(extra: &str) -> Daemon {
    Daemon::start(&format!(
        "[logging]\nformat = \"json\"\n[catfile]\nidle_ttl = 1\n{extra}"
    ))
}

/// A few calls, then the baseline.
async fn warm_baseline(d: &Daemon, ch: &Channel) -> Baseline {
    let mut c = RepositoryServiceClient::new(ch.clone());
    for _ in 0..3 {
        let _ = c
            .repository_exists(RepositoryExistsRequest {
                repository: Some(d.repo("a.git")),
            })
            .await;
    }
    d.baseline()
}

fn assert_refused(e: &tonic::Status, opt: &str) {
    assert_eq!(e.code(), Code::InvalidArgument, "{opt}: {e:?}");
    assert!(e.message().contains("git_config_options"), "{opt}: {e:?}");
    assert!(!e.message().contains("root:"), "{opt}: {e:?}");
}

/// `(method, code, git subcommands)` of the finished RPCs whose method contains `method`,
/// once there are at least `n` of them (the line is written as the response ends).
fn wait_for_rpcs(d: &Daemon, method: &str, n: usize) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls: Vec<_> = d
            .log()
            .lines()
            .filter(|l| l.contains("\"finished rpc\""))
            .map(|l| {
                (
                    json_field(l, "grpc.method"),
                    json_field(l, "grpc.code"),
                    json_field(l, "git"),
                )
            })
            .filter(|(m, _, _)| m.contains(method))
            .collect();
        if calls.len() >= n || Instant::now() > deadline {
            assert_eq!(calls.len(), n, "{calls:?}");
            return calls;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json_field(line: &str, name: &str) -> String {
    let key = format!("\"{name}\":\"");
    let Some(i) = line.find(&key) else {
        return String::new();
    };
    let rest = &line[i + key.len()..];
    rest[..rest.find('"').unwrap_or(rest.len())].to_string()
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

/// `git pack-objects --revs --stdout` of `revs` (one per line) in `cwd`.
fn pack_objects(cwd: &Path, revs: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(["pack-objects", "--revs", "--stdout", "-q"])
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(revs.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// One pkt-line.
fn pkt(line: &str) -> Vec<u8> {
    format!("{:04x}{line}", line.len() + 4).into_bytes()
}

async fn collect<T>(resp: tonic::Response<tonic::Streaming<T>>) -> Vec<T> {
    let mut s = resp.into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        out.push(m);
    }
    out
}

fn ssh_url(rel: &str) -> String {
    format!("ssh://gitrpc/{STORAGE}/{rel}")
}

/// Run the test's git with `gitrpc-ssh` as its ssh, talking to `d`.
fn ssh_git(d: &Daemon, cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .env(
            "GIT_SSH_COMMAND",
            format!(
                "{} --address {}",
                env!("CARGO_BIN_EXE_gitrpc-ssh"),
                d.address()
            ),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

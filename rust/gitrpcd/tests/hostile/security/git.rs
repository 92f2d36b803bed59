//! What a caller can make git do: config options, hooks, huge arguments.

use std::path::Path;

use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::smart_http_service_client::SmartHttpServiceClient;
use gitrpc_proto::gitaly::ssh_service_client::SshServiceClient;
use gitrpc_proto::gitaly::*;
use tonic::Code;

use super::*;

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

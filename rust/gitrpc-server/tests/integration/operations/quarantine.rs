//! Quarantine: hooks see the new objects, the repository doesn't until the hooks accepted;
//! a refused or abandoned operation leaves no object behind; read RPCs honour object
//! directories only when they are the repository's own quarantines.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType as A;
use gitrpc_proto::gitaly::*;
use gitrpc_server::{HookEvent, HookFn, HookKind, Hooks, Rejected};
use tonic::Code;

use super::{action, commit_files, g, has_object, header, quarantines, script, snapshot, Ops};

#[tokio::test]
async fn executables_see_quarantined_objects_that_a_refusal_discards() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    for (name, body) in [
        ("pre-receive", format!("read old new ref; git cat-file -e $new && git rev-parse $new^{{tree}} > {}; exit 1", out.display())),
        ("update", format!("git cat-file -e $3 && git rev-parse $3^{{tree}} > {}; exit 1", out.display())),
    ] {
        let exe = script(d.path(), name, &body);
        let s = Ops::with(
            |c| match name {
                "update" => c.hooks.update = Some(exe),
                _ => c.hooks.pre_receive = Some(exe),
            },
            Hooks::default(),
        )
        .await;
        let f = s.fixture("r.git");
        let before = snapshot(&f.path);
        let _ = std::fs::remove_file(&out);
        let e = commit_files(
            &mut s.ops(),
            header(s.repo("r.git"), "main", "m"),
            vec![action(A::Create, "secret.txt", b"quarantined content")],
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{name}: {e:?}");
        let tree = std::fs::read_to_string(&out).expect("the hook saw the commit");
        let tree = tree.trim();
        assert_eq!(tree.len(), 40);
        assert!(!has_object(&f.path, tree), "{name}: the rejected tree is gone");
        assert_eq!(snapshot(&f.path), before, "{name}: nothing written");
    }
}

#[tokio::test]
async fn callbacks_read_the_quarantine_through_read_rpcs() {
    let client: Arc<OnceLock<gitrpc_client::Client>> = Arc::default();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept: Arc<Mutex<Option<Repository>>> = Arc::default();
    let pre: HookFn = {
        let (client, seen, kept) = (client.clone(), seen.clone(), kept.clone());
        Arc::new(move |e: HookEvent| {
            let (client, seen, kept) = (client.clone(), seen.clone(), kept.clone());
            Box::pin(async move {
                let c = client.get().expect("client set").clone();
                let new = e.changes[0].new_oid.clone();
                let commit = c
                    .find_commit(&e.repository, new.as_bytes())
                    .await
                    .map_err(|s| Rejected(s.to_string()))?;
                let subject = commit.map(|c| String::from_utf8_lossy(&c.subject).into_owned());
                let entry = c
                    .tree_entry(&e.repository, new.as_bytes(), b"secret.txt", 0)
                    .await
                    .map_err(|s| Rejected(s.to_string()))?;
                let blob = match &entry {
                    Some(t) => c
                        .get_blob(&e.repository, &t.oid, -1)
                        .await
                        .map_err(|s| Rejected(s.to_string()))?
                        .map(|b| b.data),
                    None => None,
                };
                let mut plain = e.repository.clone();
                plain.git_object_directory.clear();
                plain.git_alternate_object_directories.clear();
                let outside = c
                    .find_commit(&plain, new.as_bytes())
                    .await
                    .map_err(|s| Rejected(s.to_string()))?;
                seen.lock().unwrap().push(format!(
                    "{subject:?} {:?} {}",
                    blob.map(|b| String::from_utf8_lossy(&b).into_owned()),
                    outside.is_some()
                ));
                *kept.lock().unwrap() = Some(e.repository.clone());
                match e.kind {
                    HookKind::PreReceive => Err(Rejected::from("read it, refused it")),
                    _ => Ok(()),
                }
            })
        })
    };
    let s = Ops::with(
        |_| {},
        Hooks {
            pre_receive: Some(pre),
            ..Default::default()
        },
    )
    .await;
    let _ = client.set(s.client());
    let f = s.fixture("r.git");
    let before = snapshot(&f.path);
    let e = commit_files(
        &mut s.ops(),
        header(s.repo("r.git"), "main", "quarantined subject"),
        vec![action(A::Create, "secret.txt", b"quarantined content")],
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.message(),
        "denied by custom hooks: update reference: running pre-receive hooks: read it, refused it"
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["Some(\"quarantined subject\") Some(\"quarantined content\") false"]
    );
    assert_eq!(snapshot(&f.path), before);
    // After the operation its quarantine is gone: naming it is NOT_FOUND.
    let q = kept.lock().unwrap().clone().unwrap();
    let e = CommitServiceClient::new(s.channel.clone())
        .find_commit(FindCommitRequest {
            repository: Some(q.clone()),
            revision: b"main".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(
        e.message(),
        format!(
            "object directory does not exist: {:?}",
            q.git_object_directory
        )
    );
}

#[tokio::test]
async fn object_directories_are_bounded_to_the_repository() {
    let s = Ops::start().await;
    let f = s.fixture("r.git");
    let _other = s.fixture("other.git");
    std::fs::create_dir_all(s.path("other.git/objects/tmp_objdir-x")).unwrap();
    std::fs::create_dir_all(f.path.join("objects/tmp_objdir-incoming-ok")).unwrap();
    std::os::unix::fs::symlink(
        s.path("other.git/objects/tmp_objdir-x"),
        f.path.join("objects/tmp_objdir-evil"),
    )
    .unwrap();
    let mut commits = CommitServiceClient::new(s.channel.clone());
    let ask = |dir: &str, alts: &[&str]| FindCommitRequest {
        repository: Some(Repository {
            git_object_directory: dir.into(),
            git_alternate_object_directories: alts.iter().map(|a| a.to_string()).collect(),
            ..s.repo("r.git")
        }),
        revision: b"main".to_vec(),
        ..Default::default()
    };
    // The repository's own quarantine (empty) plus its objects: main is found.
    let found = commits
        .find_commit(ask("objects/tmp_objdir-incoming-ok", &["objects"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.commit.unwrap().id, f.rev_parse("main"));
    for (dir, alts) in [
        ("../other.git/objects", &["objects"][..]),
        ("/tmp", &[]),
        ("objects/pack", &[]),
        ("objects/../objects/tmp_objdir-incoming-ok", &[]),
        ("../other.git/objects/tmp_objdir-x", &[]),
        ("objects/tmp_objdir-evil", &["objects"]),
        ("objects/tmp_objdir-incoming-ok", &["../other.git/objects"]),
    ] {
        let e = commits.find_commit(ask(dir, alts)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{dir} {alts:?}: {e:?}");
    }
}

#[tokio::test]
async fn an_abandoned_operation_leaves_no_quarantine() {
    let d = tempfile::tempdir().unwrap();
    let exe = script(d.path(), "pre-receive", "exec sleep 30");
    let s = Ops::with(|c| c.hooks.pre_receive = Some(exe), Hooks::default()).await;
    let f = s.fixture("r.git");
    let before = snapshot(&f.path);
    let mut msgs = vec![UserCommitFilesRequest {
        user_commit_files_request_payload: Some(
            user_commit_files_request::UserCommitFilesRequestPayload::Header(header(
                s.repo("r.git"),
                "main",
                "m",
            )),
        ),
    }];
    msgs.push(UserCommitFilesRequest {
        user_commit_files_request_payload: Some(
            user_commit_files_request::UserCommitFilesRequestPayload::Action(
                UserCommitFilesAction {
                    user_commit_files_action_payload: Some(
                        user_commit_files_action::UserCommitFilesActionPayload::Header(
                            action(A::Create, "x", b"").0,
                        ),
                    ),
                },
            ),
        ),
    });
    let mut req = tonic::Request::new(futures::stream::iter(msgs));
    req.set_timeout(Duration::from_secs(2));
    let e = s.ops().user_commit_files(req).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e:?}"
    );
    for _ in 0..200 {
        if quarantines(&f.path).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(snapshot(&f.path), before);
    assert!(!g(&f.path, &["count-objects", "-v"]).is_empty());
}

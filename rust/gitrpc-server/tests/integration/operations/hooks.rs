//! The hook chain of operations: executables (`[hooks]`) and callbacks, their order,
//! environment, refusals (each RPC's own wording and detail), post-receive that can't
//! refuse, timeouts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitrpc_proto::gitaly::user_commit_files_action_header::ActionType as A;
use gitrpc_proto::gitaly::*;
use gitrpc_server::{HookEvent, HookFn, HookKind, Hooks, Protocol, Rejected};
use tonic::Code;

use super::{action, commit_files, detail, g, header, script, snapshot, ts, user, Ops};

fn file() -> Vec<(UserCommitFilesActionHeader, Vec<u8>)> {
    vec![action(A::Create, "hooked.txt", b"h")]
}

/// A server whose `[hooks]` executables are `(name, body)` scripts.
async fn with_scripts(scripts: &[(&str, &str)], timeout: Option<&str>) -> (Ops, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = scripts
        .iter()
        .map(|(n, b)| (n.to_string(), script(dir.path(), n, b)))
        .collect();
    let timeout = timeout.map(|t| gitrpc_server::config::duration::parse(t).unwrap());
    let s = Ops::with(
        |c| {
            for (name, p) in paths {
                match name.as_str() {
                    "pre-receive" => c.hooks.pre_receive = Some(p),
                    "update" => c.hooks.update = Some(p),
                    _ => c.hooks.post_receive = Some(p),
                }
            }
            if let Some(t) = timeout {
                c.hooks.timeout = t;
            }
        },
        Hooks::default(),
    )
    .await;
    (s, dir)
}

#[tokio::test]
async fn executables_run_in_order_with_gitalys_environment() {
    let log = tempfile::tempdir().unwrap();
    let out = log.path().join("log");
    let body = |name: &str| {
        format!(
            "{{ echo \"== {name} $* cwd=$(pwd)\"; cat; env | grep -E '^(GL_|GIT_|GITRPC_)' | sort; }} >> {}",
            out.display()
        )
    };
    let (s, _d) = with_scripts(
        &[
            ("pre-receive", &body("pre-receive")),
            ("update", &body("update")),
            ("post-receive", &body("post-receive")),
        ],
        None,
    )
    .await;
    let f = s.fixture("r.git");
    let old = f.rev_parse("main");
    let r = commit_files(&mut s.ops(), header(s.repo("r.git"), "main", "m"), file())
        .await
        .unwrap();
    let new = r.branch_update.unwrap().commit_id;
    let log = std::fs::read_to_string(&out).unwrap();
    let sections: Vec<&str> = log.split("== ").filter(|x| !x.is_empty()).collect();
    assert_eq!(sections.len(), 3, "{log}");
    let path = f.path.display().to_string();
    let change = format!("{old} {new} refs/heads/main\n");
    assert!(
        sections[0].starts_with(&format!("pre-receive  cwd={path}\n{change}")),
        "{}",
        sections[0]
    );
    assert!(
        sections[1].starts_with(&format!("update refs/heads/main {old} {new} cwd={path}\n")),
        "{}",
        sections[1]
    );
    assert!(
        sections[2].starts_with(&format!("post-receive  cwd={path}\n{change}")),
        "{}",
        sections[2]
    );
    for (i, sec) in sections.iter().enumerate() {
        let env: Vec<&str> = sec
            .lines()
            .filter(|l| l.contains('=') && !l.contains(' '))
            .collect();
        let has = |kv: &str| env.contains(&kv);
        assert!(
            has("GL_ID=user-123") && has("GL_USERNAME=janedoe") && has("GL_PROTOCOL=web"),
            "{sec}"
        );
        assert!(
            has("GL_REPOSITORY=project-5") && has("GL_PROJECT_PATH=group/r.git"),
            "{sec}"
        );
        assert!(has(&format!("GIT_DIR={path}")), "{sec}");
        let quarantine = env
            .iter()
            .find_map(|l| l.strip_prefix("GIT_OBJECT_DIRECTORY="));
        if i < 2 {
            let q = quarantine.expect("quarantine visible");
            assert!(
                q.starts_with(&format!("{path}/objects/tmp_objdir-gitrpc-")),
                "{q}"
            );
            assert!(has(&format!("GIT_QUARANTINE_PATH={q}")), "{sec}");
            assert!(
                has(&format!("GIT_ALTERNATE_OBJECT_DIRECTORIES={path}/objects")),
                "{sec}"
            );
        } else {
            assert!(
                quarantine.is_none(),
                "post-receive runs after migration: {sec}"
            );
        }
        let ours: Vec<&&str> = env.iter().filter(|l| l.starts_with("GITRPC_")).collect();
        assert!(
            ours.iter().all(|l| l.starts_with("GITRPC_OWNER=")),
            "{ours:?}"
        );
    }
}

#[tokio::test]
async fn executable_refusals_as_gitaly_words_them() {
    for (name, body, message, stdout, stderr) in [
        (
            "pre-receive",
            "echo out; echo err >&2; exit 1",
            "running pre-receive hooks: err\n",
            "out\n",
            "err\n",
        ),
        (
            "pre-receive",
            "echo only-out; exit 1",
            "running pre-receive hooks: only-out\n",
            "only-out\n",
            "",
        ),
        (
            "update",
            "echo nope >&2; exit 3",
            "running update hooks: nope\n",
            "",
            "nope\n",
        ),
    ] {
        let (s, d) = with_scripts(&[(name, body)], None).await;
        let f = s.fixture("r.git");
        let before = snapshot(&f.path);
        let e = commit_files(&mut s.ops(), header(s.repo("r.git"), "main", "m"), file())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert_eq!(
            e.message(),
            format!("denied by custom hooks: update reference: {message}")
        );
        let dt: UserCommitFilesError = detail(&e, "UserCommitFilesError").unwrap();
        let Some(user_commit_files_error::Error::CustomHook(h)) = dt.error else {
            panic!("{dt:?}")
        };
        let kind = if name == "update" {
            custom_hook_error::HookType::Update
        } else {
            custom_hook_error::HookType::Prereceive
        };
        assert_eq!(
            (h.hook_type, h.stdout.as_slice(), h.stderr.as_slice()),
            (kind as i32, stdout.as_bytes(), stderr.as_bytes())
        );
        assert_eq!(snapshot(&f.path), before, "nothing written");
        drop(d);
    }
    let (s, d) = with_scripts(&[("pre-receive", "exit 1")], None).await;
    let _f = s.fixture("r.git");
    let e = commit_files(&mut s.ops(), header(s.repo("r.git"), "main", "m"), file())
        .await
        .unwrap_err();
    let hook = d.path().join("pre-receive").canonicalize().unwrap();
    assert_eq!(
        e.message(),
        format!("denied by custom hooks: update reference: running pre-receive hooks: error executing \"{}\": exit status 1", hook.display())
    );
    // A failing post-receive can't undo the change.
    let (s, _d) = with_scripts(&[("post-receive", "echo broken >&2; exit 1")], None).await;
    let f = s.fixture("r.git");
    let r = commit_files(&mut s.ops(), header(s.repo("r.git"), "main", "m"), file())
        .await
        .unwrap();
    assert_eq!(
        g(&f.path, &["rev-parse", "main"]),
        r.branch_update.unwrap().commit_id
    );
}

#[tokio::test]
async fn timeouts_kill_the_hook_and_refuse() {
    let pidfile = tempfile::tempdir().unwrap();
    let pid = pidfile.path().join("pid");
    let (s, _d) = with_scripts(
        &[(
            "pre-receive",
            &format!("echo $$ > {}; exec sleep 60", pid.display()),
        )],
        Some("1s"),
    )
    .await;
    let f = s.fixture("r.git");
    let before = snapshot(&f.path);
    let started = Instant::now();
    let e = commit_files(&mut s.ops(), header(s.repo("r.git"), "main", "m"), file())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(
        e.message(),
        "denied by custom hooks: update reference: running pre-receive hooks: pre-receive hook timed out after 1s"
    );
    let pid = std::fs::read_to_string(&pid).unwrap().trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        assert!(Instant::now() < deadline, "the hook's sleep survived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(snapshot(&f.path), before);

    // A callback that never answers.
    let never: HookFn = Arc::new(|_| Box::pin(std::future::pending()));
    let s = Ops::with(
        |c| c.hooks.timeout = Duration::from_secs(1),
        Hooks {
            update: Some(never),
            ..Default::default()
        },
    )
    .await;
    let _f = s.fixture("r.git");
    let e = commit_files(&mut s.ops(), header(s.repo("r.git"), "main", "m"), file())
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        "denied by custom hooks: update reference: running update hooks: update hook timed out after 1s"
    );
}

/// Callbacks recording what they saw; pre-receive refuses when `refuse` says so.
fn recording(seen: Arc<Mutex<Vec<HookEvent>>>, refuse: Option<&'static str>) -> Hooks {
    let hook = |kind: HookKind| -> HookFn {
        let seen = seen.clone();
        Arc::new(move |e: HookEvent| {
            seen.lock().unwrap().push(e);
            let verdict = match (kind, refuse) {
                (HookKind::PreReceive, Some(m)) => Err(Rejected::from(m)),
                _ => Ok(()),
            };
            Box::pin(async move { verdict })
        })
    };
    Hooks {
        pre_receive: Some(hook(HookKind::PreReceive)),
        update: Some(hook(HookKind::Update)),
        post_receive: Some(hook(HookKind::PostReceive)),
    }
}

#[tokio::test]
async fn callbacks_see_the_change_in_order() {
    let seen: Arc<Mutex<Vec<HookEvent>>> = Arc::default();
    let s = Ops::with(|_| {}, recording(seen.clone(), None)).await;
    let f = s.fixture("r.git");
    let old = f.rev_parse("main");
    let new = commit_files(&mut s.ops(), header(s.repo("r.git"), "main", "m"), file())
        .await
        .unwrap()
        .branch_update
        .unwrap()
        .commit_id;
    let seen = seen.lock().unwrap();
    let kinds: Vec<HookKind> = seen.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            HookKind::PreReceive,
            HookKind::Update,
            HookKind::PostReceive
        ]
    );
    for (i, e) in seen.iter().enumerate() {
        assert_eq!(e.protocol, Protocol::Web);
        assert_eq!(
            (e.user.gl_id.as_str(), e.user.gl_username.as_str()),
            ("user-123", "janedoe")
        );
        assert_eq!(e.user.name, b"Jane Doe");
        assert_eq!((e.storage(), e.relative_path()), ("default", "r.git"));
        assert_eq!(e.repository.gl_repository, "project-5");
        assert_eq!(e.changes.len(), 1);
        assert_eq!(
            (e.changes[0].old_oid.as_str(), e.changes[0].new_oid.as_str()),
            (old.as_str(), new.as_str())
        );
        assert!(e.push_options.is_empty());
        let quarantined = e
            .repository
            .git_object_directory
            .starts_with("objects/tmp_objdir-gitrpc-");
        assert_eq!(quarantined, i < 2, "{:?}", e.repository);
        if i < 2 {
            assert_eq!(e.repository.git_alternate_object_directories, ["objects"]);
        }
    }
}

#[tokio::test]
async fn each_rpc_words_a_refusal_its_own_way() {
    let seen: Arc<Mutex<Vec<HookEvent>>> = Arc::default();
    let s = Ops::with(|_| {}, recording(seen, Some("frozen"))).await;
    let f = s.fixture("r.git");
    let mut ops = s.ops();
    let before = snapshot(&f.path);
    let repo = || Some(s.repo("r.git"));
    let (c4, c3, f1) = (
        f.rev_parse("main"),
        f.rev_parse("main~1"),
        f.rev_parse("feature"),
    );
    let hook_of = |e: &tonic::Status, name: &str| -> Option<CustomHookError> {
        match name {
            "UserCreateBranchError" => detail::<UserCreateBranchError>(e, name)?
                .error
                .map(|user_create_branch_error::Error::CustomHook(h)| h),
            "UserDeleteBranchError" => match detail::<UserDeleteBranchError>(e, name)?.error? {
                user_delete_branch_error::Error::CustomHook(h) => Some(h),
                _ => None,
            },
            "UserCreateTagError" => match detail::<UserCreateTagError>(e, name)?.error? {
                user_create_tag_error::Error::CustomHook(h) => Some(h),
                _ => None,
            },
            "UserFFBranchError" => match detail::<UserFfBranchError>(e, name)?.error? {
                user_ff_branch_error::Error::CustomHook(h) => Some(h),
                _ => None,
            },
            "UserRevertError" => match detail::<UserRevertError>(e, name)?.error? {
                user_revert_error::Error::CustomHook(h) => Some(h),
                _ => None,
            },
            _ => None,
        }
    };
    let e = ops
        .user_create_branch(UserCreateBranchRequest {
            repository: repo(),
            branch_name: b"x".to_vec(),
            user: Some(user()),
            start_point: b"main".to_vec(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::PermissionDenied,
            "creation denied by custom hooks: running pre-receive hooks: frozen"
        )
    );
    let h = hook_of(&e, "UserCreateBranchError").unwrap();
    assert_eq!(
        (h.stderr.as_slice(), h.stdout.as_slice()),
        (&b"frozen"[..], &b""[..])
    );
    let e = ops
        .user_delete_branch(UserDeleteBranchRequest {
            repository: repo(),
            branch_name: b"feature".to_vec(),
            user: Some(user()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::PermissionDenied,
            "deletion denied by custom hooks: running pre-receive hooks: frozen"
        )
    );
    assert!(hook_of(&e, "UserDeleteBranchError").is_some());
    let e = ops
        .user_create_tag(UserCreateTagRequest {
            repository: repo(),
            tag_name: b"v9".to_vec(),
            user: Some(user()),
            target_revision: b"main".to_vec(),
            message: b"m".to_vec(),
            timestamp: ts(1),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::PermissionDenied,
            "reference update denied by custom hooks: running pre-receive hooks: frozen"
        )
    );
    assert!(hook_of(&e, "UserCreateTagError").is_some());
    g(&f.path, &["update-ref", "refs/heads/behind", &c3]);
    let e = ops
        .user_ff_branch(UserFfBranchRequest {
            repository: repo(),
            user: Some(user()),
            commit_id: c4.clone(),
            branch: b"behind".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.message()), (Code::PermissionDenied, "frozen"));
    assert!(hook_of(&e, "UserFFBranchError").is_some());
    let commit = Some(GitCommit {
        id: f1.clone(),
        ..Default::default()
    });
    let e = ops
        .user_revert(UserRevertRequest {
            repository: repo(),
            user: Some(user()),
            commit: commit.clone(),
            branch_name: b"feature".to_vec(),
            message: b"r".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::PermissionDenied, "revert: custom hook error")
    );
    assert!(hook_of(&e, "UserRevertError").is_some());
    g(
        &f.path,
        &["update-ref", "refs/heads/old", &f.rev_parse("main~3")],
    );
    let e = ops
        .user_cherry_pick(UserCherryPickRequest {
            repository: repo(),
            user: Some(user()),
            commit: Some(GitCommit {
                id: c4.clone(),
                ..Default::default()
            }),
            branch_name: b"old".to_vec(),
            message: b"p".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "access check failed")
    );
    let d: UserCherryPickError = detail(&e, "UserCherryPickError").unwrap();
    let Some(user_cherry_pick_error::Error::AccessCheck(a)) = d.error else {
        panic!("{d:?}")
    };
    assert_eq!(a.error_message, "frozen");
    // UserUpdateBranch and UserDeleteTag answer with the message instead of an error.
    let r = ops
        .user_update_branch(UserUpdateBranchRequest {
            repository: repo(),
            branch_name: b"main".to_vec(),
            user: Some(user()),
            newrev: c3.clone().into_bytes(),
            oldrev: c4.clone().into_bytes(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.pre_receive_error, "frozen");
    let r = ops
        .user_delete_tag(UserDeleteTagRequest {
            repository: repo(),
            tag_name: b"v1.0".to_vec(),
            user: Some(user()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.pre_receive_error, "frozen");
    let after = snapshot(&f.path);
    let without = |s: &str| {
        s.lines()
            .filter(|l| !l.ends_with("/behind") && !l.ends_with("/old"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without(&after.refs), without(&before.refs), "no ref moved");
    assert_eq!(after.objects, before.objects, "no object written");
    assert!(after.quarantines.is_empty());
}

#[tokio::test]
async fn a_hook_in_the_config_and_in_code_is_refused_at_start() {
    let d = tempfile::tempdir().unwrap();
    let exe = script(d.path(), "pre-receive", "exit 0");
    let mut config = gitrpc_server::config::Config {
        storage: vec![gitrpc_server::config::Storage {
            name: "default".into(),
            path: d.path().join("s"),
        }],
        ..Default::default()
    };
    config.hooks.update = Some(exe.clone());
    let hook: HookFn = Arc::new(|_| Box::pin(async { Ok(()) }));
    let e = gitrpc_server::Serving::start_with_hooks(
        config.clone(),
        Hooks {
            update: Some(hook),
            ..Default::default()
        },
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "config: hooks.update: set in the config and in code; choose one"
    );
    config.hooks.update = Some(d.path().join("missing"));
    let e = gitrpc_server::Serving::start_with_hooks(config, Hooks::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "config: hooks.update: {} is not an executable file",
            d.path().join("missing").display()
        )
    );
}

#[tokio::test]
async fn http_pushes_name_their_protocol_and_pusher() {
    use gitrpc_proto::gitaly::smart_http_service_client::SmartHttpServiceClient;
    let seen: Arc<Mutex<Vec<HookEvent>>> = Arc::default();
    let s = Ops::with(|_| {}, recording(seen.clone(), None)).await;
    let f = s.fixture("r.git");
    let c1 = f.rev_parse("main~3");
    // A push of an existing commit to a new ref: the commands and an empty pack.
    let pack = crate::common::git_output(&f.path, &["pack-objects", "--stdout", "-q"]).stdout;
    let line = format!(
        "{} {c1} refs/heads/http-new\0report-status\n",
        "0".repeat(40)
    );
    let mut data = format!("{:04x}{line}0000", line.len() + 4).into_bytes();
    data.extend_from_slice(&pack);
    let req = PostReceivePackRequest {
        repository: Some(s.repo("r.git")),
        data,
        gl_id: "user-9".into(),
        gl_username: "bob".into(),
        ..Default::default()
    };
    let mut out = SmartHttpServiceClient::new(s.channel.clone())
        .post_receive_pack(futures::stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let mut answer = Vec::new();
    while let Some(m) = out.message().await.unwrap() {
        answer.extend_from_slice(&m.data);
    }
    assert!(
        String::from_utf8_lossy(&answer).contains("ok refs/heads/http-new"),
        "{answer:?}"
    );
    assert_eq!(g(&f.path, &["rev-parse", "http-new"]), c1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for e in seen.iter() {
        assert_eq!(e.protocol, Protocol::Http);
        assert_eq!(
            (e.user.gl_id.as_str(), e.user.gl_username.as_str()),
            ("user-9", "bob")
        );
    }
}

//! The hook chain of pushes, with the real git CLI through `gitrpc-ssh`: executables run by
//! git with Gitaly's environment (the pusher from `GL_ID`/`GL_USERNAME`), push options,
//! `update` per ref, post-receive output shown to the pusher; callbacks through the bridge,
//! reading the pushed commit from the quarantine; a refused push leaves no objects.

use super::support::*;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use gitrpc_server::{HookEvent, HookFn, HookKind, Hooks, Protocol, Rejected};

impl Daemon {
    /// A server-side repository with one commit on main, and a clone with one more commit
    /// ready to push.
    fn seed(&self, rel: &str) -> (PathBuf, tempfile::TempDir, String) {
        let bare = self.storage().join(rel);
        std::fs::create_dir_all(&bare).unwrap();
        self.ok(&bare, &["init", "--bare", "-q", "-b", "main"]);
        let work = tempfile::tempdir().unwrap();
        self.ok(work.path(), &["init", "-q", "-b", "main"]);
        std::fs::write(work.path().join("a.txt"), "a\n").unwrap();
        self.ok(work.path(), &["add", "."]);
        self.ok(work.path(), &["commit", "-qm", "one"]);
        self.ok(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
        std::fs::write(work.path().join("b.txt"), "pushed content\n").unwrap();
        self.ok(work.path(), &["add", "."]);
        self.ok(work.path(), &["commit", "-qm", "the pushed commit"]);
        let new = self.ok(work.path(), &["rev-parse", "HEAD"]);
        (bare, work, new)
    }
}

#[test]
fn executables_see_the_pusher_options_and_each_ref() {
    let hooks = tempfile::tempdir().unwrap();
    let log = hooks.path().join("log");
    let dump = |name: &str| {
        format!(
            "{{ echo \"== {name} $*\"; [ {name} = update ] || cat; env | grep -E '^(GL_|GIT_PUSH_OPTION|GIT_QUARANTINE_PATH)' | sort; }} >> {}",
            log.display()
        )
    };
    let pre = script(hooks.path(), "pre", &dump("pre-receive"));
    let update = script(
        hooks.path(),
        "update",
        &format!(
            "{}\ncase \"$1\" in refs/heads/blocked*) echo \"policy: $1 is blocked\"; exit 1;; esac",
            dump("update")
        ),
    );
    let post = script(
        hooks.path(),
        "post",
        &format!("{}\necho post says hi", dump("post-receive")),
    );
    let d = Daemon::start(&format!(
        "[hooks]\npre_receive = \"{}\"\nupdate = \"{}\"\npost_receive = \"{}\"\n",
        pre.display(),
        update.display(),
        post.display()
    ));
    let (bare, work, new) = d.seed("g/r.git");
    let old = d.ok(&bare, &["rev-parse", "main"]);
    let out = d.git_env(
        work.path(),
        &[
            "push",
            "-o",
            "ci.skip",
            "-o",
            "a b",
            &d.url("g/r.git"),
            "HEAD:main",
            "HEAD:refs/heads/blocked",
        ],
        &[
            ("GL_ID", "user-1"),
            ("GL_USERNAME", "jane"),
            ("GL_REPOSITORY", "project-1"),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the blocked ref fails the push");
    assert!(
        err.contains("policy: refs/heads/blocked is blocked"),
        "{err}"
    );
    assert!(err.contains("remote: post says hi"), "{err}");
    // update rejects its ref only.
    assert_eq!(d.ok(&bare, &["rev-parse", "main"]), new);
    assert!(!d
        .git_env(&bare, &["rev-parse", "--verify", "-q", "blocked"], &[])
        .status
        .success());
    let log = std::fs::read_to_string(&log).unwrap();
    let sections: Vec<&str> = log.split("== ").filter(|s| !s.is_empty()).collect();
    assert_eq!(sections.len(), 4, "{log}");
    let zero = "0".repeat(40);
    assert!(
        sections[0].starts_with(&format!(
            "pre-receive \n{old} {new} refs/heads/main\n{zero} {new} refs/heads/blocked\n"
        )),
        "{}",
        sections[0]
    );
    let updates: Vec<&str> = sections[1..3]
        .iter()
        .map(|s| s.lines().next().unwrap())
        .collect();
    assert!(
        updates.contains(&format!("update refs/heads/main {old} {new}").as_str()),
        "{updates:?}"
    );
    assert!(
        updates.contains(&format!("update refs/heads/blocked {zero} {new}").as_str()),
        "{updates:?}"
    );
    assert!(
        sections[3].starts_with(&format!("post-receive \n{old} {new} refs/heads/main\n")),
        "{}",
        sections[3]
    );
    for s in &sections {
        for kv in [
            "GL_ID=user-1",
            "GL_USERNAME=jane",
            "GL_PROTOCOL=ssh",
            "GL_REPOSITORY=project-1",
        ] {
            assert!(s.lines().any(|l| l == kv), "{kv} missing: {s}");
        }
    }
    for s in [sections[0], sections[3]] {
        for kv in [
            "GIT_PUSH_OPTION_COUNT=2",
            "GIT_PUSH_OPTION_0=ci.skip",
            "GIT_PUSH_OPTION_1=a b",
        ] {
            assert!(s.lines().any(|l| l == kv), "{kv} missing: {s}");
        }
    }
    assert!(
        sections[0].contains("GIT_QUARANTINE_PATH="),
        "pre-receive runs on the quarantine"
    );
    assert!(
        !sections[1].contains("GIT_PUSH_OPTION"),
        "update gets no push options"
    );
}

#[test]
fn callbacks_read_the_pushed_commit_and_a_refusal_discards_it() {
    let client: Arc<OnceLock<gitrpc_client::Client>> = Arc::default();
    type Seen = Vec<(HookEvent, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let hook = |kind: HookKind| -> HookFn {
        let (client, seen) = (client.clone(), seen.clone());
        Arc::new(move |e: HookEvent| {
            let (client, seen) = (client.clone(), seen.clone());
            Box::pin(async move {
                let c = client.get().unwrap().clone();
                let change = e.changes[0].clone();
                let subject = c
                    .find_commit(&e.repository, change.new_oid.as_bytes())
                    .await
                    .map_err(|s| Rejected(s.to_string()))?
                    .map(|c| String::from_utf8_lossy(&c.subject).into_owned());
                seen.lock().unwrap().push((e, subject));
                match (kind, change.reference.as_str()) {
                    (HookKind::PreReceive, "refs/heads/frozen") => {
                        Err(Rejected::from("frozen by policy"))
                    }
                    _ => Ok(()),
                }
            })
        })
    };
    let d = Daemon::embedded(Hooks {
        pre_receive: Some(hook(HookKind::PreReceive)),
        update: Some(hook(HookKind::Update)),
        post_receive: Some(hook(HookKind::PostReceive)),
    });
    let serving = &d.embedded.as_ref().unwrap().1;
    let _ = client.set(gitrpc_client::Client::from_service(
        serving.in_process(),
        None,
    ));
    let (bare, work, new) = d.seed("g/r.git");
    let out = d.git_env(
        work.path(),
        &[
            "push",
            "-o",
            "ci.skip",
            &d.url("g/r.git"),
            "HEAD:refs/heads/topic",
        ],
        &[("GL_ID", "user-7"), ("GL_USERNAME", "ada")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let seen = seen.lock().unwrap();
        let kinds: Vec<HookKind> = seen.iter().map(|(e, _)| e.kind).collect();
        assert_eq!(
            kinds,
            [
                HookKind::PreReceive,
                HookKind::Update,
                HookKind::PostReceive
            ]
        );
        for (e, subject) in seen.iter() {
            assert_eq!(e.protocol, Protocol::Ssh);
            assert_eq!(
                (e.user.gl_id.as_str(), e.user.gl_username.as_str()),
                ("user-7", "ada")
            );
            assert_eq!(
                subject.as_deref(),
                Some("the pushed commit"),
                "{:?}",
                e.kind
            );
        }
        let pre = &seen[0].0;
        assert!(
            pre.repository
                .git_object_directory
                .starts_with("objects/tmp_objdir-incoming-"),
            "{:?}",
            pre.repository
        );
        assert_eq!(pre.push_options, ["ci.skip"]);
        assert!(seen[1].0.push_options.is_empty());
    }
    // Refused: the pushed objects are gone with the quarantine.
    std::fs::write(work.path().join("c.txt"), "refused\n").unwrap();
    d.ok(work.path(), &["add", "."]);
    d.ok(work.path(), &["commit", "-qm", "refused commit"]);
    let refused = d.ok(work.path(), &["rev-parse", "HEAD"]);
    let out = d.git_env(
        work.path(),
        &["push", &d.url("g/r.git"), "HEAD:refs/heads/frozen"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frozen by policy"));
    assert!(!d
        .git_env(&bare, &["cat-file", "-e", &refused], &[])
        .status
        .success());
    assert!(d
        .git_env(&bare, &["cat-file", "-e", &new], &[])
        .status
        .success());
}

use crate::harness::git_ok;
use crate::support::*;

/// alice (`key-42`, may write): clone over protocol v2, fetch, push, ls-remote and
/// `git archive --remote`, with the path spellings users type (`g/p`, `/~/g/p.git`, scp).
#[test]
fn an_allowed_key_clones_fetches_and_pushes() {
    let door = Door::start("", None);
    let work = door.daemon.seed("g/p.git");
    let server = door.daemon.storage().join("g/p.git");
    let t = tempfile::tempdir().unwrap();
    let out = door.git(
        &door.alice,
        t.path(),
        &["clone", &door.url("g/p.git"), "c"],
        &[("GIT_TRACE_PACKET", "1")],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}\n{}", door.sshd.log());
    // Protocol v2 end to end: git sent GIT_PROTOCOL, sshd accepted it, gitrpc-shell and
    // gitrpcd passed it on, and upload-pack answered in v2.
    assert!(err.contains("< version 2"), "{err}");
    let c = t.path().join("c");
    assert_eq!(
        git_ok(&c, &["rev-parse", "HEAD"]),
        git_ok(&server, &["rev-parse", "main"])
    );
    // A push, then a fetch of someone else's commit.
    let pushed = commit(&c, "from-alice");
    door.git_ok(&door.alice, &c, &["push", "-q", "origin", "main"]);
    assert_eq!(git_ok(&server, &["rev-parse", "main"]).trim(), pushed);
    git_ok(
        work.path(),
        &["pull", "-q", server.to_str().unwrap(), "main"],
    );
    let other = commit(work.path(), "from-elsewhere");
    git_ok(
        work.path(),
        &["push", "-q", server.to_str().unwrap(), "main"],
    );
    door.git_ok(&door.alice, &c, &["fetch", "-q", "origin"]);
    assert_eq!(git_ok(&c, &["rev-parse", "origin/main"]).trim(), other);
    // Spellings: without .git, under ~, scp-like (the port comes from GIT_SSH_COMMAND).
    for url in [
        door.url("g/p"),
        door.url("~/g/p.git"),
        "root@127.0.0.1:g/p.git".to_string(),
    ] {
        let refs = door.git_ok(&door.alice, t.path(), &["ls-remote", &url]);
        assert!(
            refs.contains(&format!("{other}\trefs/heads/main")),
            "{url}: {refs}"
        );
    }
    // Protocol v0 too.
    let v0 = door.git_ok(
        &door.alice,
        t.path(),
        &[
            "-c",
            "protocol.version=0",
            "ls-remote",
            &door.url("g/p.git"),
        ],
    );
    assert!(v0.contains("refs/heads/main"));
    let tar = door.git(
        &door.alice,
        t.path(),
        &[
            "archive",
            "--remote",
            &door.url("g/p.git"),
            "main",
            "README.md",
        ],
        &[],
    );
    assert!(tar.status.success(), "{}", stderr(&tar));
    assert!(String::from_utf8_lossy(&tar.stdout).contains("one\ntwo"));
    // The application was asked with the key, the action and where the repository is.
    let log = door.access_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("key-42 git-receive-pack default g/p.git ip=127.0.0.1")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("key-42 git-upload-archive default g/p.git")),
        "{log:?}"
    );
}

/// eve (`key-99`): the application refuses; its message reaches her, git exits non-zero,
/// and gitrpcd never heard of it.
#[test]
fn a_refused_key_sees_the_applications_message() {
    let door = Door::start("", None);
    door.daemon.seed("g/p.git");
    let t = tempfile::tempdir().unwrap();
    let out = door.git(
        &door.eve,
        t.path(),
        &["clone", &door.url("g/p.git"), "c"],
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("remote: Unknown key: key-99"), "{err}");
    assert!(
        err.contains("Could not read from remote repository"),
        "{err}"
    );
    assert!(!t.path().join("c").exists());
    assert_eq!(door.ssh_rpcs(), 0.0, "an RPC was made for a refused key");
}

/// bob (`key-7`, read-only): clones, but his push is refused with the application's
/// message and the repository is unchanged.
#[test]
fn a_read_only_key_cannot_push() {
    let door = Door::start("", None);
    door.daemon.seed("g/p.git");
    let server = door.daemon.storage().join("g/p.git");
    let before = git_ok(&server, &["rev-parse", "main"]);
    let t = tempfile::tempdir().unwrap();
    door.git_ok(
        &door.bob,
        t.path(),
        &["clone", "-q", &door.url("g/p.git"), "c"],
    );
    let c = t.path().join("c");
    commit(&c, "from-bob");
    let out = door.git(&door.bob, &c, &["push", "origin", "main"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("remote: You are not allowed to push code to this project."),
        "{err}"
    );
    assert_eq!(git_ok(&server, &["rev-parse", "main"]), before);
}

/// A pre-receive hook that rejects: the pusher sees its message, the ref is unchanged, and
/// the hook saw who pushed (GL_ID from the application, GL_USERNAME, GL_REPOSITORY,
/// GL_PROTOCOL=ssh).
#[test]
fn a_pre_receive_rejection_is_shown_and_the_hook_knows_the_user() {
    let hooks = tempfile::tempdir().unwrap();
    let seen = hooks.path().join("seen.env");
    let hook = hooks.path().join("pre-receive.sh");
    write_exe(
        &hook,
        &format!(
            "#!/bin/sh\nenv | grep '^GL_' | sort > {}\necho 'frozen: pushes are closed today'\nexit 1\n",
            seen.display()
        ),
    );
    let door = Door::start(
        &format!("[hooks]\npre_receive = \"{}\"\n", hook.display()),
        None,
    );
    door.daemon.seed("g/p.git");
    let server = door.daemon.storage().join("g/p.git");
    let before = git_ok(&server, &["rev-parse", "main"]);
    let t = tempfile::tempdir().unwrap();
    door.git_ok(
        &door.alice,
        t.path(),
        &["clone", "-q", &door.url("g/p.git"), "c"],
    );
    let c = t.path().join("c");
    commit(&c, "blocked");
    let out = door.git(&door.alice, &c, &["push", "origin", "main"], &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("remote: frozen: pushes are closed today"),
        "{err}"
    );
    assert!(
        err.contains("[remote rejected] main -> main (pre-receive hook declined)"),
        "{err}"
    );
    assert_eq!(git_ok(&server, &["rev-parse", "main"]), before);
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "GL_ID=user-42\nGL_PROJECT_PATH=\nGL_PROTOCOL=ssh\nGL_REPOSITORY=project-1\nGL_USERNAME=alice\n"
    );
}

/// Anything but git's three commands with one path is refused before the application is
/// asked and before any RPC: logins, other programs, extra arguments, option injection,
/// escapes, shell tricks.
#[test]
fn other_commands_are_refused_before_anything_runs() {
    let door = Door::start("", None);
    door.daemon.seed("g/p.git");
    let marker = door.dir.path().join("pwned");
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "does not provide shell access"),
        (Some("ls /".into()), "disallowed command"),
        (Some("sh -c id".into()), "disallowed command"),
        (Some("git-upload-pack".into()), "disallowed command"),
        (
            Some("git-upload-pack 'g/p.git' 'x'".into()),
            "disallowed command",
        ),
        (
            Some(format!(
                "git-upload-pack --upload-pack=touch\\ {} 'g/p.git'",
                marker.display()
            )),
            "disallowed command",
        ),
        (Some("git upload-pack --help".into()), "disallowed command"),
        (Some("git-upload-pack '-h'".into()), "disallowed command"),
        (
            Some(format!(
                "git-upload-pack 'g/p.git'; touch {}",
                marker.display()
            )),
            "disallowed command",
        ),
        (Some("git-upload-pack $(id)".into()), "disallowed command"),
        (
            Some("git-upload-pack '../x.git'".into()),
            "repository not found",
        ),
        (
            Some("git-upload-pack 'g/../../x.git'".into()),
            "repository not found",
        ),
        (
            Some("git-upload-pack 'g/p.git".into()),
            "invalid SSH command: unterminated quote",
        ),
    ];
    for (command, message) in &cases {
        let out = door.ssh(&door.alice, command.as_deref());
        assert!(!out.status.success(), "{command:?} succeeded");
        let err = stderr(&out);
        assert!(err.contains(message), "{command:?}: {err}");
    }
    assert!(!marker.exists(), "an injected command ran");
    assert!(door.access_log().is_empty(), "{:?}", door.access_log());
    assert_eq!(door.ssh_rpcs(), 0.0);
}

//! The executor's guarantees, checked with real processes: posix_spawn (never fork),
//! process-group kill on cancel, capped stderr, the cat-file pool, native refs.
#![allow(clippy::disallowed_methods)] // tests build fixtures and run strace directly

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use gitrpc_git::refs::RefStore;
use gitrpc_git::{CatFilePool, CatFilePoolConfig, Command, Error, Git, ObjectType, Subcommand};

fn git_cli(dir: &Path, args: &[&str]) -> String {
    let out = StdCommand::new("git")
        .args(args)
        .current_dir(dir)
        // git_runs_with_a_clean_environment sets GIT_DIR in this process for a moment.
        .env_remove("GIT_DIR")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A non-bare repo with two commits changing `f.txt`; returns (tempdir, git dir).
fn repo() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    git_cli(d.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(d.path().join("f.txt"), "one\n").unwrap();
    git_cli(d.path(), &["add", "."]);
    git_cli(d.path(), &["commit", "-qm", "one"]);
    std::fs::write(d.path().join("f.txt"), "two\n").unwrap();
    git_cli(d.path(), &["commit", "-qam", "two"]);
    let gd = d.path().join(".git");
    (d, gd)
}

fn alive(pid: i32) -> bool {
    // A zombie still has a /proc entry; count it as dead only when reaped or in state Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

// --- posix_spawn proof -----------------------------------------------------------------

/// Child mode of `spawns_never_fork`: touch memory, then start git several ways.
#[tokio::test]
async fn spawn_probe_child() {
    if std::env::var_os("GITRPC_SPAWN_PROBE").is_none() {
        return;
    }
    let mut ballast = vec![0u8; 256 << 20];
    for i in (0..ballast.len()).step_by(4096) {
        ballast[i] = 1;
    }
    let git = Git::discover(None).await.unwrap();
    let (_d, gd) = repo_no_cli_in_child();
    git.output(&Command::new(Subcommand::Version))
        .await
        .unwrap();
    let mut cat = CatFilePool::new(git.clone(), CatFilePoolConfig::default())
        .get(&gd)
        .unwrap();
    cat.info("HEAD").await.unwrap();
    std::hint::black_box(&ballast);
}

/// The probe child gets its repository path from the parent (it must not run the git CLI
/// itself, or strace would see std's own spawns).
fn repo_no_cli_in_child() -> (Option<tempfile::TempDir>, PathBuf) {
    (
        None,
        PathBuf::from(std::env::var("GITRPC_SPAWN_PROBE").unwrap()),
    )
}

#[test]
fn spawns_never_fork() {
    let (_d, gd) = repo();
    let trace = tempfile::NamedTempFile::new().unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = StdCommand::new("strace")
        .args(["-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", "-o"])
        .arg(trace.path())
        .arg(&exe)
        .args([
            "--exact",
            "spawn_probe_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GITRPC_SPAWN_PROBE", &gd)
        .status();
    let status = match status {
        Ok(s) => s,
        Err(e) => panic!("strace is required for this test (script/setup installs it): {e}"),
    };
    assert!(status.success());
    let log = std::fs::read_to_string(trace.path()).unwrap();
    let process_creations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("clone") || l.contains("fork"))
        .filter(|l| !l.contains("CLONE_THREAD"))
        .filter(|l| !l.contains("resumed>"))
        .collect();
    assert!(
        process_creations.len() >= 2,
        "expected to see git spawned (version + cat-file):\n{log}"
    );
    for l in &process_creations {
        assert!(
            l.contains("CLONE_VM") && l.contains("CLONE_VFORK"),
            "a process was created without posix_spawn's CLONE_VM|CLONE_VFORK:\n{l}\n\nfull trace:\n{log}"
        );
        assert!(!l.contains(" fork(") && !l.contains(" vfork("), "{l}");
    }
}

// --- process groups and cancellation ---------------------------------------------------

#[tokio::test]
async fn dropping_a_process_kills_its_whole_group() {
    let (d, gd) = repo();
    let pidfile = d.path().join("grandchild.pid");
    let script = d.path().join("slow-diff.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 60\n",
            pidfile.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let git = Git::discover(None).await.unwrap();
    // `git diff --ext-diff` runs diff.external through the shell: a grandchild in our group.
    let p = git
        .spawn(
            &Command::in_repo(&gd, Subcommand::Diff)
                .config("diff.external", script.to_str().unwrap())
                .flag("--ext-diff")
                .rev("HEAD~1")
                .rev("HEAD"),
        )
        .unwrap();
    let git_pid = p.pid();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
        assert!(Instant::now() < deadline, "external diff never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(grandchild) && alive(git_pid));

    drop(p); // what a cancelled RPC does
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(git_pid) || alive(grandchild) {
        assert!(
            Instant::now() < deadline,
            "git or its child survived cancellation"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Reaped, not a zombie: /proc entry is gone entirely for our direct child.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !Path::new(&format!("/proc/{git_pid}")).exists(),
        "git left as a zombie"
    );
}

/// A caller that gives up while waiting for git (a dropped `wait_status` future, as when an
/// RPC is cancelled mid-call) kills git too.
#[tokio::test]
async fn abandoning_a_wait_kills_git() {
    let (d, gd) = repo();
    let script = d.path().join("slow-diff.sh");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let git = Git::discover(None).await.unwrap();
    let p = git
        .spawn(
            &Command::in_repo(&gd, Subcommand::Diff)
                .config("diff.external", script.to_str().unwrap())
                .flag("--ext-diff")
                .rev("HEAD~1")
                .rev("HEAD"),
        )
        .unwrap();
    let git_pid = p.pid();
    let waited = tokio::time::timeout(Duration::from_millis(200), p.wait_status()).await;
    assert!(waited.is_err(), "git finished: {waited:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(git_pid) {
        assert!(Instant::now() < deadline, "git survived an abandoned wait");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An observer that keeps what it is told.
#[derive(Default)]
struct Recorder {
    spawned: std::sync::Mutex<Vec<&'static str>>,
    exited: std::sync::Mutex<Vec<(&'static str, Option<gitrpc_git::Usage>)>>,
}

impl gitrpc_git::Observer for Recorder {
    fn spawned(&self, p: &gitrpc_git::LiveProcess, _latency: Duration) {
        self.spawned.lock().unwrap().push(p.subcommand);
    }
    fn exited(&self, p: &gitrpc_git::LiveProcess, usage: Option<gitrpc_git::Usage>) {
        self.exited.lock().unwrap().push((p.subcommand, usage));
    }
}

/// A finished git's CPU time and peak memory are read from its rusage (children it waited
/// for included) before it is reaped, and reported to its `Git`'s observer.
#[tokio::test]
async fn usage_of_finished_commands_is_reported() {
    let (d, gd) = repo();
    // The external diff touches a 64 MiB buffer (dd reads zeros into it).
    let script = d.path().join("big-diff.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ndd if=/dev/zero of=/dev/null bs=64M count=2 2>/dev/null\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let seen = std::sync::Arc::new(Recorder::default());
    let git = Git::discover_observed(None, seen.clone()).await.unwrap();
    assert_eq!(
        *seen.spawned.lock().unwrap(),
        ["version"],
        "discover's git version"
    );
    git.output(
        &Command::in_repo(&gd, Subcommand::Diff)
            .config("diff.external", script.to_str().unwrap())
            .flag("--ext-diff")
            .rev("HEAD~1")
            .rev("HEAD"),
    )
    .await
    .unwrap();
    let exited = seen.exited.lock().unwrap().clone();
    let (_, usage) = exited.iter().find(|(s, _)| *s == "diff").unwrap();
    let usage = usage.expect("rusage read through the pidfd");
    assert!(
        usage.max_rss > 32 << 20,
        "a diff over 32 MiB peak: {usage:?}"
    );
    assert!(
        !(usage.user + usage.system).is_zero(),
        "its CPU time: {usage:?}"
    );
    assert!(
        git.processes().list().is_empty(),
        "reaped, out of the table"
    );
}

/// A git killed because its caller gave up is accounted for too: its rusage is read before it
/// is reaped, like a finished one's; and it is in its `Git`'s process table until then (not
/// in another `Git`'s).
#[tokio::test]
async fn usage_of_cancelled_commands_is_reported() {
    let (_d, gd) = repo();
    let seen = std::sync::Arc::new(Recorder::default());
    let git = Git::discover_observed(None, seen.clone()).await.unwrap();
    let other = Git::discover(None).await.unwrap();
    // cat-file --batch waits on its stdin for ever: only cancelling ends it.
    let p = git
        .spawn(
            &Command::in_repo(&gd, Subcommand::CatFile)
                .flag("--batch")
                .stdin(),
        )
        .unwrap();
    let git_pid = p.pid();
    let listed = git.processes().list();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].pid, listed[0].subcommand), (git_pid, "cat-file"));
    assert_eq!(other.processes().count(), 0, "another Git's table");
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(p);
    let finished = || {
        seen.exited
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, u)| *s == "cat-file" && u.is_some())
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while finished() == 0 || alive(git_pid) {
        assert!(
            Instant::now() < deadline,
            "cancelled cat-file: finished {}, alive {}",
            finished(),
            alive(git_pid)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(finished(), 1);
    assert_eq!(git.processes().count(), 0);
}

#[tokio::test]
async fn failure_carries_capped_stderr() {
    let (_d, gd) = repo();
    let git = Git::discover(None).await.unwrap();
    let err = git
        .output(
            &Command::in_repo(&gd, Subcommand::RevParse)
                .flag("--verify")
                .rev("does-not-exist"),
        )
        .await
        .unwrap_err();
    match &err {
        Error::Failed { stderr, .. } => {
            assert!(stderr.contains("Needed a single revision"), "{stderr}")
        }
        other => panic!("unexpected {other:?}"),
    }
    // A flood of stderr is capped, and git isn't blocked by a full pipe. (A client's
    // revision is at most 4096 bytes: this one goes in as an argument of our own.)
    let long_rev = "x".repeat(40_000);
    let err = git
        .output(
            &Command::in_repo(&gd, Subcommand::RevParse)
                .flag("--verify")
                .arg(&long_rev),
        )
        .await
        .unwrap_err();
    assert!(err.stderr().unwrap().len() <= gitrpc_git::process_stderr_cap());
}

#[tokio::test]
async fn git_runs_with_a_clean_environment() {
    let git = Git::discover(None).await.unwrap();
    assert!(git.bin().is_absolute());
    let (_d, gd) = repo();
    // GIT_DIR in our environment must not leak into git (it would override --git-dir).
    std::env::set_var("GIT_DIR", "/nonexistent");
    let out = git
        .output(&Command::in_repo(&gd, Subcommand::RevParse).flag("--git-dir"))
        .await
        .unwrap();
    std::env::remove_var("GIT_DIR");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        gd.to_str().unwrap()
    );
}

// --- cat-file pool ---------------------------------------------------------------------

#[tokio::test]
async fn catfile_pool_reuses_and_matches_git() {
    let (d, gd) = repo();
    let git = Git::discover(None).await.unwrap();
    let pool = CatFilePool::new(git, CatFilePoolConfig::default());
    let head = git_cli(d.path(), &["rev-parse", "HEAD"]).trim().to_string();
    let pid;
    {
        let mut c = pool.get(&gd).unwrap();
        pid = c.pid();
        let info = c.info("HEAD").await.unwrap().unwrap();
        assert_eq!(info.oid, head);
        assert_eq!(info.kind, ObjectType::Commit);
        let (_, data) = c.read_object("HEAD:f.txt").await.unwrap().unwrap();
        assert_eq!(data, b"two\n");
        assert!(c.info("nope").await.unwrap().is_none());
    }
    // A ref updated behind the pool's back is seen by the reused process.
    git_cli(d.path(), &["commit", "-q", "--allow-empty", "-m", "three"]);
    let new_head = git_cli(d.path(), &["rev-parse", "HEAD"]).trim().to_string();
    let mut c = pool.get(&gd).unwrap();
    assert_eq!(c.pid(), pid, "process reused");
    assert_eq!(c.info("HEAD").await.unwrap().unwrap().oid, new_head);
    assert_eq!(pool.stats().0, 1, "one hit");
}

#[tokio::test]
async fn dirty_catfile_is_killed_not_reused() {
    let (_d, gd) = repo();
    let git = Git::discover(None).await.unwrap();
    let pool = CatFilePool::new(git, CatFilePoolConfig::default());
    let mut c = pool.get(&gd).unwrap();
    let pid = c.pid();
    c.contents("HEAD").await.unwrap().unwrap(); // body left unread
    assert!(c.is_dirty());
    drop(c);
    assert_eq!(pool.stats().2, 0, "dirty process not pooled");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < deadline, "dirty cat-file survived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut c = pool.get(&gd).unwrap();
    assert_ne!(c.pid(), pid);
    assert!(c.info("HEAD").await.unwrap().is_some());
}

#[tokio::test]
async fn idle_catfile_expires() {
    let (_d, gd) = repo();
    let git = Git::discover(None).await.unwrap();
    let pool = CatFilePool::new(
        git,
        CatFilePoolConfig {
            max_idle: 4,
            idle_ttl: Duration::from_millis(100),
        },
    );
    let pid = pool.get(&gd).unwrap().pid();
    assert_eq!(pool.stats().2, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.stats().2 > 0 || alive(pid) {
        assert!(Instant::now() < deadline, "idle process not expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGKILL a cat-file (as the OOM killer would) and wait until it is a zombie.
fn kill_and_wait(pid: i32) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < deadline, "cat-file survived SIGKILL");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn catfile_killed_while_idle_is_replaced() {
    let (_d, gd) = repo();
    let git = Git::discover(None).await.unwrap();
    let pool = CatFilePool::new(git, CatFilePoolConfig::default());
    // Died in the pool: skipped when leased.
    let pid = {
        let mut c = pool.get(&gd).unwrap();
        c.info("HEAD").await.unwrap().unwrap();
        c.pid()
    };
    kill_and_wait(pid);
    let mut c = pool.get(&gd).unwrap();
    assert_ne!(c.pid(), pid, "a dead process is not leased");
    assert!(c.info("HEAD").await.unwrap().is_some());
    // Died after the lease, before the next command: the command is sent again to a new one.
    let pid = c.pid();
    kill_and_wait(pid);
    let (_, data) = c.read_object("HEAD:f.txt").await.unwrap().unwrap();
    assert_eq!(data, b"two\n");
    assert_ne!(c.pid(), pid);
    drop(c);
    assert_eq!(pool.stats().2, 1, "the new process is pooled");
}

#[tokio::test]
async fn catfile_that_never_answered_is_not_retried() {
    let (_d, gd) = repo();
    let git = Git::discover(None).await.unwrap();
    let pool = CatFilePool::new(git, CatFilePoolConfig::default());
    let mut c = pool.get(&gd).unwrap();
    let pid = c.pid();
    kill_and_wait(pid);
    assert!(
        c.info("HEAD").await.is_err(),
        "a fresh process failing is an error"
    );
    assert_eq!(c.pid(), pid);
}

// --- native refs -----------------------------------------------------------------------

#[test]
fn native_refs_match_git() {
    let (d, gd) = repo();
    git_cli(d.path(), &["branch", "loose"]);
    git_cli(d.path(), &["branch", "packed", "HEAD~1"]);
    git_cli(d.path(), &["pack-refs", "--all"]);
    git_cli(d.path(), &["branch", "after-pack", "HEAD~1"]);
    let store = RefStore::open(&gd).unwrap();
    for name in [
        "refs/heads/main",
        "refs/heads/loose",
        "refs/heads/packed",
        "refs/heads/after-pack",
        "HEAD",
    ] {
        let want = git_cli(d.path(), &["rev-parse", "--verify", name])
            .trim()
            .to_string();
        assert_eq!(
            store.resolve(name).unwrap().as_deref(),
            Some(want.as_str()),
            "{name}"
        );
    }
    assert_eq!(
        store.head_target().unwrap().as_deref(),
        Some("refs/heads/main")
    );
    for absent in [
        "refs/heads/nope",
        "refs/heads",
        "refs/heads/../../config",
        "refs/heads/x.lock",
    ] {
        assert!(!store.exists(absent).unwrap(), "{absent}");
    }
}

/// Parsed packed-refs are cached per file; every rewrite of the file (pack-refs, a deleted or
/// updated packed ref) is seen by the very next lookup.
#[test]
fn packed_refs_cache_follows_rewrites() {
    let (d, gd) = repo();
    let store = RefStore::open(&gd).unwrap();
    let one = git_cli(d.path(), &["rev-parse", "HEAD~1"])
        .trim()
        .to_string();
    let two = git_cli(d.path(), &["rev-parse", "HEAD"]).trim().to_string();
    git_cli(d.path(), &["branch", "p", "HEAD~1"]);
    git_cli(d.path(), &["pack-refs", "--all"]);
    assert_eq!(store.resolve("refs/heads/p").unwrap(), Some(one.clone()));
    // Re-point it and pack again: the same path, rewritten.
    git_cli(d.path(), &["branch", "-f", "p", "HEAD"]);
    git_cli(d.path(), &["pack-refs", "--all"]);
    assert_eq!(store.resolve("refs/heads/p").unwrap(), Some(two));
    // Deleting a packed ref rewrites packed-refs without it.
    git_cli(d.path(), &["branch", "-D", "p"]);
    assert!(!store.exists("refs/heads/p").unwrap());
    // Many refs: all found, and a name that isn't there isn't.
    let mut input = String::new();
    for i in 0..3000 {
        input.push_str(&format!("create refs/tags/t{i} {one}\n"));
    }
    let mut child = StdCommand::new("git")
        .args(["update-ref", "--stdin"])
        .current_dir(d.path())
        .env_remove("GIT_DIR")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    git_cli(d.path(), &["pack-refs", "--all"]);
    for i in (0..3000).step_by(271) {
        assert_eq!(
            store.resolve(&format!("refs/tags/t{i}")).unwrap(),
            Some(one.clone())
        );
    }
    assert!(!store.exists("refs/tags/t3000").unwrap());
}

#[test]
fn reftable_repositories_fall_back_to_git() {
    let d = tempfile::tempdir().unwrap();
    git_cli(d.path(), &["init", "-q", "--ref-format=reftable"]);
    assert!(RefStore::open(&d.path().join(".git")).is_none());
}

/// The door for non-git programs: absolute paths only, a cleared environment, capped
/// output, and a timeout that kills the program's whole group.
mod external {
    use std::time::{Duration, Instant};

    use gitrpc_git::external::{ExternalError, Program, OUTPUT_CAP};

    #[tokio::test]
    async fn runs_with_only_the_given_environment() {
        let out = Program::new("/bin/sh")
            .unwrap()
            .arg("-c")
            .arg("echo \"[$X][$HOME]\"; echo err >&2; exit 3")
            .env("X", "1")
            .run()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"[1][]\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[tokio::test]
    async fn output_is_capped() {
        let out = Program::new("/bin/sh")
            .unwrap()
            .arg("-c")
            .arg("head -c 200000 /dev/zero")
            .run()
            .await
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), OUTPUT_CAP);
    }

    #[tokio::test]
    async fn relative_paths_and_missing_programs_are_refused() {
        assert!(matches!(
            Program::new("sh"),
            Err(ExternalError::NotAbsolute(_))
        ));
        let err = Program::new("/nonexistent/x").unwrap().run().await;
        assert!(matches!(err, Err(ExternalError::Spawn { .. })), "{err:?}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let started = Instant::now();
        let err = Program::new("/bin/sh")
            .unwrap()
            .arg("-c")
            .arg(format!("sleep 30 & echo $! > {}; wait", pidfile.display()))
            .timeout(Duration::from_millis(500))
            .run()
            .await;
        assert!(
            matches!(err, Err(ExternalError::TimedOut { .. })),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // SAFETY: kill(pid, 0) only checks existence.
        while unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid) {
            assert!(Instant::now() < deadline, "the sleep outlived the timeout");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    }
}

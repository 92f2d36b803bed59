use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::cache::*;
use crate::harness::signal;
use crate::support::*;

/// `git clone` through the Go client as gitlab-shell (SSHUploadPackWithSidechannel) with
/// the `remote_ip` metadata gitlab-shell sends.
fn clone_as(s: &Server, ip: &str, rel: &str, into: &std::path::Path, name: &str) -> Command {
    let mut c = git_cmd(into);
    c.env("GIT_SSH_COMMAND", format!("{} ssh", go_client().display()))
        .env("GITALY_ADDRESS", &s.unix)
        .env("GITALY_REMOTE_IP", ip)
        .args([
            "clone",
            "--bare",
            &format!("ssh://gitlab.example/default/{rel}"),
            name,
        ]);
    c
}

/// `[pack_objects_limiting]` with the cache, one slot per client address: while a
/// generation for 10.0.0.1 holds its slot (stopped), that client's hits are served at once,
/// its next miss waits and is refused after `max_queue_wait` (`RESOURCE_EXHAUSTED`, nothing
/// cached), and 10.0.0.2's miss runs on its own budget.
#[test]
fn limiting_applies_to_misses_per_client() {
    let s = server(
        "min_occurrences = 0",
        "[pack_objects_limiting]\nmax_concurrency = 1\nmax_queue_wait = \"1s\"\nkey = \"remote_ip\"",
    );
    let _hit = s.daemon.seed("hit.git");
    let _miss = s.daemon.seed("miss.git");
    let want = rev(&s.storage().join("miss.git"), "main");
    let t = tempfile::tempdir().unwrap();
    let out = clone_as(&s, "10.0.0.1", "hit.git", t.path(), "hit1")
        .output()
        .unwrap();
    assert_ok(&out, "the first clone");
    let refused = "gitrpc_pack_objects_generations_total{result=\"refused\"}";
    for attempt in 0..3 {
        let rel = format!("slow-{attempt}.git");
        slow_repo(&s, &rel, 16);
        let holder = clone_as(&s, "10.0.0.1", &rel, t.path(), &format!("slow{attempt}"))
            .process_group(0)
            .spawn()
            .unwrap();
        let Some(pid) = stop_generation(&s) else {
            assert_ok(&holder.wait_with_output().unwrap(), "early");
            continue;
        };
        let hold = "gitrpc_limit_in_flight{limiter=\"pack-objects\"}";
        assert_eq!(metric(&s, hold), 1.0);

        let hits0 = hits(&s);
        let out = clone_as(&s, "10.0.0.1", "hit.git", t.path(), "hit2")
            .output()
            .unwrap();
        assert_ok(&out, "a hit while the slot is held");
        assert_eq!(hits(&s) - hits0, 1.0);

        let out = clone_as(&s, "10.0.0.1", "miss.git", t.path(), "m1")
            .output()
            .unwrap();
        assert!(!out.status.success(), "a miss over the limit succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("maximum time in concurrency queue reached"),
            "{stderr}"
        );
        assert!(!t.path().join("m1").exists());
        assert_eq!(metric(&s, refused), 1.0);
        assert_eq!(s.calls(SIDE, "RESOURCE_EXHAUSTED"), 1.0);
        assert!(entries_of(&s, "miss.git").is_empty());

        let out = clone_as(&s, "10.0.0.2", "miss.git", t.path(), "m2")
            .output()
            .unwrap();
        assert_ok(&out, "another client's miss");
        assert_good_clone(&t.path().join("m2"), &want);

        signal(pid, libc::SIGCONT);
        assert_ok(&holder.wait_with_output().unwrap(), "the held clone");
        assert_eq!(metric(&s, hold), 0.0);
        assert_clean(&s);
        return;
    }
    panic!("pack-objects always finished before it could be stopped");
}

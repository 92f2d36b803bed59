//! `[servers]` in shell.toml: gitrpc-shell sends each session to its storage's servers.

use std::time::Duration;

use crate::harness::{git_ok, wait_for, Daemon};
use crate::support::*;

/// Two gitrpcd: `address` serves `default`; a second one, with its own `[auth]` token,
/// serves `shard-2`, which paths under `shard2/` name. Clone and push of a `shard2/` path
/// reach the second server only (its metrics; the push lands in its storage), a `default`
/// path the first; with the second server killed, only `shard2/` sessions fail.
#[test]
fn a_storage_in_servers_is_served_by_its_own_gitrpcd() {
    require_root();
    let shard = tempfile::tempdir().unwrap();
    let mut second = Daemon::start(&format!(
        "prometheus_listen_addr = \"127.0.0.1:0\"\n[auth]\ntoken = \"shard-secret\"\n\
         [[storage]]\nname = \"shard-2\"\npath = \"{}\"\n",
        shard.path().display()
    ));
    let app = tempfile::tempdir().unwrap();
    let shell = format!(
        "access_command = \"{}\"\n[storage_prefixes]\n\"shard2/\" = \"shard-2\"\n\
         [servers]\n\"shard-2\" = {{ address = \"{}\", token = \"shard-secret\" }}\n",
        access_script(app.path(), false).display(),
        second.address()
    );
    let door = Door::start("", Some(&shell));
    let work = door.daemon.seed("g/p.git");
    // The shard's repository has a commit the default storage's doesn't.
    let q = shard.path().join("g/q.git");
    std::fs::create_dir_all(&q).unwrap();
    git_ok(&q, &["init", "--bare", "-q", "-b", "main"]);
    let on_shard = commit(work.path(), "on-shard");
    git_ok(work.path(), &["push", "-q", q.to_str().unwrap(), "main"]);

    let t = tempfile::tempdir().unwrap();
    door.git_ok(
        &door.alice,
        t.path(),
        &["clone", "-q", &door.url("shard2/g/q.git"), "c"],
    );
    let c = t.path().join("c");
    assert_eq!(git_ok(&c, &["rev-parse", "HEAD"]).trim(), on_shard);
    let pushed = commit(&c, "pushed-to-shard");
    door.git_ok(&door.alice, &c, &["push", "-q", "origin", "main"]);
    assert_eq!(git_ok(&q, &["rev-parse", "main"]).trim(), pushed);
    wait_for(
        "the shard's server counts both sessions",
        Duration::from_secs(20),
        || ssh_rpcs(&second) >= 2.0,
    );
    assert_eq!(
        door.ssh_rpcs(),
        0.0,
        "the default server saw a shard session"
    );
    let log = std::fs::read_to_string(app.path().join("access.log")).unwrap();
    assert!(
        log.contains("key-42 git-upload-pack shard-2 g/q.git"),
        "{log}"
    );

    // A `default` path goes to `address`.
    door.git_ok(
        &door.alice,
        t.path(),
        &["clone", "-q", &door.url("g/p.git"), "d"],
    );
    wait_for(
        "the default server counts the clone",
        Duration::from_secs(20),
        || door.ssh_rpcs() >= 1.0,
    );

    // The shard's server down: its sessions fail, the default storage's don't.
    second.kill();
    let out = door.git(
        &door.alice,
        t.path(),
        &["clone", "-q", &door.url("shard2/g/q.git"), "e"],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the git server is not available"),
        "{}",
        stderr(&out)
    );
    door.git_ok(
        &door.alice,
        t.path(),
        &["clone", "-q", &door.url("g/p.git"), "f"],
    );
}

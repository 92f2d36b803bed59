//! `gitrpc-shell authorized-keys USER TYPE KEY`: the key line for sshd's
//! AuthorizedKeysCommand, from the application's key lookup.

use std::process::Command;

use crate::harness::Daemon;
use crate::support::*;

/// A shell config whose key lookup knows only `known` (as `key-42`).
fn config(dir: &std::path::Path, daemon: &Daemon, known: &str) -> std::path::PathBuf {
    let lookup = dir.join("keys.sh");
    let key = known.split_whitespace().nth(1).unwrap();
    write_exe(
        &lookup,
        &format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"ssh-ed25519 {key}\" ] || exit 1\necho '{{\"key_id\": \"key-42\"}}'\n"
        ),
    );
    let config = dir.join("shell.toml");
    std::fs::write(
        &config,
        format!(
            "address = \"{}\"\ndefault_storage = \"default\"\naccess_command = \"{}\"\n\
             keys_command = \"{}\"\nallowed_user = \"root\"\n",
            daemon.address(),
            access_script(dir, false).display(),
            lookup.display()
        ),
    )
    .unwrap();
    config
}

fn authorized_keys(config: &std::path::Path, user: &str, public: &str) -> (bool, String) {
    let mut words = public.split_whitespace();
    let (kind, key) = (words.next().unwrap(), words.next().unwrap());
    let out = Command::new(shell_bin())
        .args([
            "--config",
            config.to_str().unwrap(),
            "authorized-keys",
            user,
            kind,
            key,
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn prints_the_key_line_for_known_keys_only() {
    let daemon = Daemon::start("");
    let dir = tempfile::tempdir().unwrap();
    let (_, alice) = keygen(dir.path(), "alice");
    let (_, eve) = keygen(dir.path(), "eve");
    let config = config(dir.path(), &daemon, &alice);
    let key = alice
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let (ok, line) = authorized_keys(&config, "root", &alice);
    assert!(ok);
    assert_eq!(
        line,
        format!(
            "command=\"{} --config {} key-42\",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty {key}\n",
            std::fs::canonicalize(shell_bin()).unwrap().display(),
            std::fs::canonicalize(&config).unwrap().display()
        )
    );
    assert_eq!(
        authorized_keys(&config, "root", &eve),
        (true, "# No key was found for ssh-ed25519\n".to_string())
    );
    // Another login user gets nothing at all.
    assert_eq!(
        authorized_keys(&config, "postgres", &alice),
        (true, String::new())
    );
}

/// sshd asks gitrpc-shell for keys (no authorized_keys file at all): alice's key works and
/// runs the shell as `key-42`; eve's key is not accepted by sshd.
#[test]
fn sshd_takes_keys_from_the_application() {
    let daemon = Daemon::start("");
    let work = daemon.seed("g/p.git");
    drop(work);
    let dir = tempfile::tempdir().unwrap();
    let (alice_key, alice) = keygen(dir.path(), "alice");
    let (eve_key, _) = keygen(dir.path(), "eve");
    let config = config(dir.path(), &daemon, &alice);
    let sshd = Sshd::start(
        "",
        &format!(
            "AuthorizedKeysFile none\nAuthorizedKeysCommand {SAFE_SHELL} --config {} authorized-keys %u %t %k\nAuthorizedKeysCommandUser root\n",
            config.display()
        ),
    );
    let t = tempfile::tempdir().unwrap();
    let git = |key: &std::path::Path| {
        Command::new("git")
            .args(["ls-remote", "ssh://root@127.0.0.1/g/p.git"])
            .current_dir(t.path())
            .env("GIT_SSH_COMMAND", sshd.ssh_command(key))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap()
    };
    let out = git(&alice_key);
    assert!(out.status.success(), "{}\n{}", stderr(&out), sshd.log());
    assert!(String::from_utf8_lossy(&out.stdout).contains("refs/heads/main"));
    let asked = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    assert!(
        asked.starts_with("key-42 git-upload-pack default g/p.git"),
        "{asked}"
    );
    let out = git(&eve_key);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied (publickey)"),
        "{}",
        stderr(&out)
    );
}

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use gitrpc_git::Git;

/// Run the git CLI in `dir`; its trimmed stdout.
pub fn git_cli(dir: &Path, args: &[&str]) -> String {
    let out = StdCommand::new("git")
        .args(args)
        .current_dir(dir)
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
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A non-bare repository (`sha1` or `sha256`) with two commits on `main`; returns (tempdir,
/// git dir).
pub fn repo(format: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    git_cli(
        d.path(),
        &[
            "init",
            "-q",
            "-b",
            "main",
            &format!("--object-format={format}"),
        ],
    );
    std::fs::write(d.path().join("f.txt"), "one\n").unwrap();
    git_cli(d.path(), &["add", "."]);
    git_cli(d.path(), &["commit", "-qm", "one"]);
    std::fs::write(d.path().join("f.txt"), "two\n").unwrap();
    git_cli(d.path(), &["commit", "-qam", "two"]);
    let gd = d.path().join(".git");
    (d, gd)
}

pub async fn git() -> Git {
    Git::discover(None).await.unwrap()
}

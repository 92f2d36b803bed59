//! What must hold after the load (both runs): no wrong answer, every push `git push`
//! reported successful on its branch, `git fsck` clean, no lock files, nothing left in the
//! server's private directory, no git left once idle cat-files expired, descriptors and
//! threads back near where they were before the load; and after the server's last SIGTERM,
//! no git at all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;

use crate::load::Ctx;
use crate::probe::{self, Probe};
use crate::server::Server;

pub fn summary(faults: bool) -> &'static str {
    match faults {
        true => "checks (every read answered right after retries, every successful push on its branch, git fsck of every repository, no lock files, no leftovers in +gitrpc, no git left after the restarts and the last SIGTERM)",
        false => "checks (every answer right, every push on its branch, git fsck, no lock files, no leftovers in +gitrpc, no git left after the load, descriptors and threads back to the pre-load baseline)",
    }
}

fn files_under(dir: &Path, pred: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if pred(&e.file_name().to_string_lossy()) {
                out.push(p);
            }
        }
    }
    out
}

fn git_ok(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn after_load(
    ctx: &Ctx,
    server: &mut Server,
    storage: &Path,
    baseline: &Probe,
    after: &Probe,
    left: &[(i32, String)],
    quick: bool,
    faults: bool,
) -> Vec<String> {
    let mut failed = Vec::new();
    let wrong = ctx.wrong_count.load(Ordering::Relaxed);
    if wrong > 0 {
        let first = ctx.wrong.lock().unwrap().clone();
        failed.push(format!(
            "{wrong} wrong or failed answers, e.g. {:?}",
            &first[..first.len().min(5)]
        ));
    }
    if !left.is_empty() {
        failed.push(format!("git left after the load: {left:?}"));
    }
    // Leak bounds (generous: a few descriptors and blocking threads come and go).
    if !faults {
        if after.fds > baseline.fds + 8 {
            failed.push(format!(
                "descriptors: {} after the load, {} before",
                after.fds, baseline.fds
            ));
        }
        if after.threads > baseline.threads + 8 {
            failed.push(format!(
                "threads: {} after the load, {} before",
                after.threads, baseline.threads
            ));
        }
    }
    let _ = quick;
    let internal = storage.join("+gitrpc");
    for sub in ["spool", "hooks-run", "tmp"] {
        let stale: Vec<PathBuf> = std::fs::read_dir(internal.join(sub))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        if !stale.is_empty() {
            failed.push(format!("left in +gitrpc/{sub}: {stale:?}"));
        }
    }
    // The server's last stop; then nothing of ours may run. Git whose pipes were the
    // server's exits on EOF a moment after it: give that 10 s. What is still running then
    // is reported, and killed so the run leaves nothing behind.
    server.stop(libc::SIGTERM);
    let stopped = std::time::Instant::now();
    let mut orphans = probe::git_processes(None, storage);
    while !orphans.is_empty() && stopped.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        orphans = probe::git_processes(None, storage);
    }
    eprintln!(
        "soak: last git gone {} ms after the server stopped",
        stopped.elapsed().as_millis()
    );
    if !orphans.is_empty() {
        failed.push(format!(
            "git running 10 s after the server stopped: {orphans:?}"
        ));
        for (pid, _) in &orphans {
            // SAFETY: kill(2) of a git the server under test started.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
    }
    let push = storage.join("push.git");
    let pushed = ctx.pushed.lock().unwrap().clone();
    let lost: Vec<&(String, String)> = pushed
        .iter()
        .filter(|(branch, sha)| {
            git_ok(&push, &["merge-base", "--is-ancestor", sha, branch]).is_err()
        })
        .collect();
    if !lost.is_empty() {
        failed.push(format!(
            "{} successful pushes missing, e.g. {:?}",
            lost.len(),
            lost.first()
        ));
    }
    for r in ["reads.git", "clone.git", "push.git"] {
        if let Err(e) = git_ok(
            &storage.join(r),
            &["fsck", "--no-progress", "--no-dangling"],
        ) {
            failed.push(format!("git fsck {r}: {e}"));
        }
        let locks = files_under(&storage.join(r), &|n| n.ends_with(".lock"));
        if !locks.is_empty() {
            failed.push(format!("lock files in {r}: {locks:?}"));
        }
    }
    failed
}

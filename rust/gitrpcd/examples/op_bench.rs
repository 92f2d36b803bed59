//! Write benchmark, run by `bench/run`: UserCommitFiles of one small file on the 50k-commit
//! benchmark repository, against the same change made with plain git commands in a temp
//! worktree (`git worktree add`, write the file, `git add`, `git commit`, `git update-ref`
//! with the old value, `git worktree remove`), the way an application without an API
//! would. Prints its README section (table and goal line) and writes its JSON.
//!
//! ```text
//! cargo run --release -p gitrpcd --example op_bench -- commit_files --repo DIR
//!     [--iters 100] [--json FILE] [--smoke]
//! ```
//!
//! `--repo`: the cached benchmark repository's directory (`rpc_bench repo` prints it). Each
//! method gets its own `git clone --bare` of it (hard links; removed afterwards), so the
//! cache is left untouched; the two methods alternate call by call, so a loaded machine
//! slows both alike. gitrpc is a server started here, called over its unix socket; no hooks
//! are configured for either method (the hook chain and the quarantine still run).
#![allow(clippy::disallowed_methods)] // the baseline runs git by hand

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gitrpc_client::gitaly::{Repository, User};
use gitrpc_client::{Client, CommitFiles, FileAction, Options};
use gitrpc_server::{Config, Serving};

struct Args {
    repo: PathBuf,
    iters: usize,
    json: Option<PathBuf>,
    smoke: bool,
}

fn usage() -> ! {
    eprintln!("usage: op_bench commit_files --repo DIR [--iters N] [--json FILE] [--smoke]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() != Some("commit_files") {
        usage();
    }
    let (mut repo, mut iters, mut json, mut smoke) = (None, None, None, false);
    while let Some(a) = argv.next() {
        let mut value = || argv.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--repo" => repo = Some(PathBuf::from(value())),
            "--iters" => iters = Some(value().parse().unwrap_or_else(|_| usage())),
            "--json" => json = Some(PathBuf::from(value())),
            "--smoke" => smoke = true,
            _ => usage(),
        }
    }
    Args {
        repo: repo.unwrap_or_else(|| usage()),
        iters: iters.unwrap_or(if smoke { 3 } else { 100 }),
        json,
        smoke,
    }
}

fn find_git() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("git"))
                .find(|g| g.is_file())
        })
        .expect("git on PATH")
}

const ENV: [(&str, &str); 6] = [
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
    ("GIT_AUTHOR_NAME", "Jane Doe"),
    ("GIT_AUTHOR_EMAIL", "jane@example.com"),
    ("GIT_COMMITTER_NAME", "Jane Doe"),
    ("GIT_COMMITTER_EMAIL", "jane@example.com"),
];

/// Run git in `dir`; its stdout, trimmed. Panics on failure (a benchmark, not a product).
fn git(gitbin: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(gitbin)
        .current_dir(dir)
        .envs(ENV)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The same change with plain git: a temp worktree of `main`, one file written, added,
/// committed, `main` moved from its old value, the worktree removed.
fn git_commit_file(gitbin: &Path, repo: &Path, scratch: &Path, i: usize) {
    let wt = scratch.join(format!("wt-{i}"));
    let wt_s = wt.to_str().unwrap();
    let old = git(gitbin, repo, &["rev-parse", "refs/heads/main"]);
    git(
        gitbin,
        repo,
        &["worktree", "add", "-q", "--detach", wt_s, &old],
    );
    let file = format!("bench/op-{i}.txt");
    std::fs::create_dir_all(wt.join("bench")).unwrap();
    std::fs::write(wt.join(&file), format!("change {i}\n")).unwrap();
    git(gitbin, &wt, &["add", "--", &file]);
    git(
        gitbin,
        &wt,
        &["commit", "-q", "--no-verify", "-m", "Add a file"],
    );
    let new = git(gitbin, &wt, &["rev-parse", "HEAD"]);
    git(gitbin, repo, &["update-ref", "refs/heads/main", &new, &old]);
    git(gitbin, repo, &["worktree", "remove", "--force", wt_s]);
}

fn user() -> User {
    User {
        gl_id: "user-1".into(),
        gl_username: "jane".into(),
        name: b"Jane Doe".to_vec(),
        email: b"jane@example.com".to_vec(),
        timezone: String::new(),
    }
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(v: f64) -> String {
    format!("{:.2} ms", v * 1000.0)
}

#[tokio::main]
async fn main() {
    let a = parse_args();
    let gitbin = find_git();
    let source = a.repo.join("repos").join("bench.git");
    assert!(source.is_dir(), "no repository at {}", source.display());
    let scratch = tempfile::Builder::new()
        .prefix("op-bench")
        .tempdir_in(&a.repo)
        .unwrap();
    let storage = scratch.path().join("repos");
    std::fs::create_dir_all(&storage).unwrap();
    for name in ["rpc.git", "git.git"] {
        let dst = storage.join(name);
        let (src, dst) = (source.to_str().unwrap(), dst.to_str().unwrap());
        git(
            &gitbin,
            scratch.path(),
            &["clone", "-q", "--bare", src, dst],
        );
        git(
            &gitbin,
            Path::new(dst),
            &["commit-graph", "write", "--reachable"],
        );
    }
    let commits = git(
        &gitbin,
        &storage.join("git.git"),
        &["rev-list", "--count", "main"],
    );

    let socket = scratch.path().join("g.sock");
    let config = Config::from_toml(&format!(
        "socket_path = \"{}\"\n[[storage]]\nname = \"default\"\npath = \"{}\"\n",
        socket.display(),
        storage.display()
    ))
    .unwrap();
    let server = Serving::start(config).await.unwrap();
    let opts = Options {
        timeout: Some(Duration::from_secs(60)),
        ..Options::default()
    };
    let client = Client::connect(&format!("unix:{}", socket.display()), &opts)
        .await
        .unwrap();
    let repo = Repository {
        storage_name: "default".into(),
        relative_path: "rpc.git".into(),
        ..Default::default()
    };
    let call = |i: usize| CommitFiles {
        user: user(),
        branch: b"main".to_vec(),
        message: b"Add a file".to_vec(),
        actions: vec![FileAction::Create {
            path: format!("bench/op-{i}.txt").into_bytes(),
            content: format!("change {i}\n").into_bytes(),
            executable: false,
        }],
        ..Default::default()
    };

    // One warm-up each (page cache, the server's cat-file processes), then alternate.
    client.commit_files(&repo, &call(0)).await.unwrap();
    git_commit_file(&gitbin, &storage.join("git.git"), scratch.path(), 0);
    let (mut rpc, mut plain) = (Vec::new(), Vec::new());
    for i in 1..=a.iters {
        let t = Instant::now();
        client.commit_files(&repo, &call(i)).await.unwrap();
        rpc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        git_commit_file(&gitbin, &storage.join("git.git"), scratch.path(), i);
        plain.push(t.elapsed().as_secs_f64());
    }
    server.stop(Duration::from_secs(5)).await;
    // Both methods made the same history.
    for name in ["rpc.git", "git.git"] {
        let dir = storage.join(name);
        let n = git(&gitbin, &dir, &["ls-tree", "--name-only", "main", "bench/"]);
        assert_eq!(n.lines().count(), a.iters + 1, "{name}: files committed");
    }

    rpc.sort_by(f64::total_cmp);
    plain.sort_by(f64::total_cmp);
    let (r50, r99, g50, g99) = (
        pct(&rpc, 0.5),
        pct(&rpc, 0.99),
        pct(&plain, 0.5),
        pct(&plain, 0.99),
    );
    println!(
        "**UserCommitFiles** (one small file added to `main` of the {commits}-commit repository, {} calls each,",
        a.iters
    );
    println!("alternating; gitrpc over its unix socket vs plain git in a temp worktree; `bench/results/commit_files.json`):");
    println!();
    println!("| method | p50 | p99 |");
    println!("|---|---|---|");
    println!("| gitrpc UserCommitFiles | {} | {} |", ms(r50), ms(r99));
    println!(
        "| git worktree add + add + commit + update-ref + worktree remove | {} | {} |",
        ms(g50),
        ms(g99)
    );
    println!();
    let x = g50 / r50;
    println!(
        "- gitrpc is {x:.1}x faster at p50 ({:.1}x at p99) (goal ≥ 3x): {}.",
        g99 / r99,
        if x >= 3.0 { "met" } else { "**missed**" }
    );
    if let Some(path) = &a.json {
        let json = format!(
            "{{\"commits\": {commits}, \"iters\": {}, \"smoke\": {}, \"rpc_p50_s\": {r50}, \"rpc_p99_s\": {r99}, \"git_p50_s\": {g50}, \"git_p99_s\": {g99}, \"speedup_p50\": {x}}}\n",
            a.iters, a.smoke
        );
        std::fs::write(path, json).unwrap();
    }
}

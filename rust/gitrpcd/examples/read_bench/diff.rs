//! CommitDiff throughput vs `git diff` to /dev/null (step 11, WP-A).
//!
//! The repository (built once, cached as `<bench-repos>/diff-<files>f-<lines>l/`): two
//! commits on `main`; the first adds `files` text files of `lines` lines, the second changes
//! every 4th line of every file (so each file's patch is one hunk over the whole file:
//! tens of MB of patch in all). CommitDiff of `main~1..main` without limits is read through
//! the typed Rust client over a unix socket (each file's patch put together, bytes counted)
//! and timed against `git diff main~1 main > /dev/null`; the concatenated patches are first
//! checked equal to git's per-file patches (its output without the header lines).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::harness::{self, cache_root, cached_repo, find_git, git, secs, Daemon, Rng, STORAGE};
use crate::Args;

struct Shape {
    files: usize,
    lines: usize,
    repeats: usize,
}

fn path(i: usize) -> String {
    format!("src/d{:02}/file{i:05}.txt", i % 64)
}

fn generate(w: &mut dyn Write, s: &Shape) {
    let mut rng = Rng::new(19);
    let line = |rng: &mut Rng| {
        format!(
            "{:016x} {:08x} the quick brown fox jumps\n",
            rng.next(),
            rng.next() as u32
        )
    };
    let mut text: Vec<Vec<String>> = (0..s.files)
        .map(|_| (0..s.lines).map(|_| line(&mut rng)).collect())
        .collect();
    for k in 1..=2 {
        if k == 2 {
            for t in &mut text {
                for l in t.iter_mut().step_by(4) {
                    *l = line(&mut rng);
                }
            }
        }
        let ts = 1_600_000_000 + k as u64 * 60;
        let msg = format!("Change {k}\n");
        write!(
            w,
            "commit refs/heads/main\nmark :{k}\nauthor A U Thor <author@example.com> {ts} +0000\ncommitter C O Mitter <committer@example.com> {ts} +0000\ndata {}\n{msg}",
            msg.len()
        )
        .unwrap();
        for (i, t) in text.iter().enumerate() {
            let data = t.concat();
            write!(
                w,
                "M 100644 inline {}\ndata {}\n{data}\n",
                path(i),
                data.len()
            )
            .unwrap();
        }
        writeln!(w).unwrap();
    }
}

const ARGS: [&str; 3] = ["diff", "main~1", "main"];

/// `git diff main~1 main`'s output, cut into each file's patch (from its first `@@` or
/// `Binary files` line to the next `diff --git`).
fn git_patches(repo: &Path) -> Vec<Vec<u8>> {
    let out = git(&find_git(), repo, &ARGS);
    let mut patches: Vec<Vec<u8>> = Vec::new();
    let mut in_patch = false;
    for line in out.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"diff --git ") {
            patches.push(Vec::new());
            in_patch = false;
        } else if !in_patch && (line.starts_with(b"@@ ") || line.starts_with(b"Binary files ")) {
            in_patch = true;
        }
        if in_patch {
            patches.last_mut().unwrap().extend_from_slice(line);
        }
    }
    patches
}

/// `git diff main~1 main > /dev/null`: seconds.
fn git_diff(repo: &Path) -> f64 {
    let t = Instant::now();
    let st = Command::new(find_git())
        .arg("--git-dir")
        .arg(repo)
        .args(ARGS)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "git diff failed");
    t.elapsed().as_secs_f64()
}

/// CommitDiff's patches (kept, or only counted), the patch bytes and the seconds it took.
async fn commit_diff(client: &gitrpc_client::Client, keep: bool) -> (Vec<Vec<u8>>, usize, f64) {
    use futures::StreamExt;
    let repo = gitrpc_client::client::repository(STORAGE, "bench.git");
    let t = Instant::now();
    let mut stream = Box::pin(
        client
            .commit_diff(&repo, "main~1", "main", Default::default())
            .await
            .unwrap(),
    );
    let (mut kept, mut n) = (Vec::new(), 0);
    while let Some(d) = stream.next().await {
        let d = d.unwrap();
        n += d.patch.len();
        if keep {
            kept.push(d.patch);
        }
    }
    (kept, n, t.elapsed().as_secs_f64())
}

pub fn run(args: &Args) {
    let s = if args.smoke {
        Shape {
            files: 50,
            lines: 40,
            repeats: 1,
        }
    } else {
        Shape {
            files: 4000,
            lines: 200,
            repeats: 5,
        }
    };
    let name = format!("diff-{}f-{}l", s.files, s.lines);
    let t = Instant::now();
    let repo = cached_repo(&cache_root(args.repo.as_deref()), &name, |w| {
        generate(w, &s)
    });
    if !args.smoke {
        eprintln!(
            "diff: repository ready in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let rt = harness::runtime();
    let d = Daemon::start(repo.parent().unwrap());
    let client = rt.block_on(d.client());

    let want = git_patches(&repo);
    let (got, size, _) = rt.block_on(commit_diff(&client, true));
    assert_eq!(got.len(), s.files, "one CommitDiff entry per file");
    assert_eq!(got.len(), want.len(), "as many files as git diff");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(g == w, "the patch of {} differs from git diff's", path(i));
    }
    drop((got, want));
    let (mut best_rpc, mut best_git) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..s.repeats {
        let (_, n, t_rpc) = rt.block_on(commit_diff(&client, false));
        assert_eq!(n, size);
        let t_git = git_diff(&repo);
        best_rpc = best_rpc.min(t_rpc);
        best_git = best_git.min(t_git);
    }
    drop(client);
    drop(d);

    let ratio = best_git / best_rpc;
    let mb = size as f64 / 1e6;
    println!(
        "**CommitDiff** (`main~1..main`: {} text files of {} lines, every 4th line changed; CommitDiff\n\
         without limits read through the Rust client over a unix socket (each file's patch put together)\n\
         vs `git diff main~1 main > /dev/null`; the patches checked equal to git's first; best of {};\n\
         `bench/results/diff.json`):",
        s.files, s.lines, s.repeats
    );
    println!();
    println!("| patch | CommitDiff | `git diff` | CommitDiff throughput vs git |");
    println!("|---|---|---|---|");
    println!(
        "| {mb:.1} MB | {} ({:.0} MB/s) | {} ({:.0} MB/s) | {ratio:.2}x |",
        secs(best_rpc),
        mb / best_rpc,
        secs(best_git),
        mb / best_git
    );
    println!();
    println!(
        "- CommitDiff runs at {ratio:.2}x the throughput of `git diff` (goal ≥ 0.8x): {}.",
        if ratio >= 0.8 { "met" } else { "**missed**" }
    );
    if let Some(path) = &args.json {
        let body = format!(
            "{{\"files\": {}, \"lines\": {}, \"repeats\": {}, \"patch_bytes\": {size}, \
             \"rpc_s\": {best_rpc:.4}, \"git_s\": {best_git:.4}, \"ratio\": {ratio:.3}}}\n",
            s.files, s.lines, s.repeats
        );
        std::fs::write(path, body).unwrap();
    }
}

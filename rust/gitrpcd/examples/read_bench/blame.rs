//! RawBlame vs `git blame --porcelain` (step 11, WP-B).
//!
//! The repository (built once, cached as `<bench-repos>/blame-<commits>c-<lines>l/`): one
//! file `blame.txt` of about `lines` lines, changed by every one of `commits` commits (1–3
//! lines replaced each time; every 10th commit also inserts a line and deletes another, so
//! blame has to follow moving lines). RawBlame is read through the typed client over a unix
//! socket (bytes counted, dropped) and timed against `git blame --porcelain main --
//! blame.txt > /dev/null`; the two outputs are checked equal first.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::harness::{self, cache_root, cached_repo, find_git, git, secs, Daemon, Rng, STORAGE};
use crate::Args;

struct Shape {
    commits: usize,
    lines: usize,
    repeats: usize,
}

fn generate(w: &mut dyn Write, s: &Shape) {
    let mut rng = Rng::new(7);
    let line = |rng: &mut Rng| format!("{:016x} {:08x}\n", rng.next(), rng.next() as u32);
    let mut text: Vec<String> = (0..s.lines).map(|_| line(&mut rng)).collect();
    for k in 1..=s.commits {
        if k > 1 {
            for _ in 0..1 + rng.below(3) {
                let l = rng.below(text.len());
                text[l] = line(&mut rng);
            }
            if k % 10 == 0 {
                let at = rng.below(text.len() + 1);
                text.insert(at, line(&mut rng));
                let gone = rng.below(text.len());
                text.remove(gone);
            }
        }
        let ts = 1_600_000_000 + k as u64 * 60;
        let msg = format!("Change {k}\n");
        let data = text.concat();
        write!(
            w,
            "commit refs/heads/main\nmark :{k}\nauthor A U Thor <author@example.com> {ts} +0000\ncommitter C O Mitter <committer@example.com> {ts} +0000\ndata {}\n{msg}M 100644 inline blame.txt\ndata {}\n{data}\n\n",
            msg.len(),
            data.len()
        )
        .unwrap();
    }
}

/// `git blame --porcelain main -- blame.txt`, its output kept or thrown away (`/dev/null`).
fn git_blame(repo: &Path, keep: bool) -> (Vec<u8>, f64) {
    let args = ["blame", "--porcelain", "main", "--", "blame.txt"];
    let t = Instant::now();
    if keep {
        let out = git(&find_git(), repo, &args);
        return (out, t.elapsed().as_secs_f64());
    }
    let st = Command::new(find_git())
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "git blame failed");
    (Vec::new(), t.elapsed().as_secs_f64())
}

/// RawBlame's bytes (kept, or only counted) and the seconds it took.
async fn raw_blame(client: &gitrpc_client::Client, keep: bool) -> (Vec<u8>, usize, f64) {
    use futures::StreamExt;
    let repo = gitrpc_client::client::repository(STORAGE, "bench.git");
    let t = Instant::now();
    let mut stream = Box::pin(
        client
            .raw_blame(&repo, b"main", b"blame.txt", None)
            .await
            .unwrap(),
    );
    let (mut kept, mut n) = (Vec::new(), 0);
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        n += piece.len();
        if keep {
            kept.extend_from_slice(&piece);
        }
    }
    (kept, n, t.elapsed().as_secs_f64())
}

pub fn run(args: &Args) {
    let s = if args.smoke {
        Shape {
            commits: 200,
            lines: 200,
            repeats: 1,
        }
    } else {
        Shape {
            commits: 5000,
            lines: 2000,
            repeats: 5,
        }
    };
    let name = format!("blame-{}c-{}l", s.commits, s.lines);
    let t = Instant::now();
    let repo = cached_repo(&cache_root(args.repo.as_deref()), &name, |w| {
        generate(w, &s)
    });
    if !args.smoke {
        eprintln!(
            "blame: repository ready in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let rt = harness::runtime();
    let d = Daemon::start(repo.parent().unwrap());
    let client = rt.block_on(d.client());

    let (want, _) = git_blame(&repo, true);
    let (got, size, _) = rt.block_on(raw_blame(&client, true));
    assert!(got == want, "RawBlame differs from git blame --porcelain");
    let (mut best_rpc, mut best_git) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..s.repeats {
        let (_, n, t_rpc) = rt.block_on(raw_blame(&client, false));
        assert_eq!(n, size);
        let (_, t_git) = git_blame(&repo, false);
        best_rpc = best_rpc.min(t_rpc);
        best_git = best_git.min(t_git);
    }
    drop(client);
    drop(d);

    let ratio = best_git / best_rpc;
    let mb = size as f64 / 1e6;
    println!(
        "**RawBlame** (`blame.txt`, {} lines changed by {} commits, 1–3 lines each, every 10th also\n\
         moving a line; RawBlame read through the Rust client over a unix socket vs\n\
         `git blame --porcelain main -- blame.txt > /dev/null`; outputs checked equal; best of {};\n\
         `bench/results/blame.json`):",
        s.lines, s.commits, s.repeats
    );
    println!();
    println!("| output | RawBlame | `git blame --porcelain` | RawBlame speed vs git |");
    println!("|---|---|---|---|");
    println!(
        "| {mb:.2} MB | {} ({:.1} MB/s) | {} ({:.1} MB/s) | {ratio:.2}x |",
        secs(best_rpc),
        mb / best_rpc,
        secs(best_git),
        mb / best_git
    );
    println!();
    println!(
        "- RawBlame runs at {ratio:.2}x the speed of `git blame --porcelain` (goal ≥ 0.9x): {}.",
        if ratio >= 0.9 { "met" } else { "**missed**" }
    );
    if let Some(path) = &args.json {
        let body = format!(
            "{{\"commits\": {}, \"lines\": {}, \"repeats\": {}, \"bytes\": {size}, \
             \"rpc_s\": {best_rpc:.4}, \"git_s\": {best_git:.4}, \"ratio\": {ratio:.3}}}\n",
            s.commits, s.lines, s.repeats
        );
        std::fs::write(path, body).unwrap();
    }
}

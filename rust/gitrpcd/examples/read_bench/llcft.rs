//! ListLastCommitsForTree of a 200-entry directory vs `git log -1 -- <path>` per entry
//! (step 11, WP-B).
//!
//! The repository (built once, cached as `<bench-repos>/llcft-<commits>c/`): `commits`
//! commits on `main`, a 3-commit side branch merged (a real merge) every 100 commits; a
//! directory `wide/` of 200 entries (180 files, 20 directories) whose entries change with
//! Zipf-like frequency, 20 of them never after the root commit; 1,000 other files under
//! `src/`. Commit-graph `--reachable`, no changed-path filters (as `rpc_bench`'s repository),
//! then the same with `--changed-paths` (informational).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::harness::{self, cache_root, cached_repo, find_git, git, secs, Daemon, Rng, STORAGE};
use crate::Args;

struct Shape {
    commits: usize,
    entries: usize,
    others: usize,
    repeats: usize,
}

fn entry_path(i: usize) -> String {
    if i % 10 == 9 {
        format!("wide/d{i:03}/x.txt")
    } else {
        format!("wide/f{i:03}.txt")
    }
}

fn other_path(i: usize) -> String {
    format!("src/d{:02}/f{i:04}.txt", i % 50)
}

/// Write the history as a fast-import stream.
fn generate(w: &mut dyn Write, s: &Shape) {
    let mut rng = Rng::new(11);
    let paths: Vec<String> = (0..s.entries)
        .map(entry_path)
        .chain((0..s.others).map(other_path))
        .collect();
    let line = |rng: &mut Rng| format!("{:016x} {:08x}\n", rng.next(), rng.next() as u32);
    let mut content: Vec<Vec<String>> = paths
        .iter()
        .map(|_| (0..4).map(|_| line(&mut rng)).collect())
        .collect();
    // Zipf over a random order of the entries; the last tenth of that order never changes.
    let mut order: Vec<usize> = (0..s.entries).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let changing = s.entries - s.entries / 10;
    let weights: Vec<f64> = (0..changing).map(|r| 1.0 / (r + 1) as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(changing);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cumulative.push(acc);
    }
    // Half the commits change an entry of wide/, the others a file under src/.
    let pick = |rng: &mut Rng| -> usize {
        if rng.below(2) == 0 {
            let u = rng.unit();
            let r = cumulative.partition_point(|&c| c < u).min(changing - 1);
            order[r]
        } else {
            s.entries + rng.below(s.others)
        }
    };
    let blob = |w: &mut dyn Write, path: &str, lines: &[String]| {
        let data = lines.concat();
        write!(w, "M 100644 inline {path}\ndata {}\n{data}\n", data.len()).unwrap();
    };
    let header = |w: &mut dyn Write, branch: &str, mark: usize, msg: &str| {
        let ts = 1_600_000_000 + mark as u64 * 60;
        write!(
            w,
            "commit refs/heads/{branch}\nmark :{mark}\nauthor A U Thor <author@example.com> {ts} +0000\ncommitter C O Mitter <committer@example.com> {ts} +0000\ndata {}\n{msg}\n",
            msg.len() + 1
        )
        .unwrap();
    };

    let mut mark = 1;
    header(w, "main", mark, "root");
    for (p, c) in paths.iter().zip(&content) {
        blob(w, p, c);
    }
    writeln!(w).unwrap();
    let mut main_tip = mark;
    let mut since_merge = 0;
    while mark < s.commits {
        if since_merge == 99 && mark + 4 <= s.commits {
            // A side branch of 3 commits from main's tip, merged back.
            let mut touched = Vec::new();
            for j in 0..3 {
                mark += 1;
                header(w, "side", mark, &format!("side change {mark}"));
                if j == 0 {
                    writeln!(w, "from :{main_tip}").unwrap();
                }
                let f = pick(&mut rng);
                let l = rng.below(4);
                content[f][l] = line(&mut rng);
                blob(w, &paths[f], &content[f]);
                touched.push(f);
                writeln!(w).unwrap();
            }
            let side_tip = mark;
            mark += 1;
            header(w, "main", mark, &format!("Merge side into main ({mark})"));
            writeln!(w, "merge :{side_tip}").unwrap();
            touched.sort_unstable();
            touched.dedup();
            for f in touched {
                blob(w, &paths[f], &content[f]);
            }
            writeln!(w).unwrap();
            main_tip = mark;
            since_merge = 0;
            continue;
        }
        mark += 1;
        header(w, "main", mark, &format!("Change {mark}"));
        let f = pick(&mut rng);
        let l = rng.below(4);
        content[f][l] = line(&mut rng);
        blob(w, &paths[f], &content[f]);
        writeln!(w).unwrap();
        main_tip = mark;
        since_merge += 1;
    }
}

/// `(entry, commit)` for each entry of `wide/`, and the seconds it took, via gitrpcd.
fn rpc(rt: &tokio::runtime::Runtime, d: &Daemon, rel: &str) -> (Vec<(String, String)>, f64) {
    rt.block_on(async {
        use futures::TryStreamExt;
        let client = d.client().await;
        let repo = gitrpc_client::client::repository(STORAGE, rel);
        let t = Instant::now();
        let got: Vec<(Vec<u8>, gitrpc_client::gitaly::GitCommit)> = client
            .list_last_commits_for_tree(&repo, "main", b"wide/", 0, 200, true)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let took = t.elapsed().as_secs_f64();
        let pairs = got
            .into_iter()
            .map(|(p, c)| (String::from_utf8(p).unwrap(), c.id))
            .collect();
        (pairs, took)
    })
}

/// `git log -1 --format=%H main -- <entry>` for each entry, one after another.
fn baseline(repo: &Path, entries: &[String]) -> (Vec<String>, f64) {
    let gitbin = find_git();
    let t = Instant::now();
    let ids = entries
        .iter()
        .map(|e| {
            let out = git(
                &gitbin,
                repo,
                &["log", "-1", "--format=%H", "main", "--", e],
            );
            String::from_utf8(out).unwrap().trim().to_string()
        })
        .collect();
    (ids, t.elapsed().as_secs_f64())
}

/// Best (lowest) seconds of `repeats` runs of both, checking every answer against git's.
fn measure(rt: &tokio::runtime::Runtime, d: &Daemon, repo: &Path, s: &Shape) -> (f64, f64) {
    let (mut best_rpc, mut best_git) = (f64::INFINITY, f64::INFINITY);
    rpc(rt, d, "bench.git"); // warm-up: the connection, gitrpcd's cat-file processes
    for _ in 0..s.repeats {
        let (pairs, t_rpc) = rpc(rt, d, "bench.git");
        assert_eq!(pairs.len(), s.entries, "one answer per entry of wide/");
        let entries: Vec<String> = pairs.iter().map(|(p, _)| p.clone()).collect();
        let (ids, t_git) = baseline(repo, &entries);
        for ((p, c), g) in pairs.iter().zip(&ids) {
            assert_eq!(c, g, "last commit of {p}");
        }
        best_rpc = best_rpc.min(t_rpc);
        best_git = best_git.min(t_git);
    }
    (best_rpc, best_git)
}

/// Rewrite the commit-graph, with or without changed-path Bloom filters.
fn commit_graph(repo: &Path, changed_paths: bool) {
    let info = repo.join("objects/info");
    let _ = std::fs::remove_file(info.join("commit-graph"));
    let _ = std::fs::remove_dir_all(info.join("commit-graphs"));
    let mut args = vec!["commit-graph", "write", "--reachable"];
    if changed_paths {
        args.push("--changed-paths");
    }
    git(&find_git(), repo, &args);
}

pub fn run(args: &Args) {
    let s = if args.smoke {
        Shape {
            commits: 600,
            entries: 40,
            others: 50,
            repeats: 1,
        }
    } else {
        Shape {
            commits: 50_000,
            entries: 200,
            others: 1000,
            repeats: 3,
        }
    };
    let name = format!("llcft-{}c-{}e", s.commits, s.entries);
    let t = Instant::now();
    let repo = cached_repo(&cache_root(args.repo.as_deref()), &name, |w| {
        generate(w, &s)
    });
    if !args.smoke {
        eprintln!(
            "llcft: repository ready in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let storage = repo.parent().unwrap();
    let rt = harness::runtime();
    let d = Daemon::start(storage);
    commit_graph(&repo, false);
    let (plain_rpc, plain_git) = measure(&rt, &d, &repo, &s);
    commit_graph(&repo, true);
    let (bloom_rpc, bloom_git) = measure(&rt, &d, &repo, &s);
    commit_graph(&repo, false);
    drop(d);

    let (plain, bloom) = (plain_git / plain_rpc, bloom_git / bloom_rpc);
    let n = s.entries;
    println!(
        "**ListLastCommitsForTree** (`wide/`, a directory of {n} entries ({} files, {} directories) of a\n\
         {}-commit history with a 3-commit side branch merged every 100 commits; entries change with\n\
         Zipf-like frequency, {} never after the root commit; gitrpcd over a unix socket vs\n\
         `git log -1 --format=%H main -- <entry>` for each entry, one after another; every answer\n\
         checked equal to git's; best of {}; `bench/results/llcft.json`):",
        n - n / 10,
        n / 10,
        s.commits,
        n / 10,
        s.repeats
    );
    println!();
    println!(
        "| commit-graph | ListLastCommitsForTree ({n} entries) | {n} × `git log -1` | speed-up |"
    );
    println!("|---|---|---|---|");
    println!(
        "| `--reachable` (no changed-path filters) | {} | {} | {plain:.1}x |",
        secs(plain_rpc),
        secs(plain_git)
    );
    println!(
        "| `--reachable --changed-paths` | {} | {} | {bloom:.1}x |",
        secs(bloom_rpc),
        secs(bloom_git)
    );
    println!();
    println!(
        "- speed-up without changed-path filters {plain:.1}x (goal ≥ 10x): {}. With Bloom filters \
         (informational) git's per-path walks skip most commits while the directory walk still \
         reads every one: {bloom:.1}x.",
        if plain >= 10.0 { "met" } else { "**missed**" }
    );
    if let Some(path) = &args.json {
        let body = format!(
            "{{\"commits\": {}, \"entries\": {n}, \"repeats\": {}, \
             \"plain\": {{\"rpc_s\": {plain_rpc:.4}, \"git_s\": {plain_git:.4}, \"speedup\": {plain:.2}}}, \
             \"changed_paths\": {{\"rpc_s\": {bloom_rpc:.4}, \"git_s\": {bloom_git:.4}, \"speedup\": {bloom:.2}}}}}\n",
            s.commits, s.repeats
        );
        std::fs::write(path, body).unwrap();
    }
}

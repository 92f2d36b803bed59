//! Spawn latency vs parent memory: the gitrpc executor (posix_spawn) against a `pre_exec`
//! Command (which makes Rust's std fork). Run through `bench/run`:
//!
//! ```text
//! cargo run --release -p gitrpc-git --example spawn_latency -- [GiB...] [--iters N] [--json FILE]
//! ```
#![allow(clippy::disallowed_methods)] // the forking baseline is built by hand on purpose

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use gitrpc_git::{Git, Subcommand};

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut sizes: Vec<usize> = Vec::new();
    let mut iters = 50;
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => iters = args.next().unwrap().parse().unwrap(),
            "--json" => json = args.next(),
            s => sizes.push(s.parse().expect("GiB")),
        }
    }
    if sizes.is_empty() {
        sizes = vec![0, 1, 4, 8];
    }
    let git = Git::discover(None).await.unwrap();
    let mut ballast: Vec<Vec<u8>> = Vec::new();
    let mut rows = Vec::new();
    println!("| parent memory | executor p50 | executor p99 | fork (pre_exec) p50 | fork p99 | fork/executor p99 |");
    println!("|---|---|---|---|---|---|");
    for gib in sizes {
        while ballast.len() < gib {
            let mut v = vec![0u8; 1 << 30];
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            ballast.push(v);
        }
        let mut ours = Vec::new();
        let mut forked = Vec::new();
        for _ in 0..iters {
            let t = Instant::now();
            git.command(Subcommand::Version).output().await.unwrap();
            ours.push(t.elapsed());
            let t = Instant::now();
            let mut c = std::process::Command::new(git.bin());
            c.arg("version").stdout(std::process::Stdio::null());
            // SAFETY: an empty pre_exec hook; it only forces std's fork path.
            unsafe { c.pre_exec(|| Ok(())) };
            c.status().unwrap();
            forked.push(t.elapsed());
        }
        let (o50, o99, f50, f99) = (
            pct(&mut ours, 0.5),
            pct(&mut ours, 0.99),
            pct(&mut forked, 0.5),
            pct(&mut forked, 0.99),
        );
        println!(
            "| {gib} GiB | {o50:.2} ms | {o99:.2} ms | {f50:.2} ms | {f99:.2} ms | {:.1}x |",
            f99 / o99
        );
        rows.push(format!(
            "{{\"parent_gib\":{gib},\"executor_p50_ms\":{o50:.3},\"executor_p99_ms\":{o99:.3},\"fork_p50_ms\":{f50:.3},\"fork_p99_ms\":{f99:.3}}}"
        ));
    }
    std::hint::black_box(&ballast);
    if let Some(path) = json {
        let body = format!(
            "{{\"benchmark\":\"spawn_latency\",\"command\":\"git version\",\"iters\":{iters},\"rows\":[{}]}}\n",
            rows.join(",")
        );
        std::fs::write(path, body).unwrap();
    }
}

//! Benchmarks of the reads behind a forge's pages, run by `bench/run`; each subcommand
//! prints its own README section (heading, table, goal line) and writes its JSON.
//!
//! - `llcft`: ListLastCommitsForTree of a 200-entry directory on the 50k-commit repository vs
//!   `git log -1 -- <path>` per entry (goal ≥ 10x).
//! - `diff`: CommitDiff throughput (MB/s of patch) vs `git diff` to /dev/null (goal ≥ 0.8x).
//! - `blame`: RawBlame vs `git blame --porcelain` (goal ≥ 0.9x).
//!
//! ```text
//! cargo run --release -p gitrpcd --example read_bench -- <llcft|diff|blame>
//!     [--repo DIR] [--json FILE] [--smoke]
//! ```
//!
//! `--repo`: the cached benchmark repository (`rpc_bench repo` prints it). Each subcommand
//! lives in its own module; until it is written it prints nothing.
#![allow(clippy::disallowed_methods)] // baselines run git by hand

#[path = "../support/bench.rs"]
mod bench;
mod blame;
mod diff;
mod harness;
mod llcft;

use std::path::PathBuf;

/// What every subcommand is given.
pub struct Args {
    pub repo: Option<PathBuf>,
    pub json: Option<PathBuf>,
    /// Tiny sizes, debug build: only checks the harness runs (`bench/run --smoke`).
    pub smoke: bool,
}

fn usage() -> ! {
    eprintln!("usage: read_bench <llcft|diff|blame> [--repo DIR] [--json FILE] [--smoke]");
    std::process::exit(2)
}

fn main() {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().unwrap_or_else(|| usage());
    let mut args = Args {
        repo: None,
        json: None,
        smoke: false,
    };
    while let Some(a) = argv.next() {
        match a.as_str() {
            "--repo" => args.repo = Some(argv.next().unwrap_or_else(|| usage()).into()),
            "--json" => args.json = Some(argv.next().unwrap_or_else(|| usage()).into()),
            "--smoke" => args.smoke = true,
            _ => usage(),
        }
    }
    match mode.as_str() {
        "llcft" => llcft::run(&args),
        "diff" => diff::run(&args),
        "blame" => blame::run(&args),
        _ => usage(),
    }
}

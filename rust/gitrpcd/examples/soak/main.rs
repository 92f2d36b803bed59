//! The soak and the fault run (`bench/soak`): one server under a mixed load for a long time,
//! sampled as it ages (seed 000: latency grew with process age until spawning stopped
//! forking).
//!
//! ```text
//! soak run    [--minutes 30] [--window 300] [--warmup 60] [--ballast-mib 2048] [--quick] [--json FILE]
//! soak faults [--minutes 10] [--restart 120] [--quick] [--json FILE]
//! soak host   --config FILE --ballast-mib N --ballast-secs S --status FILE   (started by `run`)
//! ```
//!
//! - `run`: the server is `soak host` (`host.rs`): gitrpc's server embedded in a process
//!   whose heap grows to `--ballast-mib` over the run. The load (`load.rs`) runs from this
//!   process; every 5 s the server is sampled (`probe.rs`); after a warm-up, the run is cut
//!   into windows (`report.rs`) and compared first to last. Then the load stops and, after
//!   the idle cat-files expire, no git may be left.
//! - `faults`: the server is gitrpcd, restarted every `--restart` seconds under the same load,
//!   alternately with SIGTERM and SIGKILL; read-only clients retry until answered. Afterwards
//!   every push git reported successful is on its branch, every repository passes `git
//!   fsck`, no lock file, no git and nothing of a dead server's is left.
//! - `--quick`: the 2-minute variant `script/test` runs (small repository, short windows):
//!   the leak and correctness invariants fail the run, latencies are only printed.
//!
//! The report goes to stdout as markdown (README section); exit status 1 if an invariant
//! failed (wrong answers, lost pushes, fsck, leftovers) — the latency and flatness goals are
//! reported as met or missed, never fail the run (this machine is shared and noisy).
#![allow(clippy::disallowed_methods)] // drives the server, git and gitrpc-ssh as processes

mod checks;
mod host;
mod load;
mod probe;
mod repo;
mod report;
mod server;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// xorshift64*: arguments for the calls.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

struct Args {
    mode: String,
    minutes: f64,
    window: f64,
    warmup: f64,
    ballast_mib: u64,
    restart: f64,
    quick: bool,
    json: Option<PathBuf>,
    host: Option<host::HostArgs>,
}

fn usage() -> ! {
    eprintln!("usage: soak run|faults [--minutes M] [--window S] [--warmup S] [--ballast-mib N] [--restart S] [--quick] [--json FILE]");
    std::process::exit(2)
}

fn parse() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| usage());
    let mut a = Args {
        mode,
        minutes: f64::NAN,
        window: f64::NAN,
        warmup: f64::NAN,
        ballast_mib: 2048,
        restart: f64::NAN,
        quick: false,
        json: None,
        host: None,
    };
    let (mut config, mut secs, mut status) = (None, 0, None);
    while let Some(flag) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--minutes" => a.minutes = v().parse().unwrap(),
            "--window" => a.window = v().parse().unwrap(),
            "--warmup" => a.warmup = v().parse().unwrap(),
            "--ballast-mib" => a.ballast_mib = v().parse().unwrap(),
            "--restart" => a.restart = v().parse().unwrap(),
            "--quick" => a.quick = true,
            "--json" => a.json = Some(v().into()),
            "--config" => config = Some(PathBuf::from(v())),
            "--ballast-secs" => secs = v().parse().unwrap(),
            "--status" => status = Some(PathBuf::from(v())),
            _ => usage(),
        }
    }
    if a.mode == "host" {
        a.host = Some(host::HostArgs {
            config: config.unwrap_or_else(|| usage()),
            ballast_mib: a.ballast_mib,
            ballast_secs: secs,
            status: status.unwrap_or_else(|| usage()),
        });
    }
    let faults = a.mode == "faults";
    let or = |v: f64, d: f64| if v.is_nan() { d } else { v };
    // Quick (script/test, about a minute each): soak 10 s warm-up + 3 windows of 15 s;
    // faults 40 s, a restart every 10 s (SIGTERM, SIGKILL, SIGTERM).
    (a.minutes, a.window, a.warmup, a.restart) = match (a.quick, faults) {
        (true, false) => (
            or(a.minutes, 1.0),
            or(a.window, 15.0),
            or(a.warmup, 10.0),
            0.0,
        ),
        (true, true) => (or(a.minutes, 40.0 / 60.0), 0.0, 0.0, or(a.restart, 10.0)),
        (false, false) => (
            or(a.minutes, 30.0),
            or(a.window, 300.0),
            or(a.warmup, 60.0),
            0.0,
        ),
        (false, true) => (or(a.minutes, 10.0), 0.0, 0.0, or(a.restart, 120.0)),
    };
    if a.quick && a.ballast_mib == 2048 {
        a.ballast_mib = 256;
    }
    a
}

fn main() {
    let args = parse();
    match args.mode.as_str() {
        "host" => host::main(args.host.unwrap()),
        "run" | "faults" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap();
            let ok = rt.block_on(run(&args));
            std::process::exit(if ok { 0 } else { 1 });
        }
        _ => usage(),
    }
}

/// (commits, refs) of `reads.git`.
fn size(quick: bool) -> (usize, usize) {
    if quick {
        (2_000, 200)
    } else {
        (20_000, 2_000)
    }
}

async fn run(a: &Args) -> bool {
    let faults = a.mode == "faults";
    let dir = tempfile::Builder::new()
        .prefix("gitrpc-soak-")
        .tempdir()
        .unwrap();
    let storage = dir.path().join("storage");
    let (commits, refs) = size(a.quick);
    let samples = repo::prepare(&storage, commits, refs);
    let total = Duration::from_secs_f64(a.minutes * 60.0);
    let host = (!faults).then_some((a.ballast_mib, total.as_secs().max(1)));
    let mut server = server::Server::new(dir.path(), &storage, host);
    server.start();
    let storage = storage.canonicalize().unwrap();
    let address = format!("unix:{}", server.socket.display());
    let opts = gitrpc_client::Options {
        retries: 0,
        ..Default::default()
    };
    let client = gitrpc_client::Client::connect(&address, &opts)
        .await
        .unwrap();
    let ssh = format!(
        "{} --address {address}",
        server::bin_dir().join("gitrpc-ssh").display()
    );
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let ctx = load::Ctx::new(client, samples.clone(), faults, ssh, scratch, 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let probe_now = |server: &server::Server, at: f64| {
        probe::probe(at, server.pid(), &server.monitor, &storage, &server.status)
    };
    let baseline = probe_now(&server, -1.0);
    eprintln!(
        "soak: {} for {:.1} min; baseline: RSS {} KiB, {} fds, {} threads",
        a.mode, a.minutes, baseline.rss_kib, baseline.fds, baseline.threads
    );

    // reads, listings, operations, cancelled, clones, pushes, maintenance (calls/s)
    let maint = if a.quick { 1.0 / 20.0 } else { 1.0 / 60.0 };
    let rates = [40.0, 2.0, 2.0, 2.0, 0.25, 0.5, maint];
    let caps = [32, 8, 8, 8, 2, 2, 1];
    let load = tokio::spawn(load::run(ctx.clone(), rates, caps));
    let started = Instant::now();
    let server = Arc::new(std::sync::Mutex::new(server));
    let mut probes = Vec::new();
    let mut restarts: Vec<(f64, &str, f64)> = Vec::new();
    let mut next_restart = a.restart;
    let mut next_progress = 60.0;
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let at = started.elapsed().as_secs_f64();
        let s = server.clone();
        let st = storage.clone();
        let p = tokio::task::spawn_blocking(move || {
            let s = s.lock().unwrap();
            probe::probe(at, s.pid(), &s.monitor, &st, &s.status)
        })
        .await
        .unwrap();
        probes.push(p);
        if faults && at >= next_restart && started.elapsed() < total - Duration::from_secs(5) {
            next_restart += a.restart;
            let sig = if restarts.len().is_multiple_of(2) {
                libc::SIGTERM
            } else {
                libc::SIGKILL
            };
            let name = if sig == libc::SIGTERM {
                "SIGTERM"
            } else {
                "SIGKILL"
            };
            let s = server.clone();
            let down = tokio::task::spawn_blocking(move || {
                let mut s = s.lock().unwrap();
                let t = Instant::now();
                s.stop(sig);
                s.start();
                t.elapsed().as_secs_f64()
            })
            .await
            .unwrap();
            eprintln!("soak: {name} at {at:.0} s; serving again after {down:.2} s");
            restarts.push((at, name, down));
        }
        if at >= next_progress {
            next_progress += 60.0;
            let n = ctx.recs.lock().unwrap().len();
            eprintln!(
                "soak: {at:.0} s, {n} calls, {} wrong",
                ctx.wrong_count.load(Ordering::Relaxed)
            );
        }
    }
    ctx.stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    let stopped_at = started.elapsed().as_secs_f64();
    let mut server = Arc::try_unwrap(server).ok().unwrap().into_inner().unwrap();
    drop(ctx.client.clone());

    // After the load: idle cat-files expire (idle_ttl 10 s), then no git may run, and the
    // blocking threads' keep-alive (10 s) passes. (A fault run checks for git only after
    // the server's last SIGTERM, in `checks`: it has no baseline to come back to.)
    let settle = Instant::now();
    let mut left = Vec::new();
    if !faults {
        left = probe::git_processes(server.pid(), &storage);
        while !left.is_empty() && settle.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            left = probe::git_processes(server.pid(), &storage);
        }
        let quiet = Duration::from_secs(12).saturating_sub(settle.elapsed());
        tokio::time::sleep(quiet).await;
    }
    let after = probe_now(&server, stopped_at);
    let outcome = checks::after_load(
        &ctx,
        &mut server,
        &storage,
        &baseline,
        &after,
        &left,
        a.quick,
        faults,
    );

    // The report.
    let recs = ctx.recs.lock().unwrap().clone();
    let (mut out, mut extra) = (String::new(), Vec::new());
    use std::fmt::Write as _;
    let calls = |f: usize| recs.iter().filter(|r| r.family as usize == f).count();
    let fams: Vec<String> = load::FAMILIES
        .iter()
        .enumerate()
        .map(|(f, n)| format!("{n} {}", calls(f)))
        .collect();
    let skipped: u64 = ctx.skipped.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let pushes = ctx.pushed.lock().unwrap().len();
    let last = probes.last().cloned().unwrap_or_default();
    let _ = writeln!(
        out,
        "- {} calls in {:.0} s ({}); {skipped} ticks skipped at the in-flight caps; {pushes} pushes reported successful; {:.0} optimizations ({:.0} queued by writes).",
        recs.len(),
        stopped_at,
        fams.join(", "),
        last.optimizations,
        last.scheduled
    );
    if faults {
        let _ = writeln!(
            out,
            "- {} restarts ({}); {} read-only calls and clones failed at first and recovered by retry, within {} ms at most.",
            restarts.len(),
            restarts
                .iter()
                .map(|(at, s, d)| format!("{s} at {at:.0} s, back in {d:.1} s"))
                .collect::<Vec<_>>()
                .join("; "),
            ctx.recovered.load(Ordering::Relaxed),
            ctx.max_recovery_ms.load(Ordering::Relaxed)
        );
        extra.push(("restarts", restarts.len().to_string()));
    } else {
        let n = ((a.minutes * 60.0 - a.warmup) / a.window).floor().max(1.0) as usize;
        let w = report::windows(&recs, &probes, a.warmup, a.window, n);
        let goals = report::goals(&w, left.len());
        let _ = write!(out, "\n{}\n", report::table(&w));
        for (g, met) in &goals {
            match met {
                Some(true) => {
                    let _ = writeln!(out, "- {g}: met");
                }
                Some(false) => {
                    let _ = writeln!(out, "- {g}: **missed**");
                }
                None => {
                    let _ = writeln!(out, "- {g}");
                }
            }
        }
        if let Some(line) = report::against_second(&w) {
            let _ = writeln!(out, "- {line}");
        }
        if let Some(j) = &a.json {
            extra.push(("ok", outcome.is_empty().to_string()));
            std::fs::write(j, report::json(&w, &goals, &extra)).unwrap();
        }
    }
    if faults {
        if let Some(j) = &a.json {
            extra.push(("ok", outcome.is_empty().to_string()));
            std::fs::write(j, report::json(&[], &[], &extra)).unwrap();
        }
    }
    for line in &outcome {
        let _ = writeln!(out, "- **failed**: {line}");
    }
    let checks_line = checks::summary(faults);
    if outcome.is_empty() {
        let _ = writeln!(out, "- {checks_line}: all held.");
    }
    print!("{out}");
    outcome.is_empty()
}

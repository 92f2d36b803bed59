//! `soak host`: the server under test, in a process whose heap grows with age.
//!
//! Seed 000: Gitaly's latency grew with process age because its memory grew and every
//! `fork()` copied more page tables. gitrpcd itself has no reason to grow, so the soak runs
//! the same server (`Serving::start`, what gitrpcd, the C library and the Ruby gem start)
//! inside a host process that also allocates and touches memory steadily — an application
//! embedding gitrpc whose own heap grows (a Puma worker, say). That is the process that
//! spawns every git. Nothing test-only is added to gitrpcd.
//!
//! The ballast: 64 KiB blocks (below glibc's mmap threshold, so they grow the heap itself),
//! every byte written, one block in four freed again (fragmentation), up to `--ballast-mib`
//! over `--ballast-secs`. `--status FILE` gets `ballast_bytes N` every second.

use std::path::PathBuf;
use std::time::{Duration, Instant};

const BLOCK: usize = 64 * 1024;

pub struct HostArgs {
    pub config: PathBuf,
    pub ballast_mib: u64,
    pub ballast_secs: u64,
    pub status: PathBuf,
}

fn write_status(path: &std::path::Path, bytes: u64) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, format!("ballast_bytes {bytes}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// Grow the heap to `mib` MiB over `secs` seconds, then hold it; report every second.
fn ballast(mib: u64, secs: u64, status: PathBuf) {
    let target = (mib * 1024 * 1024) as usize;
    let started = Instant::now();
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut live = 0usize;
    let mut n = 0u64;
    loop {
        let elapsed = started.elapsed().as_secs_f64();
        let want = match secs {
            0 => target,
            s => (target as f64 * (elapsed / s as f64).min(1.0)) as usize,
        };
        while live < want {
            n += 1;
            // Written byte by byte, so every page is resident.
            let block = vec![(n % 251) as u8 + 1; BLOCK];
            held.push(block);
            live += BLOCK;
            if n.is_multiple_of(4) {
                // Free an older block: holes in the heap, as a long-lived process has.
                let i = (n as usize * 7919) % held.len();
                live -= held.swap_remove(i).len();
            }
        }
        write_status(&status, live as u64);
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub fn main(a: HostArgs) {
    let config = gitrpc_server::Config::load(&a.config).unwrap_or_else(|e| {
        eprintln!("soak host: {e}");
        std::process::exit(2)
    });
    write_status(&a.status, 0);
    let (mib, secs, status) = (a.ballast_mib, a.ballast_secs, a.status.clone());
    std::thread::Builder::new()
        .name("ballast".into())
        .spawn(move || ballast(mib, secs, status))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("soak-host")
        .build()
        .unwrap();
    rt.block_on(async {
        let grace = config.graceful_restart_timeout;
        let server = gitrpc_server::Serving::start(config)
            .await
            .unwrap_or_else(|e| {
                eprintln!("soak host: {e}");
                std::process::exit(1)
            });
        eprintln!("soak host: serving {:?}", server.addresses());
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        term.recv().await;
        server.stop(grace).await;
    });
}

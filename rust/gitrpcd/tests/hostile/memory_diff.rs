//! See main.rs. CommitDiff of a 200 MB diff with limits set: the daemon's peak RSS (`VmHWM`,
//! reset through `/proc/<pid>/clear_refs` before the call) stays within a fixed budget while
//! the client reads and drops 200 MB of patches, and git is still writing when the first
//! message arrives.

use std::io::Write;
use std::process::{Command, Stdio};

use gitrpc_proto::gitaly::diff_service_client::DiffServiceClient;
use gitrpc_proto::gitaly::CommitDiffRequest;

use crate::harness::{git_ok, Daemon};

const MIB: usize = 1024 * 1024;
/// 200 new text files of 1 MiB: a 200 MiB diff of added lines.
const FILES: usize = 200;
const FILE: usize = MIB;
/// What the daemon's peak may grow by (generous: one file's patch of 1 MiB kept while it
/// can be sent, 5120-byte messages in a bounded channel, h2 windows, the allocator's slack).
const BUDGET_KIB: u64 = 64 * 1024;

/// A bare repository at `path`: `base` holds a README, `main` adds the 200 files (one
/// `git fast-import`). Returns (base, main).
fn big_diff_repo(path: &std::path::Path) -> (String, String) {
    std::fs::create_dir_all(path).unwrap();
    git_ok(path, &["init", "--bare", "-q", "-b", "main"]);
    let mut fi = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(path)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = std::io::BufWriter::new(fi.stdin.take().unwrap());
    write!(
        input,
        "commit refs/heads/base\ncommitter C <c@example.com> 1700000000 +0000\ndata 5\nbase\n\
         M 100644 inline README\ndata 6\nhello\n\n"
    )
    .unwrap();
    for f in 0..FILES {
        let mut data = Vec::with_capacity(FILE + 64);
        let mut line = 0usize;
        while data.len() < FILE {
            writeln!(data, "file {f:03} line {line:07} of the big diff").unwrap();
            line += 1;
        }
        write!(input, "blob\nmark :{}\ndata {}\n", f + 1, data.len()).unwrap();
        input.write_all(&data).unwrap();
        input.write_all(b"\n").unwrap();
    }
    write!(
        input,
        "commit refs/heads/main\ncommitter C <c@example.com> 1700000001 +0000\ndata 4\nbig\n\
         from refs/heads/base\n"
    )
    .unwrap();
    for f in 0..FILES {
        writeln!(input, "M 100644 :{} dir/f{f:03}.txt", f + 1).unwrap();
    }
    input.write_all(b"\n").unwrap();
    drop(input);
    assert!(fi.wait().unwrap().success());
    (
        git_ok(path, &["rev-parse", "base"]).trim().to_string(),
        git_ok(path, &["rev-parse", "main"]).trim().to_string(),
    )
}

/// Reads the whole answer: (files ended, files too large, patch bytes, overflow seen).
async fn drain(
    mut stream: tonic::Streaming<gitrpc_proto::gitaly::CommitDiffResponse>,
) -> (usize, usize, usize, bool) {
    let (mut files, mut too_large, mut total, mut overflow) = (0, 0, 0, false);
    while let Some(m) = stream.message().await.unwrap() {
        assert!(m.raw_patch_data.len() <= 5120);
        assert!(!m.collapsed);
        total += m.raw_patch_data.len();
        files += usize::from(m.end_of_patch);
        too_large += usize::from(m.too_large);
        overflow |= m.overflow_marker;
    }
    (files, too_large, total, overflow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_diff_of_200_mb_streams_in_bounded_memory() {
    let mut d = Daemon::start("");
    let (base, main) = big_diff_repo(&d.storage().join("big.git"));
    let mut c = DiffServiceClient::new(d.channel().await);
    let request = |enforce_limits: bool| CommitDiffRequest {
        repository: Some(d.repo("big.git")),
        left_commit_id: base.clone(),
        right_commit_id: main.clone(),
        enforce_limits,
        max_files: 1000,
        max_lines: 100_000_000,
        max_bytes: 1_000_000_000,
        // Gitaly's upper bound (500 KB) applies: every 1 MiB patch is too large.
        max_patch_bytes: 4 * MIB as i32,
        ..Default::default()
    };
    // Reset the high-water mark to the current RSS (kernel: "5" clears VmHWM).
    let _ = std::fs::write(format!("/proc/{}/clear_refs", d.pid()), "5");
    let start_rss = d.rss_kib();

    // Limits set: git's 200 MB are read through, every patch dropped as too large, and
    // nothing held for it (a too-large patch's bytes don't count towards max_bytes).
    let stream = c.commit_diff(request(true)).await.unwrap().into_inner();
    assert!(
        d.git_processes()
            .iter()
            .any(|(_, cmd)| cmd.contains("diff")),
        "git diff finished before the answer began: the diff was buffered"
    );
    assert_eq!(drain(stream).await, (FILES, FILES, 0, false));
    // No limits: all 200 MB of patches are sent, still one file's worth in memory at most.
    let stream = c.commit_diff(request(false)).await.unwrap().into_inner();
    let (files, too_large, total, overflow) = drain(stream).await;
    assert_eq!((files, too_large, overflow), (FILES, 0, false));
    assert!(total > FILES * FILE, "{total} bytes of patch");

    let peak = d.peak_rss_kib();
    // Without clear_refs the peak is an older, higher one: the check only gets stricter.
    let grown = peak.saturating_sub(start_rss);
    assert!(
        grown < BUDGET_KIB,
        "daemon peak RSS grew {grown} KiB (from {start_rss} KiB) for a {} MiB diff",
        total / MIB
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d
        .git_processes()
        .iter()
        .any(|(_, cmd)| cmd.contains(" diff"))
    {
        assert!(std::time::Instant::now() < until, "git diff left running");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(d.alive());
}

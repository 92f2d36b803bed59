//! See main.rs. GetArchive of a 500 MB tree streams: the daemon's peak RSS (`VmHWM`, reset
//! through `/proc/<pid>/clear_refs` before the call) stays within a fixed budget while the
//! client reads and drops 500 MB of tar, and git is still writing when the first message
//! arrives.

use std::io::Write;
use std::process::{Command, Stdio};

use gitrpc_proto::gitaly::get_archive_request::Format;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::GetArchiveRequest;

use crate::harness::{git_ok, Daemon};

const MIB: usize = 1024 * 1024;
/// 50 blobs of 10 MiB: 500 MiB of tree. A repeated pattern (each blob its own first line)
/// keeps the pack small and fast-import fast; the tar is 500 MiB all the same.
const BLOBS: usize = 50;
const BLOB: usize = 10 * MIB;
/// What the daemon's peak may grow by (generous: a 128 KiB message, a 16-message channel,
/// h2 windows, the allocator's slack).
const BUDGET_KIB: u64 = 64 * 1024;

/// A bare repository at `path` whose `main` holds the 500 MiB tree (one `git fast-import`).
fn big_repo(path: &std::path::Path) {
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
    let pattern: Vec<u8> = (0..BLOB).map(|i| b"0123456789abcdef"[i % 16]).collect();
    for i in 0..BLOBS {
        let mut data = format!("blob {i}\n").into_bytes();
        data.extend_from_slice(&pattern[data.len()..]);
        write!(input, "blob\nmark :{}\ndata {}\n", i + 1, data.len()).unwrap();
        input.write_all(&data).unwrap();
        input.write_all(b"\n").unwrap();
    }
    write!(
        input,
        "commit refs/heads/main\ncommitter C <c@example.com> 1700000000 +0000\ndata 4\nbig\n"
    )
    .unwrap();
    for i in 0..BLOBS {
        writeln!(input, "M 100644 :{} dir/f{i:02}.bin", i + 1).unwrap();
    }
    input.write_all(b"\n").unwrap();
    drop(input);
    assert!(fi.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_of_500_mib_streams_in_bounded_memory() {
    let mut d = Daemon::start("");
    big_repo(&d.storage().join("big.git"));
    let mut c = RepositoryServiceClient::new(d.channel().await);
    // Reset the high-water mark to the current RSS (kernel: "5" clears VmHWM).
    let _ = std::fs::write(format!("/proc/{}/clear_refs", d.pid()), "5");
    let start_rss = d.rss_kib();
    let req = GetArchiveRequest {
        repository: Some(d.repo("big.git")),
        commit_id: "main".into(),
        prefix: "big".into(),
        format: Format::Tar as i32,
        ..Default::default()
    };
    let mut stream = c.get_archive(req).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    let mut total = first.data.len();
    // Streams: git is still writing when the first piece arrives.
    assert!(
        d.git_processes()
            .iter()
            .any(|(_, cmd)| cmd.contains("archive")),
        "git archive finished before the first message: the archive was buffered"
    );
    while let Some(m) = stream.message().await.unwrap() {
        assert!(m.data.len() <= 128 * 1024);
        total += m.data.len();
    }
    assert!(total > BLOBS * BLOB, "{total} bytes");
    let peak = d.peak_rss_kib();
    // Without clear_refs the peak is an older, higher one: the check only gets stricter.
    let grown = peak.saturating_sub(start_rss);
    assert!(
        grown < BUDGET_KIB,
        "daemon peak RSS grew {grown} KiB (from {start_rss} KiB) for a {} MiB archive",
        total / MIB
    );
    // Nothing left but the pool's cat-file: git archive exited.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d
        .git_processes()
        .iter()
        .any(|(_, cmd)| cmd.contains(" archive "))
    {
        assert!(
            std::time::Instant::now() < until,
            "git archive left running"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(d.alive());
}

//! Spool tests: real pipes, real files, and files the kernel makes fail.

use super::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn config(dir: &std::path::Path, threshold: usize) -> SpoolConfig {
    SpoolConfig {
        enabled: true,
        threshold,
        dir: dir.to_path_buf(),
        budget: Budget::new(u64::MAX),
    }
}

async fn read_all(r: &mut SpoolReader) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk().await.unwrap() {
        out.extend_from_slice(&c);
    }
    out
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn drains_writer_before_reader_reads_and_preserves_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let payload = data(3 * 1024 * 1024 + 17);
    let (mut w, r) = tokio::io::duplex(64 * 1024);
    let mut reader = spool(r, &config(dir.path(), 256 * 1024));
    let p = payload.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&p).await.unwrap();
    });
    // The writer finishes although nobody has read yet.
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read_all(&mut reader).await, payload);
    // Spill file is unlinked: nothing in the dir.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn unusable_dir_falls_back_to_direct_streaming() {
    let payload = data(1024 * 1024);
    let (mut w, r) = tokio::io::duplex(64 * 1024);
    let cfg = config(std::path::Path::new("/nonexistent/spool"), 128 * 1024);
    let mut reader = spool(r, &cfg);
    let p = payload.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&p).await.unwrap();
    });
    // Writer can't finish without a reader: bounded buffering.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writer.is_finished());
    assert_eq!(read_all(&mut reader).await, payload);
    writer.await.unwrap();
}

/// A spill file of 256 KiB that can't grow: writes past it fail (`EPERM`) — a real
/// failing file, as a full disk would make one.
fn sealed_file(_: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create returns a new fd we own (or -1).
    let fd = unsafe {
        libc::memfd_create(
            c"spool-test".as_ptr(),
            libc::MFD_ALLOW_SEALING | libc::MFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is ours and open.
    let f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.set_len(256 * 1024)?;
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_GROW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(f)
}

fn dev_full(_: &std::path::Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/full")
}

/// Spill writes that fail mid-response (first after 256 KiB, then at once): the bytes
/// spooled stay readable, the rest streams directly, the output is whole and in order.
#[tokio::test]
async fn failed_spill_write_falls_back_mid_response() {
    for open in [sealed_file as OpenSpill, dev_full] {
        let payload = data(2 * 1024 * 1024 + 5);
        let (mut w, r) = tokio::io::duplex(64 * 1024);
        let cfg = config(std::path::Path::new("/unused"), 64 * 1024);
        let before = cfg.budget.stats().fallbacks;
        let mut reader = spool_with(r, &cfg, open);
        let p = payload.clone();
        let writer = tokio::spawn(async move { w.write_all(&p).await.unwrap() });
        // After the failure the writer is held to the reader's pace.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!writer.is_finished());
        assert!(
            cfg.budget.stats().fallbacks > before,
            "counted in this server's budget"
        );
        assert_eq!(read_all(&mut reader).await, payload);
        writer.await.unwrap();
    }
}

/// Spools sharing a budget stop spooling ahead at it (one chunk over per response), and
/// stream directly until their readers catch up.
#[tokio::test]
async fn budget_bounds_all_spools_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 64 * 1024);
    cfg.budget = Budget::new(256 * 1024);
    let payload = data(2 * 1024 * 1024);
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..3 {
        let (mut w, r) = tokio::io::duplex(16 * 1024);
        readers.push(spool(r, &cfg));
        let p = payload.clone();
        writers.push(tokio::spawn(async move { w.write_all(&p).await.unwrap() }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(writers.iter().all(|w| !w.is_finished()));
    let used = cfg.budget.used();
    assert!(used <= 256 * 1024 + 3 * CHUNK as u64, "{used}");
    for r in &mut readers {
        assert_eq!(read_all(r).await, payload);
    }
    for w in writers {
        w.await.unwrap();
    }
    drop(readers);
    assert_eq!(cfg.budget.used(), 0);
}

/// A spill file the reader has caught up with is emptied: its disk space is freed.
#[tokio::test]
async fn caught_up_spill_file_is_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 64 * 1024);
    let (mut w, r) = tokio::io::duplex(64 * 1024);
    let mut reader = spool(r, &cfg);
    let first = data(512 * 1024);
    w.write_all(&first).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cfg.budget.used() < first.len() as u64 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut got = Vec::new();
    while got.len() < first.len() {
        got.extend_from_slice(&reader.next_chunk().await.unwrap().unwrap());
    }
    assert_eq!(got, first);
    w.write_all(&data(1000)).await.unwrap();
    drop(w);
    // Placing the next chunk empties the file: only that chunk is left spooled.
    while cfg.budget.used() != 1000 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            cfg.budget.used()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(read_all(&mut reader).await, data(1000));
}

#[tokio::test]
async fn disabled_spool_streams_directly() {
    let payload = data(512 * 1024);
    let (mut w, r) = tokio::io::duplex(16 * 1024);
    let mut cfg = config(std::path::Path::new("/tmp"), 1 << 30);
    cfg.enabled = false;
    let mut reader = spool(r, &cfg);
    let p = payload.clone();
    let writer = tokio::spawn(async move { w.write_all(&p).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!writer.is_finished());
    assert_eq!(read_all(&mut reader).await, payload);
}

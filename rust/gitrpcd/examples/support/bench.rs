//! What the benchmark examples share (`rpc_bench`, `read_bench`; included with `#[path]`,
//! as examples can't depend on each other): a deterministic RNG, git on PATH, percentiles
//! and the formatting of times, and starting and stopping a `gitrpcd` child.
#![allow(dead_code)] // each example uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, good enough to pick samples and shape a history.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// In [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Nearest-rank percentile of sorted values.
pub fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Microseconds as `123 µs` or `1.23 ms`.
pub fn us(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 1000.0 {
        format!("{v:.0} µs")
    } else if v < 100_000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{:.0} ms", v / 1000.0)
    }
}

/// Seconds as `1.23 s` or `456 ms`.
pub fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

pub fn find_git() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("git"))
                .find(|g| g.is_file())
        })
        .expect("git on PATH")
}

/// `git --git-dir <repo> <args>`'s stdout; panics if git fails.
pub fn git(git: &Path, repo: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(git)
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    out.stdout
}

/// Where the binaries of this example's profile are: `target/<profile>/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Wait (up to 30 s) until a started `gitrpcd` accepts connections on `socket`.
pub fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "gitrpcd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stop a `gitrpcd` child: SIGTERM (a graceful stop), SIGKILL after 10 s.
pub fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

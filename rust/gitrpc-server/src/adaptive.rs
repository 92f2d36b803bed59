//! Adaptive concurrency limits (`adaptive = true` in a `[[concurrency]]` entry): AIMD on
//! measured pressure, as Gitaly's adaptive limiter does.
//!
//! Every `interval` the server reads the kernel's pressure stall information (PSI:
//! `some avg10`, the share of the last 10 s in which some task waited for CPU, or for
//! memory), from the server's own cgroup (v2) if it has one, else from `/proc/pressure`.
//! Under pressure (CPU ≥ `cpu_threshold` % or memory ≥ `memory_threshold` %) every adaptive
//! limit is multiplied by `backoff` (never below `min_limit`); otherwise it grows by one (up
//! to `max_limit`). Without readable PSI the limits stay where they are. The current value is
//! exported as `gitrpc_limit_current`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::AdaptiveLimiting;
use crate::limiter::Limiter;

/// One additive-increase / multiplicative-decrease rule.
#[derive(Clone, Copy, Debug)]
pub struct Aimd {
    pub min: usize,
    pub max: usize,
    pub backoff: f64,
}

impl Aimd {
    /// The next limit after `current`, given whether the machine is under pressure (`None`:
    /// unknown, keep the limit).
    pub fn next(&self, current: usize, pressured: Option<bool>) -> usize {
        let next = match pressured {
            None => current,
            Some(true) => ((current as f64) * self.backoff).floor() as usize,
            Some(false) => current + 1,
        };
        next.clamp(self.min.max(1), self.max.max(self.min).max(1))
    }
}

/// Pressure readings (percent, `some avg10`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pressure {
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
}

/// `some avg10=` of a PSI file's text (parsed by `procfs`; the `full` line is ignored, and
/// older kernels' `cpu.pressure` has none).
pub fn parse_psi(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    let record = procfs::parse_pressure_record(line).ok()?;
    // avg10 has two decimals; through f32 it would read 12.31 as 12.3100004.
    format!("{:.2}", record.avg10).parse().ok()
}

/// Where PSI is read: `dir/cpu.pressure` and `dir/memory.pressure` for a cgroup v2 directory,
/// `/proc/pressure/{cpu,memory}` otherwise.
pub fn psi_files(config: &AdaptiveLimiting) -> (PathBuf, PathBuf) {
    if let Some(dir) = &config.pressure_dir {
        return pressure_pair(dir);
    }
    if let Some(dir) = own_cgroup_v2() {
        if dir.join("cpu.pressure").exists() {
            return (dir.join("cpu.pressure"), dir.join("memory.pressure"));
        }
    }
    pressure_pair(Path::new("/proc/pressure"))
}

fn pressure_pair(dir: &Path) -> (PathBuf, PathBuf) {
    if dir.join("cpu.pressure").exists() {
        (dir.join("cpu.pressure"), dir.join("memory.pressure"))
    } else {
        (dir.join("cpu"), dir.join("memory"))
    }
}

/// This process's cgroup v2 directory (`0::/path` in /proc/self/cgroup).
fn own_cgroup_v2() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/')))
}

pub fn read_pressure(files: &(PathBuf, PathBuf)) -> Pressure {
    let read = |p: &Path| std::fs::read_to_string(p).ok().and_then(|t| parse_psi(&t));
    Pressure {
        cpu: read(&files.0),
        memory: read(&files.1),
    }
}

/// Whether `p` is over the thresholds (`None` if nothing could be read).
pub fn pressured(p: Pressure, config: &AdaptiveLimiting) -> Option<bool> {
    match (p.cpu, p.memory) {
        (None, None) => None,
        (cpu, mem) => Some(
            cpu.is_some_and(|c| c >= config.cpu_threshold)
                || mem.is_some_and(|m| m >= config.memory_threshold),
        ),
    }
}

/// Adjust `limiters` every `config.interval` until the task is aborted.
pub async fn run(config: AdaptiveLimiting, limiters: Vec<(Arc<Limiter>, Aimd)>) {
    let files = psi_files(&config);
    tracing::info!(cpu = %files.0.display(), memory = %files.1.display(), "adaptive limiting on");
    let mut tick = tokio::time::interval(config.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let p = read_pressure(&files);
        let under = pressured(p, &config);
        for (limiter, rule) in &limiters {
            let (before, after) = (limiter.limit(), rule.next(limiter.limit(), under));
            if after != before {
                tracing::info!(limiter = limiter.name(), before, after, cpu = ?p.cpu, memory = ?p.memory, "concurrency limit adjusted");
                limiter.set_limit(after);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aimd_steps() {
        let r = Aimd {
            min: 2,
            max: 10,
            backoff: 0.5,
        };
        assert_eq!(r.next(8, Some(true)), 4);
        assert_eq!(r.next(4, Some(true)), 2);
        assert_eq!(r.next(2, Some(true)), 2);
        assert_eq!(r.next(2, Some(false)), 3);
        assert_eq!(r.next(10, Some(false)), 10);
        assert_eq!(r.next(7, None), 7);
    }

    #[test]
    fn parses_psi() {
        let t = "some avg10=12.31 avg60=25.83 avg300=13.89 total=1325575855\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_psi(t), Some(12.31));
        assert_eq!(parse_psi("garbage"), None);
    }

    #[test]
    fn thresholds() {
        let c = AdaptiveLimiting::default();
        let p = |cpu, memory| Pressure { cpu, memory };
        assert_eq!(pressured(p(None, None), &c), None);
        assert_eq!(pressured(p(Some(10.0), Some(0.0)), &c), Some(false));
        assert_eq!(pressured(p(Some(c.cpu_threshold), None), &c), Some(true));
        assert_eq!(
            pressured(p(Some(0.0), Some(c.memory_threshold)), &c),
            Some(true)
        );
    }
}

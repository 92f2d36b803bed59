//! What the soak samples every few seconds about the server process: `/proc/<pid>` (RSS,
//! virtual size, threads, open descriptors), the git processes alive (its descendants, and
//! any process naming the soak's storage: a git orphaned by a killed server), the host's
//! ballast, and the server's own `/metrics`.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// One sample.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    /// Seconds since the load started (negative: before).
    pub at: f64,
    pub rss_kib: u64,
    pub vmsize_kib: u64,
    pub threads: u64,
    pub fds: u64,
    pub ballast_kib: u64,
    pub git_alive: u64,
    pub catfile_idle: f64,
    /// `gitrpc_git_spawn_seconds` buckets summed over subcommands: (le, cumulative count).
    pub spawn_buckets: Vec<(f64, f64)>,
    pub optimizations: f64,
    pub scheduled: f64,
}

fn status_field(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (pid, ppid, cmdline) of every live, non-zombie process.
fn processes() -> Vec<(i32, i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if f.len() < 2 || f[0] == "Z" {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        out.push((pid, f[1].parse().unwrap_or(0), cmd));
    }
    out
}

/// git processes of the server `pid` (descendants), plus any naming `storage`.
pub fn git_processes(pid: Option<i32>, storage: &Path) -> Vec<(i32, String)> {
    let all = processes();
    let storage = storage.to_string_lossy().into_owned();
    let descends = |mut p: i32| -> bool {
        let Some(server) = pid else { return false };
        for _ in 0..64 {
            let Some(&(_, ppid, _)) = all.iter().find(|x| x.0 == p) else {
                return false;
            };
            if ppid == server {
                return true;
            }
            if ppid <= 1 {
                return false;
            }
            p = ppid;
        }
        false
    };
    all.iter()
        .filter(|(p, _, cmd)| {
            Some(*p) != pid
                && cmd.contains("git")
                && (descends(*p) || cmd.contains(&storage))
                && !cmd.contains("gitrpc-ssh")
        })
        .map(|(p, _, c)| (*p, c.clone()))
        .collect()
}

pub fn fds(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// `GET /metrics` on `addr`; empty on any failure (a server restarting).
pub fn metrics(addr: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The sum of every sample of `name` whose labels contain all of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
                && labels.iter().all(|x| l.contains(x))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn spawn_buckets(text: &str) -> Vec<(f64, f64)> {
    let mut by_le: Vec<(f64, f64)> = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("gitrpc_git_spawn_seconds_bucket{") else {
            continue;
        };
        let Some(le) = rest.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::INFINITY)
        };
        let v: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        match by_le.iter_mut().find(|(x, _)| *x == le) {
            Some((_, c)) => *c += v,
            None => by_le.push((le, v)),
        }
    }
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_le
}

/// Sample the server `pid` now.
pub fn probe(at: f64, pid: Option<i32>, monitor: &str, storage: &Path, status: &Path) -> Probe {
    let text = metrics(monitor);
    let ballast = std::fs::read_to_string(status)
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    let p = pid.unwrap_or(0);
    Probe {
        at,
        rss_kib: status_field(p, "VmRSS:"),
        vmsize_kib: status_field(p, "VmSize:"),
        threads: status_field(p, "Threads:"),
        fds: pid.map_or(0, fds),
        ballast_kib: ballast / 1024,
        git_alive: git_processes(pid, storage).len() as u64,
        catfile_idle: metric_sum(&text, "gitrpc_catfile_idle_processes", &[]),
        spawn_buckets: spawn_buckets(&text),
        optimizations: metric_sum(
            &text,
            "gitrpc_housekeeping_tasks_total",
            &["housekeeping_task=\"total\""],
        ),
        scheduled: metric_sum(&text, "gitrpc_housekeeping_scheduled_total", &[]),
    }
}

/// p99 of the spawns between two samples, from the histogram's buckets: the smallest bucket
/// bound holding 99 % of them (an upper bound; `None` without spawns).
pub fn spawn_p99(from: &Probe, to: &Probe) -> Option<f64> {
    let before = |le: f64| {
        from.spawn_buckets
            .iter()
            .find(|(x, _)| *x == le)
            .map_or(0.0, |(_, c)| *c)
    };
    let deltas: Vec<(f64, f64)> = to
        .spawn_buckets
        .iter()
        .map(|(le, c)| (*le, (c - before(*le)).max(0.0)))
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    deltas
        .iter()
        .find(|(_, c)| *c >= 0.99 * total)
        .map(|(le, _)| *le)
}

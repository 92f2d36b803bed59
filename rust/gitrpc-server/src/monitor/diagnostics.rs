//! The diagnostics page: the calls in flight (method, repository, age; queued ones
//! included), this server's git process table joined with what /proc says about each
//! process — the `ps` view, joined to the requests — the repository optimizations
//! running and queued, each `[[rate_limiting]]` rule with its recent decisions, then the
//! pack-objects cache's entries (in flight and kept) with their readers.

use std::fmt::Write as _;

use crate::deps::Deps;

use super::proc_info;

#[derive(serde::Serialize)]
pub struct Diagnostics {
    pub rpcs: Vec<RpcRow>,
    pub git_processes: Vec<ProcessRow>,
    pub housekeeping: Housekeeping,
    pub rate_limiting: Vec<RateRow>,
    /// `[pack_objects_cache]` entries alive (absent when the cache is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack_objects_cache: Option<Vec<crate::packcache::EntryView>>,
    /// The cache's fast path (v2 fetches served without upload-pack relaying the pack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack_objects_cache_direct: Option<crate::packcache::DirectStats>,
}

/// Repository optimizations: running (RPCs and background), queued, the daily window.
#[derive(serde::Serialize)]
pub struct Housekeeping {
    pub running: Vec<OptimizationRow>,
    pub queued: Vec<String>,
    /// The daily window open now or next (Unix seconds), if `[daily_maintenance]` is set.
    pub daily_window: Option<(u64, u64)>,
}

#[derive(serde::Serialize)]
pub struct OptimizationRow {
    pub repository: String,
    pub origin: &'static str,
    pub step: &'static str,
    pub age_seconds: f64,
}

/// A `[[rate_limiting]]` rule and its last decisions (times in nanoseconds since the rule
/// started, so they can be replayed exactly).
#[derive(serde::Serialize)]
pub struct RateRow {
    pub rpc: String,
    pub interval_ns: u64,
    pub burst: u32,
    pub max_delay_ns: u64,
    pub keys: usize,
    pub admitted: u64,
    pub refused: u64,
    pub recent: Vec<crate::ratelimit::Decision>,
}

#[derive(serde::Serialize)]
pub struct RpcRow {
    pub method: String,
    pub repository: Option<String>,
    pub age_seconds: f64,
}

#[derive(serde::Serialize)]
pub struct ProcessRow {
    pub pid: i32,
    pub subcommand: &'static str,
    pub args: Vec<String>,
    pub age_seconds: f64,
    #[serde(flatten)]
    pub proc: proc_info::ProcInfo,
}

/// In-flight RPCs (oldest first) and live git processes.
pub fn diagnostics(deps: &Deps) -> Diagnostics {
    let mut rpcs: Vec<RpcRow> = deps
        .rpcs
        .in_flight()
        .into_iter()
        .map(|c| RpcRow {
            method: c.method,
            repository: c.repository,
            age_seconds: c.age.as_secs_f64(),
        })
        .collect();
    rpcs.sort_by(|a, b| b.age_seconds.total_cmp(&a.age_seconds));
    let git_processes = deps
        .git
        .processes()
        .list()
        .into_iter()
        .map(|p| ProcessRow {
            pid: p.pid,
            subcommand: p.subcommand,
            args: p
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            age_seconds: p.started.elapsed().as_secs_f64(),
            proc: proc_info::read(p.pid).unwrap_or_default(),
        })
        .collect();
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let s = &deps.scheduler;
    let housekeeping = Housekeeping {
        running: s
            .optimizer()
            .running()
            .into_iter()
            .map(|r| OptimizationRow {
                repository: r.repository,
                origin: r.origin.as_str(),
                step: r.step,
                age_seconds: r.age.as_secs_f64(),
            })
            .collect(),
        queued: s.queued().into_iter().map(|q| q.repository).collect(),
        daily_window: s.daily_window().map(|w| (unix(w.start), unix(w.end))),
    };
    let mut rate_limiting: Vec<RateRow> = deps
        .limits
        .rate
        .values()
        .map(|l| {
            let (interval, burst, max_delay) = l.settings();
            RateRow {
                rpc: l.rpc().to_string(),
                interval_ns: interval.as_nanos() as u64,
                burst,
                max_delay_ns: max_delay.as_nanos() as u64,
                keys: l.keys(),
                admitted: l.admitted(),
                refused: l.refused(),
                recent: l.recent(),
            }
        })
        .collect();
    rate_limiting.sort_by(|a, b| a.rpc.cmp(&b.rpc));
    Diagnostics {
        rpcs,
        git_processes,
        housekeeping,
        rate_limiting,
        pack_objects_cache: deps.packcache.as_ref().map(|c| c.entries()),
        pack_objects_cache_direct: deps.packcache.as_ref().map(|c| c.direct_stats()),
    }
}

pub fn diagnostics_text(deps: &Deps) -> String {
    let d = diagnostics(deps);
    let mut out = String::new();
    let _ = writeln!(out, "RPCs in flight: {}", d.rpcs.len());
    let _ = writeln!(out, "{:>9}  {:<50}  REPOSITORY", "AGE(s)", "METHOD");
    for r in &d.rpcs {
        let _ = writeln!(
            out,
            "{:>9.3}  {:<50}  {}",
            r.age_seconds,
            r.method,
            r.repository.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(out, "\ngit processes: {}", d.git_processes.len());
    let _ = writeln!(
        out,
        "{:>8}  {:>9}  {:<5}  {:>8}  {:>10}  ARGS",
        "PID", "AGE(s)", "STATE", "CPU(s)", "RSS(KiB)"
    );
    for p in &d.git_processes {
        let _ = writeln!(
            out,
            "{:>8}  {:>9.3}  {:<5}  {:>8.2}  {:>10}  git {}",
            p.pid,
            p.age_seconds,
            p.proc.state,
            p.proc.cpu_seconds,
            p.proc.rss_bytes / 1024,
            p.args.join(" ")
        );
    }
    let h = &d.housekeeping;
    let _ = writeln!(
        out,
        "\noptimizations running: {}, queued: {}",
        h.running.len(),
        h.queued.len()
    );
    let _ = writeln!(
        out,
        "{:>9}  {:<7}  {:<16}  REPOSITORY",
        "AGE(s)", "ORIGIN", "STEP"
    );
    for r in &h.running {
        let _ = writeln!(
            out,
            "{:>9.3}  {:<7}  {:<16}  {}",
            r.age_seconds, r.origin, r.step, r.repository
        );
    }
    for q in &h.queued {
        let _ = writeln!(out, "{:>9}  {:<7}  {:<16}  {q}", "-", "writes", "queued");
    }
    if let Some((start, end)) = h.daily_window {
        let _ = writeln!(out, "daily window: {start}..{end} (Unix seconds, UTC)");
    }
    for r in &d.rate_limiting {
        let _ = writeln!(
            out,
            "\nrate limit {}: a token every {:?}, burst {}, max_delay {:?}; {} callers over the rate, {} admitted, {} refused",
            r.rpc,
            std::time::Duration::from_nanos(r.interval_ns),
            r.burst,
            std::time::Duration::from_nanos(r.max_delay_ns),
            r.keys,
            r.admitted,
            r.refused
        );
    }
    if let Some(entries) = &d.pack_objects_cache {
        let _ = writeln!(out, "\npack-objects cache entries: {}", entries.len());
        if let Some(f) = &d.pack_objects_cache_direct {
            let _ = writeln!(
                out,
                "fast path: {} fetch requests known, {} served, {} pack bytes sent",
                f.mappings, f.served, f.bytes
            );
        }
        let _ = writeln!(
            out,
            "{:<12}  {:<10}  {:>9}  {:>12}  {:<4}  {:>5}  {:>8}  {:<40}  READERS (offsets)",
            "KEY", "STATE", "AGE(s)", "BYTES", "KEPT", "SEEN", "PID", "REPOSITORY"
        );
        for e in entries {
            let place = if e.in_memory { " (memory)" } else { "" };
            let _ = writeln!(
                out,
                "{:<12}  {:<10}  {:>9.3}  {:>12}  {:<4}  {:>5}  {:>8}  {:<40}  {} {:?}{place}",
                e.key,
                e.state,
                e.age_seconds,
                e.written,
                if e.kept { "yes" } else { "no" },
                e.occurrences,
                e.pid.map_or("-".to_string(), |p| p.to_string()),
                e.repository,
                e.readers.len(),
                e.readers,
            );
        }
    }
    out
}

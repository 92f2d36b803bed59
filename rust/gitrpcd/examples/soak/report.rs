//! Windows, goals and the printed report (a README section) plus JSON.
//!
//! Per window: each family's p50/p99 latency (client-side, successful calls), calls and
//! failures; the medians of the samples taken in it (RSS minus ballast, virtual size,
//! threads, descriptors, git alive, idle cat-files); the p99 of git spawns (from the
//! server's histogram, a bucket bound); optimizations done. The goals compare the last
//! window with the first: p99 ≤ 1.2x per family, RSS (minus ballast), descriptors and threads
//! within ±10 %.

use std::fmt::Write as _;

use crate::load::{Rec, FAMILIES};
use crate::probe::{spawn_p99, Probe};

pub struct FamilyStats {
    pub calls: usize,
    pub failed: usize,
    pub p50: f64,
    pub p99: f64,
}

pub struct Window {
    pub from: f64,
    pub to: f64,
    pub families: Vec<FamilyStats>,
    pub rss_kib: u64,
    pub vmsize_kib: u64,
    pub ballast_kib: u64,
    pub threads: u64,
    pub fds: u64,
    pub git_alive: u64,
    pub git_alive_max: u64,
    pub catfile_idle: f64,
    pub spawn_p99: Option<f64>,
    pub optimizations: f64,
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// Cut the run into windows of `len` seconds from `warmup` on.
pub fn windows(recs: &[Rec], probes: &[Probe], warmup: f64, len: f64, n: usize) -> Vec<Window> {
    (0..n)
        .map(|w| {
            let (from, to) = (warmup + w as f64 * len, warmup + (w + 1) as f64 * len);
            let families = (0..FAMILIES.len())
                .map(|f| {
                    let mut ok = Vec::new();
                    let mut failed = 0;
                    for r in recs.iter().filter(|r| {
                        r.family as usize == f && (r.at as f64) >= from && (r.at as f64) < to
                    }) {
                        match r.ok {
                            true => ok.push(r.ms as f64),
                            false => failed += 1,
                        }
                    }
                    ok.sort_by(|a, b| a.total_cmp(b));
                    FamilyStats {
                        calls: ok.len() + failed,
                        failed,
                        p50: pct(&ok, 0.5),
                        p99: pct(&ok, 0.99),
                    }
                })
                .collect();
            let ps: Vec<&Probe> = probes
                .iter()
                .filter(|p| p.at >= from && p.at < to)
                .collect();
            let m = |f: &dyn Fn(&Probe) -> u64| median(ps.iter().map(|p| f(p)).collect());
            let idle: Vec<u64> = ps.iter().map(|p| p.catfile_idle as u64).collect();
            Window {
                from,
                to,
                families,
                rss_kib: m(&|p| p.rss_kib.saturating_sub(p.ballast_kib)),
                vmsize_kib: m(&|p| p.vmsize_kib),
                ballast_kib: m(&|p| p.ballast_kib),
                threads: m(&|p| p.threads),
                fds: m(&|p| p.fds),
                git_alive: m(&|p| p.git_alive),
                git_alive_max: ps.iter().map(|p| p.git_alive).max().unwrap_or(0),
                catfile_idle: median(idle) as f64,
                spawn_p99: match (ps.first(), ps.last()) {
                    (Some(a), Some(b)) => spawn_p99(a, b),
                    _ => None,
                },
                optimizations: match (ps.first(), ps.last()) {
                    (Some(a), Some(b)) => (b.optimizations - a.optimizations).max(0.0),
                    _ => 0.0,
                },
            }
        })
        .collect()
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

/// Fewer successful calls than this in a window: its p99 is not compared.
const MIN_CALLS: usize = 20;

/// The goals: (text, met; `None`: not compared).
pub fn goals(w: &[Window], leftover_git: usize) -> Vec<(String, Option<bool>)> {
    let mut out = Vec::new();
    let (Some(first), Some(last)) = (w.first(), w.last()) else {
        return out;
    };
    for (f, name) in FAMILIES.iter().enumerate() {
        let (a, b) = (first.families[f].p99, last.families[f].p99);
        if a.is_nan() || b.is_nan() {
            continue;
        }
        // A p99 of a handful of calls is their maximum: not a latency to compare.
        let few = first.families[f].calls.min(last.families[f].calls);
        if few < MIN_CALLS {
            out.push((format!("{name}: p99 not compared ({few} calls in a window, fewer than {MIN_CALLS}); last window p99 {} ms, first {} ms", ms(b), ms(a)), None));
            continue;
        }
        let r = b / a;
        out.push((
            format!(
                "{name}: last window p99 {} ms is {r:.2}x the first's {} ms (goal ≤ 1.2x)",
                ms(b),
                ms(a)
            ),
            Some(r <= 1.2),
        ));
    }
    let flat = |name: &str, a: u64, b: u64| {
        let r = b as f64 / a.max(1) as f64;
        (
            format!(
                "{name}: last window median {b} vs first {a} ({:+.1} %, goal ±10 %)",
                (r - 1.0) * 100.0
            ),
            Some((0.9..=1.1).contains(&r)),
        )
    };
    out.push(flat("RSS minus ballast (KiB)", first.rss_kib, last.rss_kib));
    out.push(flat("open descriptors", first.fds, last.fds));
    out.push(flat("threads", first.threads, last.threads));
    out.push((
        format!("git processes left after the load stopped: {leftover_git} (goal 0)"),
        Some(leftover_git == 0),
    ));
    out
}

/// With three windows or more, the last window's p99 against the second's too (not a goal:
/// a stall of the shared machine in the first window makes the first ratio meaningless).
pub fn against_second(w: &[Window]) -> Option<String> {
    if w.len() < 3 {
        return None;
    }
    let (second, last) = (&w[1], &w[w.len() - 1]);
    let ratios: Vec<String> = FAMILIES
        .iter()
        .enumerate()
        .filter(|(f, _)| second.families[*f].calls.min(last.families[*f].calls) >= MIN_CALLS)
        .map(|(f, name)| {
            format!(
                "{name} {:.2}x",
                last.families[f].p99 / second.families[f].p99
            )
        })
        .collect();
    Some(format!(
        "last window p99 / second window p99: {}",
        ratios.join(", ")
    ))
}

/// The markdown table of the windows.
pub fn table(w: &[Window]) -> String {
    let mut s = String::new();
    let _ = write!(s, "| window (s) |");
    for f in FAMILIES {
        let _ = write!(s, " {f} p50 / p99 ms |");
    }
    let _ = writeln!(
        s,
        " RSS − ballast MiB | ballast MiB | VmSize MiB | threads | fds | git alive (max) | idle cat-files | git spawn p99 | optimizations |"
    );
    let _ = write!(s, "|---|");
    for _ in FAMILIES {
        let _ = write!(s, "---|");
    }
    let _ = writeln!(s, "---|---|---|---|---|---|---|---|---|");
    for x in w {
        let _ = write!(s, "| {:.0}–{:.0} |", x.from, x.to);
        for f in &x.families {
            let fails = match f.failed {
                0 => String::new(),
                n => format!(" ({n} failed)"),
            };
            let _ = write!(s, " {} / {}{fails} |", ms(f.p50), ms(f.p99));
        }
        let spawn = x
            .spawn_p99
            .map_or("—".into(), |v| format!("≤ {} ms", ms(v * 1000.0)));
        let _ = writeln!(
            s,
            " {} | {} | {} | {} | {} | {} ({}) | {} | {spawn} | {:.0} |",
            mib(x.rss_kib),
            mib(x.ballast_kib),
            mib(x.vmsize_kib),
            x.threads,
            x.fds,
            x.git_alive,
            x.git_alive_max,
            x.catfile_idle,
            x.optimizations
        );
    }
    s
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

/// The run as JSON (hand-written: the example has no JSON dependency).
pub fn json(w: &[Window], goals: &[(String, Option<bool>)], extra: &[(&str, String)]) -> String {
    let mut s = String::from("{\n  \"windows\": [\n");
    for (i, x) in w.iter().enumerate() {
        let fams: Vec<String> = FAMILIES
            .iter()
            .zip(&x.families)
            .map(|(n, f)| {
                format!(
                    "\"{n}\": {{\"calls\": {}, \"failed\": {}, \"p50_ms\": {}, \"p99_ms\": {}}}",
                    f.calls,
                    f.failed,
                    num(f.p50),
                    num(f.p99)
                )
            })
            .collect();
        let _ = write!(
            s,
            "    {{\"from_s\": {}, \"to_s\": {}, \"families\": {{{}}}, \"rss_minus_ballast_kib\": {}, \"ballast_kib\": {}, \"vmsize_kib\": {}, \"threads\": {}, \"fds\": {}, \"git_alive\": {}, \"git_alive_max\": {}, \"catfile_idle\": {}, \"spawn_p99_s\": {}, \"optimizations\": {}}}",
            x.from,
            x.to,
            fams.join(", "),
            x.rss_kib,
            x.ballast_kib,
            x.vmsize_kib,
            x.threads,
            x.fds,
            x.git_alive,
            x.git_alive_max,
            num(x.catfile_idle),
            x.spawn_p99.map_or("null".into(), num),
            num(x.optimizations)
        );
        s.push_str(if i + 1 < w.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ],\n  \"goals\": [\n");
    for (i, (g, met)) in goals.iter().enumerate() {
        let met = met.map_or("null".into(), |m| m.to_string());
        let _ = write!(s, "    {{\"goal\": {:?}, \"met\": {met}}}", g);
        s.push_str(if i + 1 < goals.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ]");
    for (k, v) in extra {
        let _ = write!(s, ",\n  \"{k}\": {v}");
    }
    s.push_str("\n}\n");
    s
}

//! Observability that works under duress: Prometheus metrics and a diagnostics page on
//! `prometheus_listen_addr`, served by plain OS threads with blocking I/O — not by the gRPC
//! runtime — so they answer even when every runtime worker is busy or stuck (`http.rs`:
//! several connections at once, each with a total deadline).
//!
//! Everything they read is kept in atomics and briefly held mutexes (RPC counts and calls in
//! flight per server in [`Rpcs`], git processes process-wide in `gitrpc_git::stats`, limiter
//! snapshots, spool and cat-file counters); `/proc` supplies each git's state, CPU and RSS.
//!
//! - `GET /metrics`: Prometheus text format.
//! - `GET /diagnostics`: calls in flight (method, repository, age) and the git process table
//!   (pid, age, state, CPU, RSS, args), as text; `/diagnostics.json` as JSON.

mod http;
pub mod procfs;
pub mod rpcs;

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gitrpc_git::stats::Histogram;

pub use rpcs::{CallGuard, RepoSlot, Rpcs};

use crate::deps::Deps;
use crate::startup::StartError;

/// The monitoring listener of a server; stops its thread when dropped.
pub struct MonitorServer {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MonitorServer {
    /// Bind `addr` and serve from a new thread. Holds the server's dependencies weakly.
    pub fn start(addr: &str, deps: &Arc<Deps>) -> Result<MonitorServer, StartError> {
        let bind = |source| StartError::Bind {
            key: "prometheus_listen_addr",
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let stop = Arc::new(AtomicBool::new(false));
        let weak = Arc::downgrade(deps);
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gitrpc-monitor".into())
            .spawn(move || http::serve(listener, weak, flag))
            .map_err(|source| StartError::Io {
                what: "monitor thread",
                source,
            })?;
        Ok(MonitorServer {
            addr: local,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://ip:port` of the listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MonitorServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The page for a request: (status line, content type, body).
fn page(deps: &Deps, method: &str, path: &str) -> (&'static str, &'static str, String) {
    match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics(deps),
        ),
        ("GET", "/diagnostics") => (
            "200 OK",
            "text/plain; charset=utf-8",
            diagnostics_text(deps),
        ),
        ("GET", "/diagnostics.json") => (
            "200 OK",
            "application/json",
            serde_json::to_string_pretty(&diagnostics(deps)).unwrap_or_default(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /metrics, /diagnostics or /diagnostics.json\n".to_string(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", String::new()),
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Text(String);

impl Text {
    fn help(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(self.0, "{name}{{{}}} {value}", l.join(","));
        }
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let (counts, sum) = h.cumulative();
        for (i, n) in counts.iter().enumerate() {
            let le = h
                .buckets()
                .get(i)
                .map(|b| b.to_string())
                .unwrap_or_else(|| "+Inf".to_string());
            let mut l = labels.to_vec();
            l.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &l, n);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(
            &format!("{name}_count"),
            labels,
            counts.last().copied().unwrap_or(0),
        );
    }
}

/// The Prometheus text exposition.
pub fn metrics(deps: &Deps) -> String {
    let mut t = Text(String::new());
    let rpcs = &deps.rpcs;

    t.help(
        "gitrpc_rpc_requests_total",
        "counter",
        "Finished RPCs by method and gRPC code.",
    );
    for ((method, code), n) in rpcs.counts() {
        t.sample(
            "gitrpc_rpc_requests_total",
            &[("method", &method), ("code", code)],
            n,
        );
    }
    t.help(
        "gitrpc_rpc_duration_seconds",
        "histogram",
        "RPC latency, to the end of the response.",
    );
    for (method, h) in rpcs.latencies() {
        t.histogram("gitrpc_rpc_duration_seconds", &[("method", &method)], &h);
    }
    t.help(
        "gitrpc_rpcs_in_flight",
        "gauge",
        "RPCs being served now (including queued ones).",
    );
    t.sample("gitrpc_rpcs_in_flight", &[], rpcs.in_flight().len());

    let c = deps.connections.stats();
    t.help(
        "gitrpc_connections_open",
        "gauge",
        "Client connections open now (all listeners).",
    );
    t.sample("gitrpc_connections_open", &[], c.open);
    t.help(
        "gitrpc_connections_max",
        "gauge",
        "[connections] max: past it new clients wait in the listen backlog.",
    );
    t.sample("gitrpc_connections_max", &[], c.max);
    t.help(
        "gitrpc_connections_accepted_total",
        "counter",
        "Client connections accepted.",
    );
    t.sample("gitrpc_connections_accepted_total", &[], c.accepted);
    t.help(
        "gitrpc_connections_closed_total",
        "counter",
        "Connections the server closed, by reason (handshake_timeout, idle_timeout).",
    );
    t.sample(
        "gitrpc_connections_closed_total",
        &[("reason", "handshake_timeout")],
        c.handshake_timeouts,
    );
    t.sample(
        "gitrpc_connections_closed_total",
        &[("reason", "idle_timeout")],
        c.idle_timeouts,
    );
    t.help(
        "gitrpc_accept_errors_total",
        "counter",
        "Failed accepts (e.g. out of file descriptors).",
    );
    t.sample("gitrpc_accept_errors_total", &[], c.accept_errors);

    t.help(
        "gitrpc_limit_current",
        "gauge",
        "Current concurrency limit per key (repository).",
    );
    t.help(
        "gitrpc_limit_queue_max",
        "gauge",
        "Queue size per key (0: unbounded).",
    );
    t.help(
        "gitrpc_limit_in_flight",
        "gauge",
        "Calls holding a slot, all keys.",
    );
    t.help(
        "gitrpc_limit_busiest_key_in_flight",
        "gauge",
        "Calls holding a slot on the busiest key: compare with gitrpc_limit_current.",
    );
    t.help(
        "gitrpc_limit_queued",
        "gauge",
        "Calls waiting for a slot, all keys.",
    );
    t.help(
        "gitrpc_limit_admitted_total",
        "counter",
        "Calls given a slot.",
    );
    t.help(
        "gitrpc_limit_dropped_total",
        "counter",
        "Calls refused, by reason (max_size, max_time).",
    );
    t.help(
        "gitrpc_limit_queue_wait_seconds_total",
        "counter",
        "Time admitted calls spent queued.",
    );
    let mut limiters: Vec<_> = deps.limits.all().collect();
    limiters.sort_by(|a, b| a.name().cmp(b.name()));
    for l in limiters {
        let s = l.snapshot();
        let name = [("limiter", l.name())];
        t.sample("gitrpc_limit_current", &name, s.limit);
        t.sample("gitrpc_limit_queue_max", &name, s.max_queue);
        t.sample("gitrpc_limit_in_flight", &name, s.running);
        t.sample(
            "gitrpc_limit_busiest_key_in_flight",
            &name,
            s.busiest_key_running,
        );
        t.sample("gitrpc_limit_queued", &name, s.queued);
        t.sample("gitrpc_limit_admitted_total", &name, s.admitted);
        for (reason, n) in [
            ("max_size", s.dropped_max_size),
            ("max_time", s.dropped_max_time),
        ] {
            t.sample(
                "gitrpc_limit_dropped_total",
                &[("limiter", l.name()), ("reason", reason)],
                n,
            );
        }
        t.sample(
            "gitrpc_limit_queue_wait_seconds_total",
            &name,
            s.queue_wait_seconds_total,
        );
    }

    let git = gitrpc_git::stats::snapshot();
    t.help(
        "gitrpc_git_commands_started_total",
        "counter",
        "git processes started, by subcommand (process-wide).",
    );
    for (sub, n, _) in &git.by_subcommand {
        t.sample(
            "gitrpc_git_commands_started_total",
            &[("subcommand", sub)],
            n,
        );
    }
    t.help(
        "gitrpc_git_spawn_seconds",
        "histogram",
        "Time to start a git process (posix_spawn), by subcommand.",
    );
    for (sub, h) in gitrpc_git::stats::spawn_latencies() {
        t.histogram("gitrpc_git_spawn_seconds", &[("subcommand", sub)], &h);
    }
    let usage = gitrpc_git::stats::command_usage();
    t.help(
        "gitrpc_git_command_cpu_seconds_total",
        "counter",
        "CPU time of finished git processes (and the children they waited for), from rusage, by subcommand and mode.",
    );
    for (sub, u) in &usage {
        t.sample(
            "gitrpc_git_command_cpu_seconds_total",
            &[("subcommand", sub), ("mode", "user")],
            u.user_seconds(),
        );
        t.sample(
            "gitrpc_git_command_cpu_seconds_total",
            &[("subcommand", sub), ("mode", "system")],
            u.system_seconds(),
        );
    }
    t.help(
        "gitrpc_git_command_max_rss_bytes",
        "histogram",
        "Peak resident memory of finished git processes, from rusage, by subcommand.",
    );
    for (sub, u) in &usage {
        t.histogram(
            "gitrpc_git_command_max_rss_bytes",
            &[("subcommand", sub)],
            &u.max_rss,
        );
    }
    t.help(
        "gitrpc_git_processes_running",
        "gauge",
        "git processes alive now (process-wide).",
    );
    t.sample("gitrpc_git_processes_running", &[], git.running);

    let (hits, misses, idle) = deps.catfile.stats();
    t.help(
        "gitrpc_catfile_cache_total",
        "counter",
        "cat-file process pool lookups by result.",
    );
    t.sample("gitrpc_catfile_cache_total", &[("result", "hit")], hits);
    t.sample("gitrpc_catfile_cache_total", &[("result", "miss")], misses);
    t.help(
        "gitrpc_catfile_idle_processes",
        "gauge",
        "Idle pooled cat-file processes.",
    );
    t.sample("gitrpc_catfile_idle_processes", &[], idle);

    use gitrpc_git::spool;
    t.help(
        "gitrpc_spool_bytes",
        "gauge",
        "Transport output buffered for clients, by place.",
    );
    t.sample(
        "gitrpc_spool_bytes",
        &[("place", "memory")],
        spool::BYTES_IN_MEMORY.load(Ordering::Relaxed),
    );
    t.sample(
        "gitrpc_spool_bytes",
        &[("place", "disk")],
        spool::BYTES_ON_DISK.load(Ordering::Relaxed),
    );
    t.help(
        "gitrpc_spool_max_bytes",
        "gauge",
        "[spool] max_bytes: past it responses stream directly.",
    );
    t.sample("gitrpc_spool_max_bytes", &[], deps.spool.budget.max());
    t.help(
        "gitrpc_spool_spills_total",
        "counter",
        "Responses that spilled to a temp file.",
    );
    t.sample(
        "gitrpc_spool_spills_total",
        &[],
        spool::SPILLS.load(Ordering::Relaxed),
    );
    t.help(
        "gitrpc_spool_fallbacks_total",
        "counter",
        "Spill files that could not be created or written (the rest streamed directly).",
    );
    t.sample(
        "gitrpc_spool_fallbacks_total",
        &[],
        spool::FALLBACKS.load(Ordering::Relaxed),
    );
    t.0
}

#[derive(serde::Serialize)]
pub struct Diagnostics {
    pub rpcs: Vec<RpcRow>,
    pub git_processes: Vec<ProcessRow>,
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
    pub proc: procfs::ProcInfo,
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
    let git_processes = gitrpc_git::stats::live_processes()
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
            proc: procfs::read(p.pid).unwrap_or_default(),
        })
        .collect();
    Diagnostics {
        rpcs,
        git_processes,
    }
}

fn diagnostics_text(deps: &Deps) -> String {
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
    out
}

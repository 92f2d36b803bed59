//! Observability that works under duress: Prometheus metrics and a diagnostics page on
//! `prometheus_listen_addr`, served from a dedicated OS thread (`http.rs`: several
//! connections at once, each with deadlines) — not by the gRPC runtime — so they answer even
//! when every runtime worker is busy or stuck.
//!
//! Everything they read is this server's own: its metrics registry (`crate::metrics`), its
//! calls in flight (`crate::accounting`), its git process table; `/proc` (through the
//! `procfs` crate) supplies each git's state, CPU and RSS.
//!
//! - `GET /metrics`: Prometheus text format.
//! - `GET /diagnostics`: calls in flight (method, repository, age), the git process table
//!   (pid, age, state, CPU, RSS, args) and the `[[rate_limiting]]` rules, as text;
//!   `/diagnostics.json` as JSON, with each rule's recent decisions.

mod diagnostics;
mod http;
pub mod proc_info;

use std::sync::Arc;

use tokio::sync::oneshot;

pub use diagnostics::{diagnostics, diagnostics_text, Diagnostics, ProcessRow, RpcRow};

use crate::deps::Deps;
use crate::startup::StartError;

/// The monitoring listener of a server; stops its thread when dropped.
pub struct MonitorServer {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
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
        let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let (stop, stopped) = oneshot::channel();
        let weak = Arc::downgrade(deps);
        let thread = std::thread::Builder::new()
            .name("gitrpc-monitor".into())
            .spawn(move || http::serve(listener, weak, stopped))
            .map_err(|source| StartError::Io {
                what: "monitor thread",
                source,
            })?;
        Ok(MonitorServer {
            addr: local,
            stop: Some(stop),
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
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The page for a request: (status, content type, body).
fn page(deps: &Deps, method: &str, path: &str) -> (u16, &'static str, String) {
    match (method, path) {
        ("GET", "/metrics") => (
            200,
            crate::metrics::CONTENT_TYPE,
            crate::metrics::encode(&deps.metrics),
        ),
        ("GET", "/diagnostics") => (
            200,
            "text/plain; charset=utf-8",
            diagnostics::diagnostics_text(deps),
        ),
        ("GET", "/diagnostics.json") => (
            200,
            "application/json",
            serde_json::to_string_pretty(&diagnostics(deps)).unwrap_or_default(),
        ),
        ("GET", _) => (
            404,
            "text/plain",
            "try /metrics, /diagnostics or /diagnostics.json\n".to_string(),
        ),
        _ => (405, "text/plain", String::new()),
    }
}

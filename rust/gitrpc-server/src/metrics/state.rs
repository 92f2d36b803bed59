//! Metrics read from the server's parts at each scrape (a `prometheus-client` collector):
//! limiters, connections, the cat-file pool, the spool, the git process table.

use std::sync::Arc;

use gitrpc_git::spool::Budget;
use gitrpc_git::{CatFilePool, Processes};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::conn::Connections;
use crate::limiter::Snapshot;
use crate::limits::Limits;

/// The parts of one server whose state is exported.
pub struct Sources {
    pub limits: Arc<Limits>,
    pub connections: Arc<Connections>,
    pub catfile: CatFilePool,
    pub spool: Arc<Budget>,
    pub processes: Processes,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sources")
    }
}

/// A label set of `N` (name, value) pairs.
type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

/// Writes one metric family: a descriptor, then a sample per label set.
struct Writer<'a>(DescriptorEncoder<'a>);

impl Writer<'_> {
    fn family<L, M>(&mut self, name: &str, help: &str, samples: &[(L, M)]) -> std::fmt::Result
    where
        L: EncodeLabelSet,
        M: EncodeMetric,
    {
        let Some((_, first)) = samples.first() else {
            return Ok(());
        };
        let mut m = self
            .0
            .encode_descriptor(name, help, None, first.metric_type())?;
        for (labels, value) in samples {
            value.encode(m.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn gauge(&mut self, name: &str, help: &str, v: i64) -> std::fmt::Result {
        let none: Labels<0> = [];
        self.family(name, help, &[(none, ConstGauge::new(v))])
    }

    fn counter(&mut self, name: &str, help: &str, v: u64) -> std::fmt::Result {
        let none: Labels<0> = [];
        self.family(name, help, &[(none, ConstCounter::new(v))])
    }
}

fn gauges<'a, const N: usize>(
    rows: impl IntoIterator<Item = (Labels<'a, N>, i64)>,
) -> Vec<(Labels<'a, N>, ConstGauge<i64>)> {
    rows.into_iter()
        .map(|(l, v)| (l, ConstGauge::new(v)))
        .collect()
}

fn counters<'a, const N: usize, V>(
    rows: impl IntoIterator<Item = (Labels<'a, N>, V)>,
) -> Vec<(Labels<'a, N>, ConstCounter<V>)> {
    rows.into_iter()
        .map(|(l, v)| (l, ConstCounter::new(v)))
        .collect()
}

impl Collector for Sources {
    fn encode(&self, encoder: DescriptorEncoder) -> std::fmt::Result {
        let mut w = Writer(encoder);
        self.connections(&mut w)?;
        self.limits(&mut w)?;
        self.rate_limits(&mut w)?;
        w.gauge(
            "gitrpc_git_processes_running",
            "git processes of this server alive now",
            self.processes.count() as i64,
        )?;
        let (hits, misses, idle) = self.catfile.stats();
        w.family(
            "gitrpc_catfile_cache",
            "cat-file process pool lookups by result",
            &counters([([("result", "hit")], hits), ([("result", "miss")], misses)]),
        )?;
        w.gauge(
            "gitrpc_catfile_idle_processes",
            "Idle pooled cat-file processes",
            idle as i64,
        )?;
        let s = self.spool.stats();
        w.family(
            "gitrpc_spool_bytes",
            "Transport output buffered for clients, by place",
            &gauges([
                ([("place", "memory")], s.in_memory),
                ([("place", "disk")], s.on_disk),
            ]),
        )?;
        w.gauge(
            "gitrpc_spool_max_bytes",
            "[spool] max_bytes: past it responses stream directly",
            self.spool.max() as i64,
        )?;
        w.counter(
            "gitrpc_spool_spills",
            "Responses that spilled to a temp file",
            s.spills,
        )?;
        w.counter(
            "gitrpc_spool_fallbacks",
            "Spill files that could not be created or written (the rest streamed directly)",
            s.fallbacks,
        )
    }
}

impl Sources {
    /// `[[rate_limiting]]`: how long admitted calls waited, how many were refused, how many
    /// callers are over their rate now.
    fn rate_limits(&self, w: &mut Writer) -> std::fmt::Result {
        let mut rules: Vec<_> = self.limits.rate.values().collect();
        rules.sort_by(|a, b| a.rpc().cmp(b.rpc()));
        let rpc = |l: &crate::ratelimit::RateLimiter| [("rpc", l.rpc().to_string())];
        w.family(
            "gitrpc_rate_limit_delay_seconds",
            "Time admitted calls waited for their token (0: none)",
            &rules
                .iter()
                .map(|l| (rpc(l), l.delay_histogram().clone()))
                .collect::<Vec<_>>(),
        )?;
        w.family(
            "gitrpc_rate_limit_admitted",
            "Calls given a token (at once or after a delay)",
            &rules
                .iter()
                .map(|l| (rpc(l), ConstCounter::new(l.admitted())))
                .collect::<Vec<_>>(),
        )?;
        w.family(
            "gitrpc_rate_limit_refused",
            "Calls refused: no token within max_delay",
            &rules
                .iter()
                .map(|l| (rpc(l), ConstCounter::new(l.refused())))
                .collect::<Vec<_>>(),
        )?;
        w.family(
            "gitrpc_rate_limit_keys",
            "Callers over their rate now (a bucket not yet refilled)",
            &rules
                .iter()
                .map(|l| (rpc(l), ConstGauge::new(l.keys() as i64)))
                .collect::<Vec<_>>(),
        )
    }

    fn connections(&self, w: &mut Writer) -> std::fmt::Result {
        let c = self.connections.stats();
        w.gauge(
            "gitrpc_connections_open",
            "Client connections open now (all listeners)",
            c.open as i64,
        )?;
        w.gauge(
            "gitrpc_connections_max",
            "[connections] max: past it new clients wait in the listen backlog",
            c.max as i64,
        )?;
        w.counter(
            "gitrpc_connections_accepted",
            "Client connections accepted",
            c.accepted,
        )?;
        w.family(
            "gitrpc_connections_closed",
            "Connections the server closed, by reason (handshake_timeout, idle_timeout)",
            &counters([
                ([("reason", "handshake_timeout")], c.handshake_timeouts),
                ([("reason", "idle_timeout")], c.idle_timeouts),
            ]),
        )?;
        w.counter(
            "gitrpc_accept_errors",
            "Failed accepts (e.g. out of file descriptors)",
            c.accept_errors,
        )
    }

    fn limits(&self, w: &mut Writer) -> std::fmt::Result {
        let mut limiters: Vec<(&str, Snapshot)> = self
            .limits
            .all()
            .map(|l| (l.name(), l.snapshot()))
            .collect();
        limiters.sort_by(|a, b| a.0.cmp(b.0));
        let each = |f: fn(&Snapshot) -> i64| {
            gauges(limiters.iter().map(|(n, s)| ([("limiter", *n)], f(s))))
        };
        w.family(
            "gitrpc_limit_current",
            "Current concurrency limit per key (repository)",
            &each(|s| s.limit as i64),
        )?;
        w.family(
            "gitrpc_limit_queue_max",
            "Queue size per key (0: unbounded)",
            &each(|s| s.max_queue as i64),
        )?;
        w.family(
            "gitrpc_limit_in_flight",
            "Calls holding a slot, all keys",
            &each(|s| s.running as i64),
        )?;
        w.family(
            "gitrpc_limit_busiest_key_in_flight",
            "Calls holding a slot on the busiest key: compare with gitrpc_limit_current",
            &each(|s| s.busiest_key_running as i64),
        )?;
        w.family(
            "gitrpc_limit_queued",
            "Calls waiting for a slot, all keys",
            &each(|s| s.queued as i64),
        )?;
        w.family(
            "gitrpc_limit_admitted",
            "Calls given a slot",
            &counters(
                limiters
                    .iter()
                    .map(|(n, s)| ([("limiter", *n)], s.admitted)),
            ),
        )?;
        w.family(
            "gitrpc_limit_dropped",
            "Calls refused, by reason (max_size, max_time)",
            &counters(limiters.iter().flat_map(|(n, s)| {
                [
                    (
                        [("limiter", *n), ("reason", "max_size")],
                        s.dropped_max_size,
                    ),
                    (
                        [("limiter", *n), ("reason", "max_time")],
                        s.dropped_max_time,
                    ),
                ]
            })),
        )?;
        w.family(
            "gitrpc_limit_queue_wait_seconds",
            "Time admitted calls spent queued",
            &counters(
                limiters
                    .iter()
                    .map(|(n, s)| ([("limiter", *n)], s.queue_wait_seconds_total)),
            ),
        )
    }
}

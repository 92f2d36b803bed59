//! `[[rate_limiting]]`: new calls of an RPC are **smoothed, not dropped**. Each caller (the
//! user a front door names in the call's metadata, else the client's address) has a token
//! bucket per RPC: a token every `interval`, at most `burst` of them (it starts full). A
//! call that finds no token reserves the next one and waits for it — up to `max_delay`; a
//! call that would wait longer (or past its own deadline) is refused at once with
//! `RESOURCE_EXHAUSTED` and a `gitaly.LimitError` (`retry_after`: how much longer it would
//! have had to wait), and takes no token.
//!
//! The bucket is kept as the time its next token is due (GCRA, the "virtual scheduling" form
//! of a token bucket), in whole nanoseconds, so the arithmetic is exact: calls arriving
//! together at a full bucket wait `max(0, k − burst + 1) × interval` for the k-th (0-based),
//! and `burst + floor(max_delay / interval)` of them are served. A bucket whose next token is
//! already due is the same as a fresh one, so such buckets are forgotten (the map stays as
//! big as the callers currently over their rate).
//!
//! The layer ([`RateLimitLayer`]) sits between auth and admission: a delayed call holds no
//! concurrency slot while it waits; a refused call never reaches admission. A waiting call
//! whose client goes away keeps its reservation (the next caller waits as if it had run).
//! Each decision is kept (the last [`RECENT`]) for the diagnostics page, and counted:
//! `gitrpc_rate_limit_delay_seconds`, `…_admitted_total`, `…_refused_total`, `…_keys`.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use gitrpc_proto::identity::Identity;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tokio::time::Instant;
use tonic::body::Body as TonicBody;
use tower::{Layer, Service};

/// Decisions kept per RPC for the diagnostics page.
pub const RECENT: usize = 1024;
/// Buckets (seconds) of the delay histogram; calls that did not wait land in `0`.
pub const DELAY_BUCKETS: &[f64] = &[0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0];
/// Forget due buckets after this many decisions.
const PRUNE_EVERY: u64 = 256;

/// What happens to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on after waiting this long (zero: at once).
    Admit(Duration),
    /// Refused: it would have had to wait this much longer than allowed.
    Refuse { retry_after: Duration },
}

/// One decision, for the diagnostics page: times are nanoseconds since the limiter started.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub key: String,
    pub arrival_ns: u64,
    pub delay_ns: u64,
    pub admitted: bool,
}

/// The limiter of one RPC.
pub struct RateLimiter {
    rpc: String,
    interval_ns: u64,
    burst: u64,
    max_delay: Duration,
    epoch: Instant,
    /// Caller → when its next token is due (ns since `epoch`).
    buckets: Mutex<HashMap<String, u64>>,
    recent: Mutex<VecDeque<Decision>>,
    decisions: AtomicU64,
    delay: Histogram,
    admitted: Counter,
    refused: Counter,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RateLimiter {
    /// A token every `interval` (non-zero), `burst` (at least 1) at most, waits up to
    /// `max_delay`.
    pub fn new(rpc: &str, interval: Duration, burst: u32, max_delay: Duration) -> RateLimiter {
        RateLimiter {
            rpc: rpc.to_string(),
            interval_ns: nanos(interval).max(1),
            burst: u64::from(burst.max(1)),
            max_delay,
            epoch: Instant::now(),
            buckets: Mutex::default(),
            recent: Mutex::default(),
            decisions: AtomicU64::new(0),
            delay: Histogram::new(DELAY_BUCKETS.iter().copied()),
            admitted: Counter::default(),
            refused: Counter::default(),
        }
    }

    pub fn rpc(&self) -> &str {
        &self.rpc
    }

    /// Decide on a call of `key` arriving now that may wait at most `budget` (its deadline).
    pub fn decide(&self, key: &str, budget: Option<Duration>) -> Verdict {
        let mut buckets = lock(&self.buckets);
        // Read under the lock, so decisions are made (and recorded) in arrival order.
        let now = Instant::now();
        self.decide_locked(&mut buckets, key, now, budget)
    }

    /// [`RateLimiter::decide`] for a call arriving at `now`.
    pub fn decide_at(&self, key: &str, now: Instant, budget: Option<Duration>) -> Verdict {
        let mut buckets = lock(&self.buckets);
        self.decide_locked(&mut buckets, key, now, budget)
    }

    fn decide_locked(
        &self,
        buckets: &mut HashMap<String, u64>,
        key: &str,
        now: Instant,
        budget: Option<Duration>,
    ) -> Verdict {
        let now_ns = nanos(now.saturating_duration_since(self.epoch));
        let span = self.burst.saturating_mul(self.interval_ns);
        let due = buckets.get(key).copied().unwrap_or(0).max(now_ns);
        let next = due.saturating_add(self.interval_ns);
        let wait = Duration::from_nanos(next.saturating_sub(span).saturating_sub(now_ns));
        let allowed = budget.map_or(self.max_delay, |b| b.min(self.max_delay));
        let verdict = if wait > allowed {
            Verdict::Refuse {
                retry_after: wait.saturating_sub(self.max_delay),
            }
        } else {
            buckets.insert(key.to_string(), next);
            Verdict::Admit(wait)
        };
        self.record(key, now_ns, verdict);
        if self.decisions.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            buckets.retain(|_, due| *due > now_ns);
        }
        verdict
    }

    /// Count and keep a decision (under the buckets' lock: `recent` is in decision order).
    fn record(&self, key: &str, now_ns: u64, verdict: Verdict) {
        let (admitted, delay) = match verdict {
            Verdict::Admit(d) => {
                self.admitted.inc();
                self.delay.observe(d.as_secs_f64());
                (true, d)
            }
            Verdict::Refuse { .. } => {
                self.refused.inc();
                (false, Duration::ZERO)
            }
        };
        {
            let mut recent = lock(&self.recent);
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(Decision {
                key: key.to_string(),
                arrival_ns: now_ns,
                delay_ns: nanos(delay),
                admitted,
            });
        }
    }

    /// The refusal a call gets.
    pub fn refusal(&self, retry_after: Duration) -> tonic::Status {
        gitrpc_proto::limit::status(
            format!("{}: rate limit reached", self.rpc),
            "rate limit reached",
            retry_after,
        )
    }

    /// `interval`, `burst`, `max_delay`.
    pub fn settings(&self) -> (Duration, u32, Duration) {
        (
            Duration::from_nanos(self.interval_ns),
            self.burst as u32,
            self.max_delay,
        )
    }

    /// Callers with a bucket now (over their rate recently).
    pub fn keys(&self) -> usize {
        lock(&self.buckets).len()
    }

    /// The last decisions, oldest first.
    pub fn recent(&self) -> Vec<Decision> {
        lock(&self.recent).iter().cloned().collect()
    }

    /// Delays of admitted calls (seconds).
    pub fn delay_histogram(&self) -> &Histogram {
        &self.delay
    }

    pub fn admitted(&self) -> u64 {
        self.admitted.get()
    }

    pub fn refused(&self) -> u64 {
        self.refused.get()
    }
}

/// Who a call is for: the user a front door named (`user_id`, else `username`), else the
/// client address it named (`remote_ip`, without a port), else the TCP peer's address; ""
/// for anonymous callers on a unix socket (they share one bucket). The metadata is read as
/// [`Identity::caller`] reads it (trimmed; a blank or over-long value is not a name), so
/// one client is one bucket whatever port or padding its front door sent.
pub fn caller_key<B>(req: &http::Request<B>) -> String {
    let id = Identity::caller(req.headers());
    if !id.gl_id.is_empty() {
        return format!("user:{}", id.gl_id);
    }
    if !id.username.is_empty() {
        return format!("username:{}", id.username);
    }
    if !id.remote_ip.is_empty() {
        return format!("ip:{}", id.remote_ip);
    }
    req.extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .map(|a| format!("ip:{}", a.ip()))
        .unwrap_or_default()
}

/// The tower layer applying the limiters (see the module docs).
#[derive(Clone)]
pub struct RateLimitLayer {
    by_rpc: Arc<HashMap<String, Arc<RateLimiter>>>,
}

impl RateLimitLayer {
    pub fn new(by_rpc: Arc<HashMap<String, Arc<RateLimiter>>>) -> RateLimitLayer {
        RateLimitLayer { by_rpc }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;
    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            by_rpc: self.by_rpc.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RateLimited<S> {
    inner: S,
    by_rpc: Arc<HashMap<String, Arc<RateLimiter>>>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for RateLimited<S>
where
    S: Service<http::Request<B>, Response = http::Response<TonicBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let Some(limiter) = self.by_rpc.get(req.uri().path()).cloned() else {
            return Box::pin(self.inner.call(req));
        };
        let budget = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::deadline::parse_timeout);
        match limiter.decide(&caller_key(&req), budget) {
            Verdict::Refuse { retry_after } => {
                let status = limiter.refusal(retry_after);
                Box::pin(async move { Ok(status.into_http()) })
            }
            Verdict::Admit(wait) if wait.is_zero() => Box::pin(self.inner.call(req)),
            Verdict::Admit(wait) => {
                // The ready service answers this call; a fresh clone takes its place.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    tokio::time::sleep(wait).await;
                    inner.call(req).await
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;

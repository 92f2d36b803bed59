//! Concurrency limits with a bounded queue: Gitaly's `[[concurrency]]` (per RPC, keyed per
//! repository) and `[pack_objects_limiting]` (git processes generating packs, one key).
//!
//! Per key, at most `limit` calls run; up to `max_queue` more wait in FIFO order for at most
//! `max_wait`. A call over the queue size, or that waited too long, is refused at once with
//! [`Refused`] (`RESOURCE_EXHAUSTED` with a `LimitError` detail on the wire). A waiter that is
//! dropped (its client went away) leaves the queue. The limit can move at run time (adaptive
//! limiting): raising it admits waiters at once, lowering it lets running calls finish.
//!
//! Every limiter counts what an operator needs to see how close it is: running, queued,
//! admitted, dropped by reason, and the current limit ([`Snapshot`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue for this key was full.
    QueueFull,
    /// The call waited `max_wait` without getting a slot.
    QueueTimeout,
}

impl Refused {
    /// Gitaly's messages for the same conditions.
    pub fn message(self) -> &'static str {
        match self {
            Refused::QueueFull => "maximum queue size reached",
            Refused::QueueTimeout => "maximum time in concurrency queue reached",
        }
    }

    /// The `reason` label of the dropped counter.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::QueueFull => "max_size",
            Refused::QueueTimeout => "max_time",
        }
    }
}

#[derive(Default)]
struct Key {
    running: usize,
    waiters: VecDeque<(u64, oneshot::Sender<()>)>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Key>,
    next_id: u64,
}

/// A keyed concurrency limiter. Cheap to share (`Arc`).
pub struct Limiter {
    name: String,
    limit: AtomicUsize,
    max_queue: usize,
    max_wait: Option<Duration>,
    state: Mutex<State>,
    admitted: AtomicU64,
    dropped_full: AtomicU64,
    dropped_timeout: AtomicU64,
    /// Nanoseconds waited in the queue by admitted calls (for the mean queue time).
    waited_ns: AtomicU64,
}

/// What a limiter looks like right now (summed over keys).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub limit: usize,
    pub max_queue: usize,
    pub running: usize,
    pub queued: usize,
    /// The busiest key's running calls (how close the tightest key is to `limit`).
    pub busiest_key_running: usize,
    pub admitted: u64,
    pub dropped_max_size: u64,
    pub dropped_max_time: u64,
    pub queue_wait_seconds_total: f64,
}

impl Limiter {
    /// `limit` calls per key at once (at least 1), `max_queue` waiting per key, each for at
    /// most `max_wait` (`None`: until a slot frees or the caller goes away).
    pub fn new(
        name: impl Into<String>,
        limit: usize,
        max_queue: usize,
        max_wait: Option<Duration>,
    ) -> Arc<Limiter> {
        Arc::new(Limiter {
            name: name.into(),
            limit: AtomicUsize::new(limit.max(1)),
            max_queue,
            max_wait,
            state: Mutex::new(State::default()),
            admitted: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_timeout: AtomicU64::new(0),
            waited_ns: AtomicU64::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Change the limit (adaptive limiting). Waiters are admitted up to the new limit.
    pub fn set_limit(&self, limit: usize) {
        let limit = limit.max(1);
        self.limit.store(limit, Ordering::SeqCst);
        let mut st = self.lock();
        for key in st.keys.values_mut() {
            admit_waiters(key, limit);
        }
    }

    /// Wait for a slot for `key`. Dropping the returned future while it waits leaves the queue.
    pub async fn acquire(self: &Arc<Self>, key: &str) -> Result<Permit, Refused> {
        let start = Instant::now();
        let (id, rx) = {
            let mut st = self.lock();
            let limit = self.limit();
            let max_queue = self.max_queue;
            let entry = st.keys.entry(key.to_string()).or_default();
            if entry.running < limit && entry.waiters.is_empty() {
                entry.running += 1;
                drop(st);
                self.admitted.fetch_add(1, Ordering::Relaxed);
                return Ok(self.permit(key));
            }
            if max_queue > 0 && entry.waiters.len() >= max_queue {
                if entry.running == 0 && entry.waiters.is_empty() {
                    st.keys.remove(key);
                }
                self.dropped_full.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::QueueFull);
            }
            let (tx, rx) = oneshot::channel();
            st.next_id += 1;
            let id = st.next_id;
            st.keys
                .get_mut(key)
                .expect("entry exists")
                .waiters
                .push_back((id, tx));
            (id, rx)
        };
        // From here the waiter is queued; `Waiting` takes it out again if we are dropped.
        let mut waiting = Waiting {
            limiter: self.clone(),
            key: key.to_string(),
            id,
            rx: Some(rx),
        };
        let granted = match self.max_wait {
            Some(wait) => tokio::time::timeout(wait, waiting.rx.as_mut().expect("set"))
                .await
                .ok(),
            None => Some(waiting.rx.as_mut().expect("set").await),
        };
        match granted {
            Some(Ok(())) => {
                waiting.rx = None; // the releaser counted us as running
                self.admitted.fetch_add(1, Ordering::Relaxed);
                self.waited_ns
                    .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                Ok(self.permit(key))
            }
            // Timed out: unless a slot was granted in the same instant, leave the queue.
            _ => {
                if waiting.leave() {
                    self.dropped_timeout.fetch_add(1, Ordering::Relaxed);
                    Err(Refused::QueueTimeout)
                } else {
                    self.admitted.fetch_add(1, Ordering::Relaxed);
                    Ok(self.permit(key))
                }
            }
        }
    }

    fn permit(self: &Arc<Self>, key: &str) -> Permit {
        Permit {
            limiter: self.clone(),
            key: key.to_string(),
        }
    }

    fn release(&self, key: &str) {
        let limit = self.limit();
        let mut st = self.lock();
        let Some(entry) = st.keys.get_mut(key) else {
            return;
        };
        entry.running = entry.running.saturating_sub(1);
        admit_waiters(entry, limit);
        if entry.running == 0 && entry.waiters.is_empty() {
            st.keys.remove(key);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let st = self.lock();
        let mut s = Snapshot {
            limit: self.limit(),
            max_queue: self.max_queue,
            admitted: self.admitted.load(Ordering::Relaxed),
            dropped_max_size: self.dropped_full.load(Ordering::Relaxed),
            dropped_max_time: self.dropped_timeout.load(Ordering::Relaxed),
            queue_wait_seconds_total: self.waited_ns.load(Ordering::Relaxed) as f64 / 1e9,
            ..Snapshot::default()
        };
        for k in st.keys.values() {
            s.running += k.running;
            s.queued += k.waiters.len();
            s.busiest_key_running = s.busiest_key_running.max(k.running);
        }
        s
    }
}

/// Hand free slots to waiters, oldest first (skipping ones that went away).
fn admit_waiters(key: &mut Key, limit: usize) {
    while key.running < limit {
        let Some((_, tx)) = key.waiters.pop_front() else {
            break;
        };
        if tx.send(()).is_ok() {
            key.running += 1;
        }
    }
}

/// A queued waiter; dropping it before it is granted removes it from the queue, and if it
/// was granted in the meantime, gives the slot back.
struct Waiting {
    limiter: Arc<Limiter>,
    key: String,
    id: u64,
    rx: Option<oneshot::Receiver<()>>,
}

impl Waiting {
    /// Leave the queue. False if we were granted a slot first (we then hold it).
    fn leave(&mut self) -> bool {
        let Some(mut rx) = self.rx.take() else {
            return false;
        };
        let mut st = self.limiter.lock();
        if let Some(entry) = st.keys.get_mut(&self.key) {
            if let Some(pos) = entry.waiters.iter().position(|(id, _)| *id == self.id) {
                entry.waiters.remove(pos);
                if entry.running == 0 && entry.waiters.is_empty() {
                    st.keys.remove(&self.key);
                }
                return true;
            }
        }
        // Not queued any more: the releaser popped us; it counted us as running if its send
        // succeeded, which it did since `rx` was alive.
        drop(st);
        rx.close();
        false
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.rx.is_some() && !self.leave() {
            self.limiter.release(&self.key);
        }
    }
}

/// A slot: released when dropped (the call finished, failed or was cancelled).
pub struct Permit {
    limiter: Arc<Limiter>,
    key: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.release(&self.key);
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Permit({}, {:?})", self.limiter.name, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_queues_and_refuses() {
        let l = Limiter::new("t", 2, 1, Some(Duration::from_millis(50)));
        let a = l.acquire("r").await.unwrap();
        let b = l.acquire("r").await.unwrap();
        // Another key has its own slots.
        let other = l.acquire("s").await.unwrap();
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.acquire("r").await.map(|_p| ()) }
        });
        tokio::task::yield_now().await;
        while l.snapshot().queued == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(l.acquire("r").await.unwrap_err(), Refused::QueueFull);
        assert_eq!(waiter.await.unwrap(), Err(Refused::QueueTimeout));
        let s = l.snapshot();
        assert_eq!((s.running, s.queued, s.busiest_key_running), (3, 0, 2));
        assert_eq!(
            (s.admitted, s.dropped_max_size, s.dropped_max_time),
            (3, 1, 1)
        );
        drop((a, b, other));
        let s = l.snapshot();
        assert_eq!((s.running, s.queued), (0, 0));
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_oldest_waiter() {
        let l = Limiter::new("t", 1, 5, None);
        let first = l.acquire("r").await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (l2, order) = (l.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _p = l2.acquire("r").await.unwrap();
                order.lock().unwrap().push(i);
            }));
            while l.snapshot().queued != i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
        assert_eq!(l.snapshot().running, 0);
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_the_queue() {
        let l = Limiter::new("t", 1, 1, None);
        let held = l.acquire("r").await.unwrap();
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.acquire("r").await.map(|_p| ()) }
        });
        while l.snapshot().queued == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(l.snapshot().queued, 0);
        drop(held);
        assert_eq!(l.snapshot().running, 0);
        // The queue slot is free again.
        let _p = l.acquire("r").await.unwrap();
    }

    #[tokio::test]
    async fn raising_the_limit_admits_waiters() {
        let l = Limiter::new("t", 1, 3, None);
        let _held = l.acquire("r").await.unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move { l.acquire("r").await.unwrap() })
            })
            .collect();
        while l.snapshot().queued != 2 {
            tokio::task::yield_now().await;
        }
        l.set_limit(3);
        let permits: Vec<_> = futures::future::join_all(waiters).await;
        assert_eq!(permits.len(), 2);
        assert_eq!(l.snapshot().running, 3);
        l.set_limit(1);
        drop(permits);
        assert_eq!(l.snapshot().running, 1);
    }
}

//! A transport session's idleness (`[transport] idle_timeout`): when the client last sent or
//! read something, and whether it is waiting for us (a pack slot, the fast path).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;

use crate::error::Error;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// When the client last sent or read something.
pub struct Activity {
    idle: Duration,
    last: Mutex<Instant>,
    /// Waiting for a pack slot: not idle.
    busy: std::sync::atomic::AtomicBool,
}

impl Activity {
    pub fn new(idle: Duration) -> Activity {
        Activity {
            idle,
            last: Mutex::new(Instant::now()),
            busy: Default::default(),
        }
    }

    pub fn touch(&self) {
        *lock(&self.last) = Instant::now();
    }

    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, std::sync::atomic::Ordering::SeqCst);
        self.touch();
    }

    /// Resolves once the session has been idle for `idle`.
    pub async fn expired(&self) {
        loop {
            let at = *lock(&self.last) + self.idle;
            if self.busy.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(self.idle).await;
            } else if Instant::now() >= at {
                return;
            } else {
                tokio::time::sleep_until(at).await;
            }
        }
    }

    pub fn error(&self) -> Error {
        Error::Status(Box::new(Status::deadline_exceeded(format!(
            "transport session idle for {:?}: no data sent or read",
            self.idle
        ))))
    }
}

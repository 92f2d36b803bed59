//! One tokio runtime per process for callers that block (the C API, the Ruby extension).
//!
//! A multi-thread runtime does not survive `fork()`: its worker threads are gone in the child,
//! and using *or dropping* it there hangs. So the runtime records the pid that built it; in a
//! forked child [`get`] leaks the parent's runtime and lazily builds a fresh one. Values tied to
//! a runtime (channels, servers) are wrapped in [`PidBound`], which refuses to hand them out in
//! a child and leaks rather than drops them there.
//!
//! `SIGPIPE`: a C program keeps the default action (terminate), and a write to a socket or a
//! git pipe closed by its peer raises it in the writing thread. The runtime's threads block it,
//! and [`block_on`] blocks it on the calling thread for the duration (consuming one it caused),
//! so such writes fail with `EPIPE` instead of killing the host program. Children get a clean
//! signal mask from std's spawn.
//!
//! Fork while another thread holds the internal lock would deadlock the child; Ruby forks with
//! the GVL held, so the Ruby extension only calls [`get`] with the GVL held.

use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};

static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);

/// This process's runtime, built on first use (again in a forked child).
pub fn get() -> Arc<tokio::runtime::Runtime> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    match slot.take() {
        Some((owner, rt)) if owner == pid => {
            *slot = Some((owner, rt.clone()));
            rt
        }
        other => {
            if let Some((_, inherited)) = other {
                // Built by our parent before fork: its threads don't exist here.
                std::mem::forget(inherited);
            }
            let rt = Arc::new(
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("gitrpc")
                    .on_thread_start(|| {
                        block_sigpipe();
                    })
                    .build()
                    .expect("build tokio runtime"),
            );
            *slot = Some((pid, rt.clone()));
            rt
        }
    }
}

/// Run `fut` to completion on this process's runtime, blocking the calling thread (which
/// must not be a runtime thread), with `SIGPIPE` held off meanwhile.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let rt = get();
    let _sigpipe = SigpipeGuard::new();
    rt.block_on(fut)
}

fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

/// Block SIGPIPE in this thread; returns the previous mask.
fn block_sigpipe() -> libc::sigset_t {
    let set = sigpipe_set();
    // SAFETY: changes only this thread's mask.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

fn sigpipe_pending() -> bool {
    // SAFETY: reads this thread's (and the process's) pending set.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        libc::sigismember(&pending, libc::SIGPIPE) == 1
    }
}

/// Holds SIGPIPE blocked on this thread; on drop consumes a SIGPIPE raised meanwhile and
/// restores the mask.
struct SigpipeGuard {
    old: libc::sigset_t,
    was_pending: bool,
}

impl SigpipeGuard {
    fn new() -> SigpipeGuard {
        let was_pending = sigpipe_pending();
        SigpipeGuard {
            old: block_sigpipe(),
            was_pending,
        }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        if !self.was_pending && sigpipe_pending() {
            let set = sigpipe_set();
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: takes the pending SIGPIPE we caused; returns at once.
            unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
        }
        // SAFETY: restores this thread's mask as it was.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// A value that belongs to the process that made it. In a forked child it is unusable
/// (`get` is `None`) and dropping it leaks it instead of touching the parent's runtime.
pub struct PidBound<T> {
    pid: u32,
    value: ManuallyDrop<T>,
}

impl<T> PidBound<T> {
    pub fn new(value: T) -> Self {
        PidBound {
            pid: std::process::id(),
            value: ManuallyDrop::new(value),
        }
    }

    /// The value, unless we are in a process forked after it was made.
    pub fn get(&self) -> Option<&T> {
        (self.pid == std::process::id()).then_some(&*self.value)
    }

    pub fn get_mut(&mut self) -> Option<&mut T> {
        (self.pid == std::process::id()).then_some(&mut *self.value)
    }

    /// Take the value out (for consuming teardown), unless in a forked child.
    pub fn into_inner(mut self) -> Option<T> {
        let owned = self.pid == std::process::id();
        // SAFETY: `self` is forgotten right after, so the value is taken exactly once.
        let value = unsafe { ManuallyDrop::take(&mut self.value) };
        std::mem::forget(self);
        if owned {
            Some(value)
        } else {
            std::mem::forget(value);
            None
        }
    }
}

impl<T> Drop for PidBound<T> {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            // SAFETY: dropped once, here; never used again.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}

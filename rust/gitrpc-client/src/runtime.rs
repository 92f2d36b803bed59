//! One tokio runtime per process for callers that block (the C API, the Ruby extension).
//!
//! A multi-thread runtime does not survive `fork()`: its worker threads are gone in the child,
//! and using *or dropping* it there hangs. So the runtime records the pid that built it; in a
//! forked child [`get`] leaks the parent's runtime and lazily builds a fresh one. Values tied to
//! a runtime (channels, streams, servers) are wrapped in [`Owned`], which drops them inside
//! the runtime in the process that made them, refuses to hand them out in a child and leaks
//! rather than drops them there.
//!
//! `SIGPIPE`: a C program keeps the default action (terminate), and a write to a socket or a
//! git pipe closed by its peer raises it in the writing thread. The runtime's threads block it,
//! and [`block_on`] blocks it on the calling thread for the duration (consuming one it caused),
//! so such writes fail with `EPIPE` instead of killing the host program. Children get a clean
//! signal mask from std's spawn.
//!
//! Fork while another thread holds the internal lock would deadlock the child; Ruby forks with
//! the GVL held, so the Ruby extension only calls [`get`] (and drops [`Owned`] values) with
//! the GVL held.

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

/// A value tied to this process's runtime (a channel, a stream, a server): the one place
/// that knows how such values live and die across `fork()`.
///
/// - In the process that made it, [`Owned::get`] hands it out, and dropping it drops it
///   *inside* the runtime (a channel's worker task, a server's listeners need the runtime's
///   context to shut down).
/// - In a forked child the value is unusable ([`Forked`]), and dropping it leaks it: its
///   runtime's threads don't exist there, and touching it would hang.
pub struct Owned<T> {
    pid: u32,
    value: ManuallyDrop<T>,
}

/// The value was made before `fork()`; it belongs to the parent process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forked;

impl std::fmt::Display for Forked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("made before fork(); it belongs to the parent process")
    }
}

impl std::error::Error for Forked {}

impl<T> Owned<T> {
    pub fn new(value: T) -> Self {
        Owned {
            pid: std::process::id(),
            value: ManuallyDrop::new(value),
        }
    }

    /// Is this the process that made it?
    pub fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }

    /// The value, unless we are in a process forked after it was made.
    pub fn get(&self) -> Result<&T, Forked> {
        if self.is_ours() {
            Ok(&self.value)
        } else {
            Err(Forked)
        }
    }

    pub fn get_mut(&mut self) -> Result<&mut T, Forked> {
        if self.is_ours() {
            Ok(&mut self.value)
        } else {
            Err(Forked)
        }
    }

    /// Take the value out (for a consuming teardown such as a graceful stop), unless in a
    /// forked child, where it is leaked.
    pub fn into_inner(mut self) -> Result<T, Forked> {
        let ours = self.is_ours();
        // SAFETY: `self` is forgotten right after, so the value is taken exactly once.
        let value = unsafe { ManuallyDrop::take(&mut self.value) };
        std::mem::forget(self);
        if ours {
            Ok(value)
        } else {
            std::mem::forget(value);
            Err(Forked)
        }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if self.is_ours() {
            let rt = get();
            let _inside = rt.enter();
            // SAFETY: dropped once, here; never used again.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Records how it was dropped: 1 inside a runtime, 2 outside one.
    struct Probe(Arc<AtomicU8>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let inside = tokio::runtime::Handle::try_current().is_ok();
            self.0.store(if inside { 1 } else { 2 }, Ordering::SeqCst);
        }
    }

    #[test]
    fn owned_drops_inside_the_runtime_here_and_is_left_alone_in_a_forked_child() {
        let dropped = Arc::new(AtomicU8::new(0));
        let owned = Owned::new(Probe(dropped.clone()));
        assert!(owned.get().is_ok());
        // SAFETY: the child only compares pids, forgets the value and `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let refused = matches!(owned.get(), Err(Forked));
            drop(owned);
            let untouched = dropped.load(Ordering::SeqCst) == 0;
            // SAFETY: ends the child without running the test harness's destructors.
            unsafe { libc::_exit(if refused && untouched { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        drop(owned);
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "dropped inside the runtime"
        );
    }
}

//! Waiting for Rust futures from Ruby threads without holding the GVL, interruptibly.
//!
//! [`block_on`] runs the future on the process's tokio runtime inside `rb_nogvl` (with
//! `RB_NOGVL_INTR_FAIL`, as `rb_thread_call_without_gvl2` does), so other Ruby threads run
//! meanwhile. Its unblock function (called by Ruby for `Thread#raise`, `Thread#kill`,
//! `Timeout.timeout` and signals) writes to an eventfd the wait also watches, which ends it; a
//! 100 ms tick also ends it, since Ruby does not call the unblock function for every kind of
//! pending interrupt.
//!
//! The unblock function is async-signal-safe (one `write(2)`), and we say so with
//! `RB_NOGVL_UBF_ASYNC_SAFE`. Without that flag Ruby, when the main thread is the only thread,
//! starts a helper Ruby thread for every wait and kills it after: a thread per call, and under
//! `GC.stress` a livelock (starting it sets an interrupt, so the wait never begins). After each wait we take the GVL back and let
//! Ruby handle pending interrupts (`thread_check_ints`): if that raises, the future is dropped,
//! which cancels the gRPC call and, on the server, kills its git processes. Otherwise the same
//! future is resumed.

use std::ffi::c_void;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use magnus::{Error, Ruby};
use tokio::io::unix::AsyncFd;

const TICK: Duration = Duration::from_millis(100);

/// Run `fut` to completion with the GVL released; raises (dropping `fut`) if the thread is
/// interrupted.
pub fn block_on<F: Future>(ruby: &Ruby, fut: F) -> Result<F::Output, Error> {
    // Taken with the GVL held: Ruby forks with it held, so the runtime lock is never
    // inherited locked by a child.
    let rt = gitrpc_client::runtime::get();
    let wake = {
        let _in_runtime = rt.enter();
        Wakeup::new().map_err(|e| {
            Error::new(
                ruby.exception_runtime_error(),
                format!("gitrpc: eventfd: {e}"),
            )
        })?
    };
    let mut fut = std::pin::pin!(fut);
    loop {
        let step = without_gvl(
            || {
                rt.block_on(async {
                    tokio::select! {
                        biased;
                        out = fut.as_mut() => Some(out),
                        _ = wake.woken() => None,
                        _ = tokio::time::sleep(TICK) => None,
                    }
                })
            },
            wake.fd(),
        );
        match step {
            Some(Some(out)) => return Ok(out),
            _ => ruby.thread_check_ints()?,
        }
    }
}

struct Call<F, R> {
    f: Option<F>,
    out: Option<std::thread::Result<R>>,
}

unsafe extern "C" fn call<F: FnOnce() -> R, R>(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `Call` on `without_gvl`'s stack, alive for this call.
    let c = unsafe { &mut *(data as *mut Call<F, R>) };
    if let Some(f) = c.f.take() {
        c.out = Some(catch_unwind(AssertUnwindSafe(f)));
    }
    std::ptr::null_mut()
}

/// An eventfd the unblock function writes to and the wait watches.
struct Wakeup(AsyncFd<OwnedFd>);

impl Wakeup {
    /// Must be called inside the runtime (the fd registers with its reactor).
    fn new() -> io::Result<Wakeup> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an OwnedFd keeps the same open fd until the AsyncFd drops it.
        unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map(Wakeup)
            .map_err(|e| e.into())
    }

    fn fd(&self) -> RawFd {
        self.0.get_ref().as_raw_fd()
    }

    /// Resolves once the unblock function has run (and resets the eventfd).
    async fn woken(&self) {
        loop {
            let Ok(mut ready) = self.0.readable().await else {
                return std::future::pending().await;
            };
            let mut buf = [0u8; 8];
            // SAFETY: reads 8 bytes into `buf`.
            let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr() as *mut c_void, 8) };
            if n == 8 {
                return;
            }
            ready.clear_ready();
        }
    }
}

/// Ruby's unblock function: async-signal-safe (Ruby may call it from its signal handler).
unsafe extern "C" fn unblock(data: *mut c_void) {
    let fd = data as usize as RawFd;
    let one: u64 = 1;
    // SAFETY: `fd` is the eventfd of the `Wakeup` alive for the whole `rb_nogvl` call; write(2)
    // is async-signal-safe. A failed write (counter full) still leaves it readable.
    unsafe {
        libc::write(fd, &one as *const u64 as *const c_void, 8);
    }
}

/// Call `f` without the GVL. `None` if Ruby did not call it because an interrupt was already
/// pending (`RB_NOGVL_INTR_FAIL`: `rb_nogvl` returns at once then).
fn without_gvl<F: FnOnce() -> R, R>(f: F, wake_fd: RawFd) -> Option<R> {
    let mut c = Call {
        f: Some(f),
        out: None,
    };
    let flags = (rb_sys::RB_NOGVL_INTR_FAIL | rb_sys::RB_NOGVL_UBF_ASYNC_SAFE) as i32;
    // SAFETY: `c` outlives the call and `wake_fd` stays open through it; `call` catches panics
    // so none unwinds into C; `unblock` is async-signal-safe, as the flag promises.
    unsafe {
        rb_sys::rb_nogvl(
            Some(call::<F, R>),
            &mut c as *mut Call<F, R> as *mut c_void,
            Some(unblock),
            wake_fd as usize as *mut c_void,
            flags,
        );
    }
    match c.out {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
    }
}

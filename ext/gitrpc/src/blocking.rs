//! Waiting for Rust futures from Ruby threads without holding the GVL, interruptibly.
//!
//! [`block_on`] runs the future on the process's tokio runtime inside
//! `rb_thread_call_without_gvl2`, so other Ruby threads run meanwhile. Its unblock function
//! (called by Ruby for `Thread#raise`, `Thread#kill`, `Timeout.timeout` and signals) cancels a
//! token that ends the wait; a 100 ms tick also ends it, since Ruby does not call the unblock
//! function for every kind of pending interrupt. After each wait we take the GVL back and let
//! Ruby handle pending interrupts (`thread_check_ints`): if that raises, the future is dropped,
//! which cancels the gRPC call and, on the server, kills its git processes. Otherwise the same
//! future is resumed.

use std::ffi::c_void;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use magnus::{Error, Ruby};
use tokio_util::sync::CancellationToken;

const TICK: Duration = Duration::from_millis(100);

/// Run `fut` to completion with the GVL released; raises (dropping `fut`) if the thread is
/// interrupted.
pub fn block_on<F: Future>(ruby: &Ruby, fut: F) -> Result<F::Output, Error> {
    // Taken with the GVL held: Ruby forks with it held, so the runtime lock is never
    // inherited locked by a child.
    let rt = gitrpc_client::runtime::get();
    let mut fut = std::pin::pin!(fut);
    loop {
        let cancel = CancellationToken::new();
        let step = without_gvl(
            || {
                rt.block_on(async {
                    tokio::select! {
                        biased;
                        out = fut.as_mut() => Some(out),
                        _ = cancel.cancelled() => None,
                        _ = tokio::time::sleep(TICK) => None,
                    }
                })
            },
            &cancel,
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

unsafe extern "C" fn unblock(data: *mut c_void) {
    // SAFETY: `data` is the token on `block_on`'s stack, alive while the call may run.
    let token = unsafe { &*(data as *const CancellationToken) };
    token.cancel();
}

/// Call `f` without the GVL. `None` if Ruby did not call it because an interrupt was already
/// pending (`rb_thread_call_without_gvl2` returns at once then).
fn without_gvl<F: FnOnce() -> R, R>(f: F, cancel: &CancellationToken) -> Option<R> {
    let mut c = Call {
        f: Some(f),
        out: None,
    };
    // SAFETY: both pointers outlive the call; `call` catches panics so none unwinds into C.
    unsafe {
        rb_sys::rb_thread_call_without_gvl2(
            Some(call::<F, R>),
            &mut c as *mut Call<F, R> as *mut c_void,
            Some(unblock),
            cancel as *const CancellationToken as *mut c_void,
        );
    }
    match c.out {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
    }
}

//! `gitrpc_client`: a connection (socket or in-process) with a default deadline.

use std::ffi::c_char;
use std::future::Future;
use std::time::Duration;

use ::gitrpc_client::runtime::{self, Owned};
use ::gitrpc_client::{Client, Options};

use crate::error::{arg_ptr, arg_str, gitrpc_error, guard, quietly, Error, Result};

/// The default deadline of a new client: 30 seconds.
pub const GITRPC_DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// A client. Thread-safe: one client may be used by many threads at once. Created by
/// `gitrpc_client_connect` or `gitrpc_server_client`; freed with `gitrpc_client_free`.
pub struct gitrpc_client {
    inner: Owned<Client>,
}

impl gitrpc_client {
    pub(crate) fn boxed(client: Client) -> *mut gitrpc_client {
        Box::into_raw(Box::new(gitrpc_client {
            inner: Owned::new(client),
        }))
    }

    /// The client behind a C pointer (checked), usable in this process.
    pub(crate) fn from_ptr<'a>(p: *const gitrpc_client) -> Result<&'a Client> {
        arg_ptr(p, "client")?;
        // SAFETY: non-NULL and, by contract, a live client from this library.
        let c = unsafe { &*p };
        c.inner.get().map_err(|_| {
            Error::new(
                tonic::Code::Unavailable,
                "client was created before fork(); create a new one in this process",
            )
        })
    }
}

/// Run `fut` to completion on the process's runtime, blocking this thread.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    runtime::block_on(fut)
}

/// Connect to a server at `address`: `unix:/path/to.sock`, `tcp://host:port`,
/// `tls://host:port` or `host:port`.
/// Connects eagerly, so a bad address fails here (`INVALID_ARGUMENT`) and a dead one too
/// (`UNAVAILABLE`). On success `*out` receives a client to free with `gitrpc_client_free`;
/// its default deadline is GITRPC_DEFAULT_TIMEOUT_MS.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_connect(
    address: *const c_char,
    out: *mut *mut gitrpc_client,
) -> *mut gitrpc_error {
    guard(|| {
        let address = arg_str(address, "address")?;
        arg_ptr(out, "out")?;
        let client = block_on(Client::connect(address, &default_options()))?;
        // SAFETY: checked non-NULL above.
        unsafe { *out = gitrpc_client::boxed(client) };
        Ok(())
    })
}

fn default_options() -> Options {
    Options {
        timeout: Some(Duration::from_millis(GITRPC_DEFAULT_TIMEOUT_MS)),
        ..Options::default()
    }
}

/// How to connect: auth token, TLS trust, default deadline, retries. Made by
/// `gitrpc_client_options_new`, given to `gitrpc_client_connect_with_options` (which copies
/// it), freed with `gitrpc_client_options_free`.
pub struct gitrpc_client_options {
    pub(crate) inner: Options,
    /// Storages served by embedded servers of this process (see `storages.rs`).
    pub(crate) routes: Vec<(String, ::gitrpc_client::routing::Route)>,
}

/// New options with the defaults of `gitrpc_client_connect`: no token, the system's
/// certificate authorities, a GITRPC_DEFAULT_TIMEOUT_MS deadline, 2 retries.
#[no_mangle]
pub extern "C" fn gitrpc_client_options_new() -> *mut gitrpc_client_options {
    quietly(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(gitrpc_client_options {
            inner: default_options(),
            routes: Vec::new(),
        }))
    })
}

fn options_mut<'a>(p: *mut gitrpc_client_options) -> Result<&'a mut Options> {
    Ok(&mut all_options_mut(p)?.inner)
}

pub(crate) fn all_options_mut<'a>(
    p: *mut gitrpc_client_options,
) -> Result<&'a mut gitrpc_client_options> {
    arg_ptr(p, "options")?;
    // SAFETY: non-NULL and, by contract, live options from this library used by one thread.
    Ok(unsafe { &mut *p })
}

/// The server's `[auth] token`: every call then carries a v2 token made from it (the
/// secret itself is never sent). NULL or "" removes it.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_options_set_token(
    options: *mut gitrpc_client_options,
    token: *const c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let o = options_mut(options)?;
        o.token = if token.is_null() {
            None
        } else {
            Some(arg_str(token, "token")?.to_string()).filter(|t| !t.is_empty())
        };
        Ok(())
    })
}

/// A PEM file of certificate authorities to trust for `tls://` addresses, besides the
/// system's. NULL removes it.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_options_set_tls_ca_file(
    options: *mut gitrpc_client_options,
    path: *const c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let o = options_mut(options)?;
        o.tls_ca_file = if path.is_null() {
            None
        } else {
            Some(arg_str(path, "path")?.into())
        };
        Ok(())
    })
}

/// The default deadline of clients made with these options (0: none).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_options_set_timeout(
    options: *mut gitrpc_client_options,
    timeout_ms: u64,
) -> *mut gitrpc_error {
    guard(|| {
        options_mut(options)?.timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
        Ok(())
    })
}

/// How many times a read-only call is retried after UNAVAILABLE or RESOURCE_EXHAUSTED (with
/// exponential back-off and jitter, within the deadline). 0 disables retries.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_options_set_retries(
    options: *mut gitrpc_client_options,
    retries: u32,
) -> *mut gitrpc_error {
    guard(|| {
        options_mut(options)?.retries = retries;
        Ok(())
    })
}

/// Free options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_options_free(options: *mut gitrpc_client_options) {
    quietly((), || {
        if !options.is_null() {
            // SAFETY: options from this library, freed once.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

/// `gitrpc_client_connect` with `options` (NULL: the defaults). `address` may also list
/// several servers of the same storages, comma-separated: each call goes to the one with the
/// fewest calls in flight.
///
/// With storages added to `options` (`gitrpc_client_options_add_storage*`), each call goes
/// to the servers of its repository's storage, a storage not added fails at once with
/// INVALID_ARGUMENT (`storage not found: "name"`), and `address` (may be NULL) serves only
/// calls that name no repository (else the storage "default" does). A server that doesn't
/// answer now fails only its storage's calls (UNAVAILABLE) until it does.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_connect_with_options(
    address: *const c_char,
    options: *const gitrpc_client_options,
    out: *mut *mut gitrpc_client,
) -> *mut gitrpc_error {
    guard(|| {
        arg_ptr(out, "out")?;
        let (opts, routes) = if options.is_null() {
            (default_options(), Vec::new())
        } else {
            // SAFETY: non-NULL and, by contract, live options from this library.
            let o = unsafe { &*options };
            (o.inner.clone(), o.routes.clone())
        };
        let routed = !opts.storages.is_empty() || !routes.is_empty();
        let address = if address.is_null() && routed {
            ""
        } else {
            arg_str(address, "address")?
        };
        let client = if routes.is_empty() {
            block_on(Client::connect(address, &opts))?
        } else {
            let mut b = Client::builder(&opts).default_address(address);
            for (name, route) in routes {
                b = b.route(&name, route);
            }
            block_on(b.connect())?
        };
        // SAFETY: checked non-NULL above.
        unsafe { *out = gitrpc_client::boxed(client) };
        Ok(())
    })
}

/// Set the deadline applied to every later call on `client` (0: no deadline). A call still
/// running when it passes fails with DEADLINE_EXCEEDED and is cancelled on the server.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_set_timeout(
    client: *const gitrpc_client,
    timeout_ms: u64,
) -> *mut gitrpc_error {
    guard(|| {
        let c = gitrpc_client::from_ptr(client)?;
        c.set_timeout((timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)));
        Ok(())
    })
}

/// The default deadline of `client` in milliseconds (0: none, or `client` is NULL).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_timeout(client: *const gitrpc_client) -> u64 {
    quietly(0, || {
        gitrpc_client::from_ptr(client)
            .ok()
            .and_then(|c| c.timeout())
            .map_or(0, |t| t.as_millis() as u64)
    })
}

/// Free a client. Calls still running on other threads must have returned. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_free(client: *mut gitrpc_client) {
    quietly((), || {
        if !client.is_null() {
            // SAFETY: a client from this library, freed once (`Owned` drops the channel inside
            // the runtime, or leaves it alone in a forked child).
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_timeout_is_the_rust_clients() {
        assert_eq!(
            std::time::Duration::from_millis(super::GITRPC_DEFAULT_TIMEOUT_MS),
            ::gitrpc_client::DEFAULT_TIMEOUT
        );
    }
}

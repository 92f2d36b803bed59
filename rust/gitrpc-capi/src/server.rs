//! `gitrpc_server`: a gitrpc server embedded in the calling process
//! (`gitrpc_client::embedded::Embedded`; this file only converts).

use std::ffi::{c_char, CString};
use std::time::Duration;

use ::gitrpc_client::embedded::Embedded;
use ::gitrpc_server::{Config, Hooks, StartError};

use crate::client::{block_on, gitrpc_client, GITRPC_DEFAULT_TIMEOUT_MS};
use crate::error::{arg_ptr, arg_str, gitrpc_error, guard, quietly, Error};

/// An embedded server, running on the library's background threads. Created by
/// `gitrpc_server_start`, stopped and freed by `gitrpc_server_free`.
pub struct gitrpc_server {
    pub(crate) embedded: Embedded,
    address: Option<CString>,
}

/// The one place a server that did not start becomes a C error, with the code
/// `StartError::code` gives.
fn start_error(e: impl Into<StartError>) -> Error {
    let status = tonic::Status::from(e.into());
    Error::new(status.code(), status.message())
}

/// Start a server from a TOML config, the same format as `gitrpcd --config` (at least one
/// `[[storage]]`; `socket_path` and/or `listen_addr` to accept connections; with neither it
/// serves only in-process clients). A bad config is INVALID_ARGUMENT (naming the key), an
/// address another process listens on ALREADY_EXISTS, anything else that keeps it from
/// starting UNAVAILABLE. On success `*out` receives the server; free it with
/// `gitrpc_server_free`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_server_start(
    config_toml: *const c_char,
    out: *mut *mut gitrpc_server,
) -> *mut gitrpc_error {
    guard(|| {
        let toml = arg_str(config_toml, "config_toml")?;
        arg_ptr(out, "out")?;
        let config = Config::from_toml(toml).map_err(start_error)?;
        let embedded = block_on(Embedded::start(config, Hooks::default())).map_err(start_error)?;
        let address = embedded
            .addresses()
            .first()
            .map(|a| CString::new(a.as_str()).unwrap_or_default());
        let server = gitrpc_server { embedded, address };
        // SAFETY: checked non-NULL above.
        unsafe { *out = Box::into_raw(Box::new(server)) };
        Ok(())
    })
}

/// The address clients connect to (`unix:/path` or `tcp://ip:port`, the first listener), or
/// NULL if the server has no listener (or `server` is NULL). The string belongs to `server`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_server_address(server: *const gitrpc_server) -> *const c_char {
    quietly(std::ptr::null(), || {
        // SAFETY: NULL or a live server from this library.
        unsafe { server.as_ref() }
            .and_then(|s| s.address.as_ref())
            .map_or(std::ptr::null(), |a| a.as_ptr())
    })
}

/// A client that dispatches to this server's handlers in-process (no socket). It may outlive
/// the server: its calls then fail with UNAVAILABLE. Free it with `gitrpc_client_free`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_server_client(
    server: *const gitrpc_server,
    out: *mut *mut gitrpc_client,
) -> *mut gitrpc_error {
    guard(|| {
        arg_ptr(server, "server")?;
        arg_ptr(out, "out")?;
        // SAFETY: non-NULL and, by contract, a live server from this library.
        let s = unsafe { &*server };
        let client = s
            .embedded
            .client(Some(Duration::from_millis(GITRPC_DEFAULT_TIMEOUT_MS)))?;
        // SAFETY: checked non-NULL above.
        unsafe { *out = gitrpc_client::boxed(client) };
        Ok(())
    })
}

/// Stop the server: stop accepting, let running calls finish (up to the config's
/// `graceful_restart_timeout`), cancel the rest (killing their git processes), remove the
/// socket file, and free it. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_server_free(server: *mut gitrpc_server) {
    quietly((), || {
        if server.is_null() {
            return;
        }
        // SAFETY: a server from this library, freed once.
        let s = unsafe { Box::from_raw(server) };
        if let Some(stop) = s.embedded.stop() {
            block_on(stop);
        }
    })
}

//! Storage routing options: which servers serve which storage (`gitrpc-client`'s routing;
//! this file only converts).

use std::ffi::c_char;

use ::gitrpc_client::routing::Remote;

use crate::client::{all_options_mut, gitrpc_client_options};
use crate::error::{arg_ptr, arg_str, gitrpc_error, guard};
use crate::server::gitrpc_server;

/// Route `storage`'s calls to `addresses` (one address, or several servers of that storage
/// comma-separated: `"tls://g2:9999,tls://g3:9999"`), with the options' token. Adding a
/// storage again replaces it. INVALID_ARGUMENT for an empty or malformed storage name or
/// address.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_options_add_storage(
    options: *mut gitrpc_client_options,
    storage: *const c_char,
    addresses: *const c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let o = all_options_mut(options)?;
        let storage = arg_str(storage, "storage")?;
        let addresses = arg_str(addresses, "addresses")?;
        o.routes.retain(|(n, _)| n != storage);
        o.inner.storages.insert(storage, Remote::new(addresses))?;
        Ok(())
    })
}

/// `gitrpc_client_options_add_storage` with the `[auth] token` of that storage's servers
/// (NULL or "": the options' token).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_options_add_storage_with_token(
    options: *mut gitrpc_client_options,
    storage: *const c_char,
    addresses: *const c_char,
    token: *const c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let o = all_options_mut(options)?;
        let storage = arg_str(storage, "storage")?;
        let remote = Remote {
            address: arg_str(addresses, "addresses")?.to_string(),
            token: if token.is_null() {
                None
            } else {
                Some(arg_str(token, "token")?.to_string()).filter(|t| !t.is_empty())
            },
        };
        o.routes.retain(|(n, _)| n != storage);
        o.inner.storages.insert(storage, remote)?;
        Ok(())
    })
}

/// Route `storage`'s calls to `server`, an embedded server of this process (no socket in
/// between). The options keep no pointer to `server`: a client connected with them keeps
/// that server's handlers alive, and its calls to that storage fail with UNAVAILABLE once
/// `server` is freed. Another server can reach this storage (a second repository of a
/// call, e.g. ReplicateRepository's source) only if `server` also listens.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_client_options_add_storage_server(
    options: *mut gitrpc_client_options,
    storage: *const c_char,
    server: *const gitrpc_server,
) -> *mut gitrpc_error {
    guard(|| {
        let o = all_options_mut(options)?;
        let storage = arg_str(storage, "storage")?.to_string();
        arg_ptr(server, "server")?;
        if storage.is_empty() {
            return Err(::gitrpc_client::Error::InvalidStorage(storage).into());
        }
        // SAFETY: non-NULL and, by contract, a live server from this library.
        let route = unsafe { &*server }.embedded.route()?;
        o.inner.storages.remove(&storage);
        o.routes.retain(|(n, _)| *n != storage);
        o.routes.push((storage, route));
        Ok(())
    })
}

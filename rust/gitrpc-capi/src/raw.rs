//! Raw calls: any unary or server-streaming RPC by method name, with protobuf bytes.

use std::ffi::{c_char, c_void};

use ::gitrpc_client::runtime::Owned;
use futures::StreamExt;

use crate::calls::buffer;
use crate::client::{block_on, gitrpc_client};
use crate::error::{arg_ptr, arg_str, gitrpc_error, guard, Error, Result};

/// Called once per response message of `gitrpc_call_server_streaming`, on the calling
/// thread. `message` is valid only during the call. Return 0 to continue, anything else to
/// stop (the call is cancelled on the server and `gitrpc_call_server_streaming` returns
/// NULL).
pub type gitrpc_message_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, message: *const u8, len: usize) -> i32>;

fn request_bytes(request: *const u8, request_len: usize) -> Result<Vec<u8>> {
    if request_len == 0 {
        return Ok(Vec::new());
    }
    if request.is_null() {
        return Err(Error::invalid("request is NULL"));
    }
    // SAFETY: the caller promises `request_len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(request, request_len) }.to_vec())
}

/// Call a unary RPC by its full method name ("/gitaly.RefService/RefExists") with an encoded
/// request message (`request` may be NULL when `request_len` is 0). On success `*response`
/// and `*response_len` receive the encoded response; free it with
/// `gitrpc_buffer_free(*response, *response_len)`. A malformed method name is
/// INVALID_ARGUMENT; an unknown method UNIMPLEMENTED.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_call_unary(
    client: *const gitrpc_client,
    method: *const c_char,
    request: *const u8,
    request_len: usize,
    response: *mut *mut u8,
    response_len: *mut usize,
) -> *mut gitrpc_error {
    guard(|| {
        let c = gitrpc_client::from_ptr(client)?;
        let method = arg_str(method, "method")?;
        let req = request_bytes(request, request_len)?;
        arg_ptr(response, "response")?;
        arg_ptr(response_len, "response_len")?;
        let resp = block_on(c.call_unary(method, req))?;
        let (p, n) = buffer(resp);
        // SAFETY: both checked non-NULL.
        unsafe {
            *response = p;
            *response_len = n;
        }
        Ok(())
    })
}

/// Call a server-streaming RPC by its full method name with an encoded request; `callback`
/// receives each encoded response message in order, with `user_data`. Returns once the
/// stream ends, fails, or the callback asks to stop. The client's deadline covers the whole
/// stream. The callback may call other gitrpc functions.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_call_server_streaming(
    client: *const gitrpc_client,
    method: *const c_char,
    request: *const u8,
    request_len: usize,
    callback: gitrpc_message_cb,
    user_data: *mut c_void,
) -> *mut gitrpc_error {
    guard(|| {
        let c = gitrpc_client::from_ptr(client)?;
        let method = arg_str(method, "method")?;
        let req = request_bytes(request, request_len)?;
        let callback = callback.ok_or_else(|| Error::invalid("callback is NULL"))?;
        let stream = block_on(c.call_server_streaming(method, req))?;
        // Dropped inside the runtime (cancelling the call if it is still running), or left
        // alone if the callback forked and we are the child.
        let mut stream = Owned::new(Box::pin(stream));
        // Each message is awaited on the runtime, then handed to the callback outside it,
        // so the callback may itself call into gitrpc.
        loop {
            let next = stream.get_mut().map_err(|_| {
                Error::new(
                    tonic::Code::Unavailable,
                    "stream was opened before fork(); it belongs to the parent process",
                )
            })?;
            let Some(msg) = block_on(next.next()) else {
                break;
            };
            let msg = msg?;
            // SAFETY: the caller's callback, given a buffer valid for this call.
            if unsafe { callback(user_data, msg.as_ptr(), msg.len()) } != 0 {
                break;
            }
        }
        Ok(())
    })
}

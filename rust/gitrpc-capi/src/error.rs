//! `gitrpc_error` and the guard every exported function runs its body in.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// gRPC status codes, as returned by `gitrpc_error_code`.
#[repr(C)]
#[allow(dead_code)]
pub enum gitrpc_code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// An error: a gRPC status code and a message. Owned by the caller; free it with
/// `gitrpc_error_free`.
pub struct gitrpc_error {
    code: i32,
    message: CString,
}

/// What a guarded body returns on failure.
pub(crate) struct Error {
    code: tonic::Code,
    message: String,
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(tonic::Code::InvalidArgument, message)
    }

    fn into_raw(self) -> *mut gitrpc_error {
        let message = CString::new(self.message.replace('\0', "\\0")).unwrap_or_default();
        Box::into_raw(Box::new(gitrpc_error {
            code: self.code as i32,
            message,
        }))
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Error {
        let s = ::gitrpc_client::described(s);
        Error::new(s.code(), s.message())
    }
}

impl From<::gitrpc_client::Error> for Error {
    fn from(e: ::gitrpc_client::Error) -> Error {
        tonic::Status::from(e).into()
    }
}

/// Run an exported function's body: its error, or a caught panic (`INTERNAL`), becomes a
/// `gitrpc_error *`; success is NULL.
pub(crate) fn guard(body: impl FnOnce() -> Result<()>) -> *mut gitrpc_error {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ptr::null_mut(),
        Ok(Err(e)) => e.into_raw(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Error::new(tonic::Code::Internal, format!("panic in gitrpc: {what}")).into_raw()
        }
    }
}

/// Like [`guard`] for functions that cannot report errors (frees, getters).
pub(crate) fn quietly<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// A required string argument.
pub(crate) fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::invalid(format!("{name} is NULL")));
    }
    // SAFETY: the caller promises a NUL-terminated string that outlives the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::invalid(format!("{name} is not valid UTF-8")))
}

/// A required object or out-parameter pointer.
pub(crate) fn arg_ptr<T>(p: *const T, name: &str) -> Result<()> {
    if p.is_null() {
        Err(Error::invalid(format!("{name} is NULL")))
    } else {
        Ok(())
    }
}

/// The gRPC status code of `error` (0, OK, for NULL).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_error_code(error: *const gitrpc_error) -> i32 {
    quietly(0, || {
        // SAFETY: NULL or an error from this library that has not been freed.
        unsafe { error.as_ref() }.map_or(0, |e| e.code)
    })
}

/// The message of `error` (empty for NULL). The string belongs to `error` and is valid
/// until `gitrpc_error_free(error)`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_error_message(error: *const gitrpc_error) -> *const c_char {
    quietly(c"".as_ptr(), || {
        // SAFETY: NULL or an error from this library that has not been freed.
        unsafe { error.as_ref() }.map_or(c"".as_ptr(), |e| e.message.as_ptr())
    })
}

/// Free an error returned by any gitrpc function. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_error_free(error: *mut gitrpc_error) {
    quietly((), || {
        if !error.is_null() {
            // SAFETY: an error from this library, freed once.
            drop(unsafe { Box::from_raw(error) });
        }
    })
}

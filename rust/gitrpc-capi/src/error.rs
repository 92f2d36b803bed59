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

/// An error: a gRPC status code, a message and, for some, a structured detail (the paths
/// of a merge conflict, ...). Owned by the caller; free it with `gitrpc_error_free`.
pub struct gitrpc_error {
    code: i32,
    message: CString,
    /// `grpc-status-details-bin` (a `google.rpc.Status`), empty if none.
    details: Vec<u8>,
    /// Conflicting paths, if the detail is a conflict.
    conflicts: Vec<CString>,
}

/// What a guarded body returns on failure.
pub(crate) struct Error {
    code: tonic::Code,
    message: String,
    details: Vec<u8>,
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(tonic::Code::InvalidArgument, message)
    }

    fn into_raw(self) -> *mut gitrpc_error {
        let message = CString::new(self.message.replace('\0', "\\0")).unwrap_or_default();
        let status = tonic::Status::with_details(
            self.code,
            self.message.clone(),
            bytes::Bytes::from(self.details.clone()),
        );
        let conflicts = match ::gitrpc_client::details::decode(&status) {
            Some(::gitrpc_client::Detail::MergeConflict { files, .. }) => {
                files.iter().map(|f| crate::commit::c_string(f)).collect()
            }
            _ => Vec::new(),
        };
        Box::into_raw(Box::new(gitrpc_error {
            code: self.code as i32,
            message,
            details: self.details,
            conflicts,
        }))
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Error {
        let s = ::gitrpc_client::described(s);
        Error {
            details: s.details().to_vec(),
            ..Error::new(s.code(), s.message())
        }
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

/// How many conflicting paths `error` names (a merge, cherry-pick, revert or squash that
/// conflicted); 0 for any other error and for NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_error_conflict_count(error: *const gitrpc_error) -> usize {
    quietly(0, || {
        // SAFETY: NULL or an error from this library that has not been freed.
        unsafe { error.as_ref() }.map_or(0, |e| e.conflicts.len())
    })
}

/// Conflicting path `index` of `error` (NULL if out of range). The string belongs to
/// `error` and is valid until `gitrpc_error_free(error)`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_error_conflict_path(
    error: *const gitrpc_error,
    index: usize,
) -> *const c_char {
    quietly(ptr::null(), || {
        // SAFETY: NULL or an error from this library that has not been freed.
        unsafe { error.as_ref() }
            .and_then(|e| e.conflicts.get(index))
            .map_or(ptr::null(), |p| p.as_ptr())
    })
}

/// The structured detail of `error` as sent by the server: a serialized `google.rpc.Status`
/// (whose `details` hold e.g. a `gitaly.UserMergeBranchError`), decodable with any protobuf
/// library. NULL (and `*len` 0) if there is none. The bytes belong to `error`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_error_details(
    error: *const gitrpc_error,
    len: *mut usize,
) -> *const u8 {
    quietly(ptr::null(), || {
        // SAFETY: NULL or an error from this library that has not been freed.
        let e = unsafe { error.as_ref() };
        let d = e.map(|e| e.details.as_slice()).unwrap_or_default();
        if !len.is_null() {
            // SAFETY: checked non-NULL; the caller's size_t.
            unsafe { *len = d.len() };
        }
        if d.is_empty() {
            ptr::null()
        } else {
            d.as_ptr()
        }
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

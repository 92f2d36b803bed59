//! Typed calls for the common RPCs, and the strings and buffers they return. Something that
//! is not there (a revision that resolves to nothing, an unknown blob, no default branch) is
//! a NULL out-parameter and no error; errors are for calls that failed.

use std::ffi::{c_char, CString};
use std::ptr;

use ::gitrpc_client::client::repository;

use crate::client::{block_on, gitrpc_client};
use crate::commit::{c_string, commit_to_c, gitrpc_commit};
use crate::error::{arg_ptr, arg_str, gitrpc_error, guard, quietly, Result};

unsafe fn free_c_string(p: *mut c_char) {
    if !p.is_null() {
        // SAFETY: made by `CString::into_raw` here, freed once.
        drop(unsafe { CString::from_raw(p) });
    }
}

/// Free a string returned by gitrpc (e.g. by `gitrpc_find_default_branch_name`). NULL is a
/// no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_string_free(s: *mut c_char) {
    // SAFETY: a string from this library, freed once.
    quietly((), || unsafe { free_c_string(s) })
}

/// Hand `data` to C as a buffer to free with `gitrpc_buffer_free(ptr, len)`.
pub(crate) fn buffer(data: Vec<u8>) -> (*mut u8, usize) {
    let len = data.len();
    (Box::into_raw(data.into_boxed_slice()) as *mut u8, len)
}

/// Free a buffer returned by gitrpc, with the length it was returned with. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_buffer_free(data: *mut u8, len: usize) {
    quietly((), || {
        if !data.is_null() {
            // SAFETY: made by `buffer` with this length, freed once.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(data, len)) });
        }
    })
}

/// The client and repository every typed call starts from.
pub(crate) fn target<'a>(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
) -> Result<(
    &'a ::gitrpc_client::Client,
    ::gitrpc_client::gitaly::Repository,
)> {
    let c = gitrpc_client::from_ptr(client)?;
    let storage = arg_str(storage, "storage")?;
    let relative_path = arg_str(relative_path, "relative_path")?;
    Ok((c, repository(storage, relative_path)))
}

/// Does the repository exist? Unknown storage is INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_repository_exists(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    out: *mut bool,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        arg_ptr(out, "out")?;
        let v = block_on(c.repository_exists(&repo))?;
        // SAFETY: checked non-NULL.
        unsafe { *out = v };
        Ok(())
    })
}

/// Create an empty repository whose HEAD points at `default_branch` (e.g. "main"; NULL or ""
/// for git's default). ALREADY_EXISTS if it exists.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_create_repository(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    default_branch: *const c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let branch = if default_branch.is_null() {
            ""
        } else {
            arg_str(default_branch, "default_branch")?
        };
        block_on(c.create_repository(&repo, branch))?;
        Ok(())
    })
}

/// Remove a repository. NOT_FOUND if it does not exist.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_remove_repository(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        block_on(c.remove_repository(&repo))?;
        Ok(())
    })
}

/// Does `ref` (a full name starting with "refs/") exist? NOT_FOUND if the repository does
/// not exist; INVALID_ARGUMENT for a name outside refs/.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_ref_exists(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    r#ref: *const c_char,
    out: *mut bool,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let name = arg_str(r#ref, "ref")?;
        arg_ptr(out, "out")?;
        let v = block_on(c.ref_exists(&repo, name))?;
        // SAFETY: checked non-NULL.
        unsafe { *out = v };
        Ok(())
    })
}

/// The default branch as a full ref name ("refs/heads/main"), freed with
/// `gitrpc_string_free`; `*out` is set to NULL (and no error returned) if the repository has
/// no branches. NOT_FOUND if the repository does not exist.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_find_default_branch_name(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    out: *mut *mut c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        arg_ptr(out, "out")?;
        let name = block_on(c.find_default_branch_name(&repo))?;
        let v = name.map_or(ptr::null_mut(), |n| c_string(&n).into_raw());
        // SAFETY: checked non-NULL.
        unsafe { *out = v };
        Ok(())
    })
}

/// The commit `revision` (a branch, tag, object id, "HEAD~2", ...) resolves to, read with the
/// `gitrpc_commit_*` accessors and freed with `gitrpc_commit_free`; `*out` is set to NULL
/// (and no error returned) if it resolves to no commit. NOT_FOUND if the repository does not
/// exist.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_find_commit(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    revision: *const c_char,
    out: *mut *mut gitrpc_commit,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let revision = arg_str(revision, "revision")?;
        arg_ptr(out, "out")?;
        let commit = block_on(c.find_commit(&repo, revision.as_bytes()))?;
        let v = commit.as_ref().map_or(ptr::null_mut(), commit_to_c);
        // SAFETY: checked non-NULL.
        unsafe { *out = v };
        Ok(())
    })
}

/// The content of blob `oid`, at most `limit` bytes (negative: all of it). `*data` (freed
/// with `gitrpc_buffer_free(*data, *len)`) and `*len` receive it; an empty blob is a
/// non-NULL `*data` with `*len` 0. If there is no such blob, `*data` is set to NULL and
/// `*len` to 0, and no error is returned. NOT_FOUND if the repository does not exist.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_get_blob(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    oid: *const c_char,
    limit: i64,
    data: *mut *mut u8,
    len: *mut usize,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let oid = arg_str(oid, "oid")?;
        arg_ptr(data, "data")?;
        arg_ptr(len, "len")?;
        let blob = block_on(c.get_blob(&repo, oid, limit))?;
        let (p, n) = blob.map_or((ptr::null_mut(), 0), |b| buffer(b.data));
        // SAFETY: both checked non-NULL.
        unsafe {
            *data = p;
            *len = n;
        }
        Ok(())
    })
}

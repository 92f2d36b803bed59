//! `gitrpc_commit_diff`: CommitDiff streamed to a callback, one `gitrpc_diff` per file (its
//! patch put together by the Rust client), with `gitrpc_commit_diff_options` for the limits.
//! Every other step-11 read goes through the raw calls (`gitrpc_call_server_streaming`).

use std::ffi::{c_char, c_void, CString};
use std::ptr;

use ::gitrpc_client::client::{CommitDiffOptions, Diff};
use ::gitrpc_client::gitaly::commit_diff_request::WhitespaceChanges;
use ::gitrpc_client::runtime::Owned;
use futures::StreamExt;

use crate::calls::target;
use crate::client::{block_on, gitrpc_client};
use crate::commit::c_string;
use crate::error::{arg_ptr, arg_str, gitrpc_error, guard, quietly, Error, Result};

/// How CommitDiff treats whitespace (the values of Gitaly's `WhitespaceChanges`), for
/// `gitrpc_commit_diff_options_set_whitespace`.
#[repr(C)]
#[allow(dead_code)]
pub enum gitrpc_whitespace_changes {
    /// Whitespace counts (`git diff`).
    Unspecified = 0,
    /// `git diff --ignore-space-change`.
    Ignore = 1,
    /// `git diff --ignore-all-space`.
    IgnoreAll = 2,
}

/// CommitDiff's limits and modes. Made by `gitrpc_commit_diff_options_new` (no limits, whole
/// patches, whitespace counts), changed by its setters, given to `gitrpc_commit_diff` (which
/// copies it), freed with `gitrpc_commit_diff_options_free`.
pub struct gitrpc_commit_diff_options {
    inner: CommitDiffOptions,
}

/// New options: no limits, every path, whole patches.
#[no_mangle]
pub extern "C" fn gitrpc_commit_diff_options_new() -> *mut gitrpc_commit_diff_options {
    quietly(ptr::null_mut(), || {
        Box::into_raw(Box::new(gitrpc_commit_diff_options {
            inner: CommitDiffOptions::default(),
        }))
    })
}

/// Free options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff_options_free(options: *mut gitrpc_commit_diff_options) {
    quietly((), || {
        if !options.is_null() {
            // SAFETY: options from this library, freed once.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

fn options_mut<'a>(p: *mut gitrpc_commit_diff_options) -> Result<&'a mut CommitDiffOptions> {
    arg_ptr(p, "options")?;
    // SAFETY: non-NULL and, by contract, live options from this library used by one thread.
    Ok(unsafe { &mut (*p).inner })
}

/// Enforce the hard limits (Gitaly's `enforce_limits`): once `max_files` files, `max_lines`
/// patch lines or `max_bytes` patch bytes are reached, the diff ends with an entry whose
/// `gitrpc_diff_overflow_marker` is true; a file's patch over `max_patch_bytes` is left out
/// (`gitrpc_diff_too_large`).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff_options_set_limits(
    options: *mut gitrpc_commit_diff_options,
    max_files: i32,
    max_lines: i32,
    max_bytes: i32,
    max_patch_bytes: i32,
) -> *mut gitrpc_error {
    guard(|| {
        let o = options_mut(options)?;
        o.enforce_limits = true;
        o.max_files = max_files;
        o.max_lines = max_lines;
        o.max_bytes = max_bytes;
        o.max_patch_bytes = max_patch_bytes;
        Ok(())
    })
}

/// `max_patch_bytes` for files whose name ends in `extension` (".lock", with its dot); only
/// counts with `gitrpc_commit_diff_options_set_limits`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff_options_set_max_patch_bytes_for_extension(
    options: *mut gitrpc_commit_diff_options,
    extension: *const c_char,
    max_patch_bytes: i32,
) -> *mut gitrpc_error {
    guard(|| {
        let o = options_mut(options)?;
        let ext = arg_str(extension, "extension")?;
        o.max_patch_bytes_for_file_extension
            .insert(ext.to_string(), max_patch_bytes);
        Ok(())
    })
}

/// The safe limits (Gitaly's `collapse_diffs`): past `safe_max_files` files,
/// `safe_max_lines` lines or `safe_max_bytes` bytes, files come without their patch
/// (`gitrpc_diff_collapsed`).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff_options_set_safe_limits(
    options: *mut gitrpc_commit_diff_options,
    safe_max_files: i32,
    safe_max_lines: i32,
    safe_max_bytes: i32,
) -> *mut gitrpc_error {
    guard(|| {
        let o = options_mut(options)?;
        o.collapse_diffs = true;
        o.safe_max_files = safe_max_files;
        o.safe_max_lines = safe_max_lines;
        o.safe_max_bytes = safe_max_bytes;
        Ok(())
    })
}

/// With the hard limits: after the limit is reached, keep listing the remaining files
/// (without patches) instead of ending with an empty overflow entry.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff_options_set_collect_all_paths(
    options: *mut gitrpc_commit_diff_options,
    collect_all_paths: bool,
) -> *mut gitrpc_error {
    guard(|| {
        options_mut(options)?.collect_all_paths = collect_all_paths;
        Ok(())
    })
}

/// How whitespace counts: a `gitrpc_whitespace_changes` value; any other is
/// INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff_options_set_whitespace(
    options: *mut gitrpc_commit_diff_options,
    whitespace: i32,
) -> *mut gitrpc_error {
    guard(|| {
        let o = options_mut(options)?;
        o.whitespace = WhitespaceChanges::try_from(whitespace)
            .map_err(|_| Error::invalid(format!("unknown whitespace mode {whitespace}")))?;
        Ok(())
    })
}

/// Word diff (`git diff --word-diff=porcelain`) instead of line diff.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff_options_set_word_diff(
    options: *mut gitrpc_commit_diff_options,
    word_diff: bool,
) -> *mut gitrpc_error {
    guard(|| {
        options_mut(options)?.word_diff = word_diff;
        Ok(())
    })
}

/// Only diff `path` (`len` bytes, any bytes but NUL; a file or a directory); call again for
/// more. Without any, every path.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff_options_add_path(
    options: *mut gitrpc_commit_diff_options,
    path: *const u8,
    len: usize,
) -> *mut gitrpc_error {
    guard(|| {
        let o = options_mut(options)?;
        arg_ptr(path, "path")?;
        // SAFETY: non-NULL; the caller promises `len` readable bytes.
        let p = unsafe { std::slice::from_raw_parts(path, len) };
        o.paths.push(p.to_vec());
        Ok(())
    })
}

/// One file of a CommitDiff, handed to the callback of `gitrpc_commit_diff`. Read it with
/// the `gitrpc_diff_*` accessors; it and everything they return are valid only until the
/// callback returns (copy what you keep).
pub struct gitrpc_diff {
    /// Paths with a NUL after them (git paths never hold one).
    from_path: Vec<u8>,
    to_path: Vec<u8>,
    from_id: CString,
    to_id: CString,
    patch: Vec<u8>,
    d: Diff,
}

impl gitrpc_diff {
    fn new(mut d: Diff) -> gitrpc_diff {
        let nul = |mut v: Vec<u8>| {
            v.push(0);
            v
        };
        gitrpc_diff {
            from_path: nul(std::mem::take(&mut d.from_path)),
            to_path: nul(std::mem::take(&mut d.to_path)),
            from_id: c_string(d.from_id.as_bytes()),
            to_id: c_string(d.to_id.as_bytes()),
            patch: std::mem::take(&mut d.patch),
            d,
        }
    }
}

fn diff_ref<'a>(d: *const gitrpc_diff) -> Option<&'a gitrpc_diff> {
    // SAFETY: NULL or, by contract, the diff of the running callback.
    unsafe { d.as_ref() }
}

/// Bytes (without their trailing NUL) and their length through `len` (may be NULL).
fn bytes_out(v: Option<&[u8]>, len: *mut usize, nul: bool) -> *const u8 {
    let n = v.map_or(0, |v| v.len() - usize::from(nul));
    if !len.is_null() {
        // SAFETY: checked non-NULL; the caller's size_t.
        unsafe { *len = n };
    }
    v.map_or(ptr::null(), <[u8]>::as_ptr)
}

/// The path before the change (the old name of a rename; for an added file, its path), as
/// bytes (any encoding git was given), `*len` (if `len` is not NULL) set to their length.
/// A NUL follows them, so it can be read as a C string. NULL (and 0) if `diff` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_from_path(
    diff: *const gitrpc_diff,
    len: *mut usize,
) -> *const u8 {
    quietly(ptr::null(), || {
        bytes_out(diff_ref(diff).map(|d| &d.from_path[..]), len, true)
    })
}

/// The path after the change (for a deleted file, its path); like `gitrpc_diff_from_path`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_to_path(
    diff: *const gitrpc_diff,
    len: *mut usize,
) -> *const u8 {
    quietly(ptr::null(), || {
        bytes_out(diff_ref(diff).map(|d| &d.to_path[..]), len, true)
    })
}

/// The blob id before the change, in full hex (all zeros for an added file). NULL if `diff`
/// is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_from_id(diff: *const gitrpc_diff) -> *const c_char {
    quietly(ptr::null(), || {
        diff_ref(diff).map_or(ptr::null(), |d| d.from_id.as_ptr())
    })
}

/// The blob id after the change (all zeros for a deleted file). NULL if `diff` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_to_id(diff: *const gitrpc_diff) -> *const c_char {
    quietly(ptr::null(), || {
        diff_ref(diff).map_or(ptr::null(), |d| d.to_id.as_ptr())
    })
}

/// The file's mode before the change (e.g. 0100644; 0 for an added file or a NULL `diff`).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_old_mode(diff: *const gitrpc_diff) -> i32 {
    quietly(0, || diff_ref(diff).map_or(0, |d| d.d.old_mode))
}

/// The file's mode after the change (0 for a deleted file or a NULL `diff`).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_new_mode(diff: *const gitrpc_diff) -> i32 {
    quietly(0, || diff_ref(diff).map_or(0, |d| d.d.new_mode))
}

/// The patch: git's hunks without the header lines (`diff --git`, `index`, `---`, `+++`),
/// or `Binary files ... differ` for a binary file; empty for a pure rename or mode change,
/// and for a file left out by a limit. `*len` (if `len` is not NULL) receives its length;
/// not NUL-terminated. NULL (and 0) if `diff` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_patch(diff: *const gitrpc_diff, len: *mut usize) -> *const u8 {
    quietly(ptr::null(), || {
        bytes_out(diff_ref(diff).map(|d| &d.patch[..]), len, false)
    })
}

/// Lines the patch adds (0 if `diff` is NULL).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_lines_added(diff: *const gitrpc_diff) -> i32 {
    quietly(0, || diff_ref(diff).map_or(0, |d| d.d.lines_added))
}

/// Lines the patch removes (0 if `diff` is NULL).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_lines_removed(diff: *const gitrpc_diff) -> i32 {
    quietly(0, || diff_ref(diff).map_or(0, |d| d.d.lines_removed))
}

/// git found the file binary (the patch is `Binary files ... differ`).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_binary(diff: *const gitrpc_diff) -> bool {
    quietly(false, || diff_ref(diff).is_some_and(|d| d.d.binary))
}

/// The patch was left out as larger than `max_patch_bytes`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_too_large(diff: *const gitrpc_diff) -> bool {
    quietly(false, || diff_ref(diff).is_some_and(|d| d.d.too_large))
}

/// The patch was left out by the safe limits.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_collapsed(diff: *const gitrpc_diff) -> bool {
    quietly(false, || diff_ref(diff).is_some_and(|d| d.d.collapsed))
}

/// The hard limits ended the diff here: without collect_all_paths this is a last, empty
/// entry (no paths, no patch) saying more files changed.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_diff_overflow_marker(diff: *const gitrpc_diff) -> bool {
    quietly(false, || {
        diff_ref(diff).is_some_and(|d| d.d.overflow_marker)
    })
}

/// Called once per file of `gitrpc_commit_diff`, in git's order, on the calling thread.
/// `diff` is valid only during the call. Return 0 to continue, anything else to stop (the
/// call is cancelled on the server, its git stopped, and `gitrpc_commit_diff` returns NULL).
pub type gitrpc_diff_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, diff: *const gitrpc_diff) -> i32>;

/// The files changed between commits `left` and `right` (any revisions; `git diff left
/// right` with rename detection), each handed to `callback` with `user_data` as it arrives,
/// within `options`' limits (NULL: none). Returns once the diff ends, fails, or the callback
/// asks to stop. An error may come after some files were already handed over (a revision
/// that names no commit: FAILED_PRECONDITION; an empty one: INVALID_ARGUMENT; a missing
/// repository: NOT_FOUND). The client's deadline covers the whole stream. The callback may
/// call other gitrpc functions. Memory holds one file's patch at a time (its whole patch:
/// bound it with `max_patch_bytes`).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_diff(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    left: *const c_char,
    right: *const c_char,
    options: *const gitrpc_commit_diff_options,
    callback: gitrpc_diff_cb,
    user_data: *mut c_void,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let left = arg_str(left, "left")?;
        let right = arg_str(right, "right")?;
        let callback = callback.ok_or_else(|| Error::invalid("callback is NULL"))?;
        let opts = if options.is_null() {
            CommitDiffOptions::default()
        } else {
            // SAFETY: non-NULL and, by contract, live options from this library.
            unsafe { &*options }.inner.clone()
        };
        let stream = block_on(c.commit_diff(&repo, left, right, opts))?;
        // Dropped inside the runtime (cancelling the call if it is still running), or left
        // alone if the callback forked and we are the child.
        let mut stream = Owned::new(Box::pin(stream));
        // Each file is awaited on the runtime, then handed to the callback outside it, so
        // the callback may itself call into gitrpc.
        loop {
            let next = stream.get_mut().map_err(|_| {
                Error::new(
                    tonic::Code::Unavailable,
                    "stream was opened before fork(); it belongs to the parent process",
                )
            })?;
            let Some(d) = block_on(next.next()) else {
                break;
            };
            let d = gitrpc_diff::new(d?);
            // SAFETY: the caller's callback, given a diff valid for this call.
            if unsafe { callback(user_data, &d) } != 0 {
                break;
            }
        }
        Ok(())
    })
}

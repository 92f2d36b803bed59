//! `gitrpc_commit` and `gitrpc_signature`: opaque, read through accessors, so either can grow
//! without breaking compiled callers. Every string an accessor returns is NUL-terminated,
//! belongs to the commit, and is valid until `gitrpc_commit_free`.

use std::ffi::{c_char, CString};

use ::gitrpc_client::gitaly::{CommitAuthor, GitCommit};

use crate::error::quietly;

/// An author or committer of a commit; part of its `gitrpc_commit` (never freed on its own).
pub struct gitrpc_signature {
    name: CString,
    email: CString,
    time: i64,
    timezone: CString,
}

/// A commit, as returned by `gitrpc_find_commit`; read it with the `gitrpc_commit_*`
/// accessors and free it with `gitrpc_commit_free`.
pub struct gitrpc_commit {
    id: CString,
    tree_id: CString,
    parent_ids: Vec<CString>,
    subject: CString,
    body: CString,
    body_size: i64,
    author: gitrpc_signature,
    committer: gitrpc_signature,
}

/// A C string of `bytes`, cut at the first NUL (git's names and ids never hold one).
pub(crate) fn c_string(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).unwrap_or_default()
}

fn signature(a: Option<&CommitAuthor>) -> gitrpc_signature {
    let empty = CommitAuthor::default();
    let a = a.unwrap_or(&empty);
    gitrpc_signature {
        name: c_string(&a.name),
        email: c_string(&a.email),
        time: a.date.as_ref().map_or(0, |t| t.seconds),
        timezone: c_string(&a.timezone),
    }
}

/// An owned C commit (for `gitrpc_commit_free`).
pub(crate) fn commit_to_c(c: &GitCommit) -> *mut gitrpc_commit {
    Box::into_raw(Box::new(gitrpc_commit {
        id: c_string(c.id.as_bytes()),
        tree_id: c_string(c.tree_id.as_bytes()),
        parent_ids: c
            .parent_ids
            .iter()
            .map(|p| c_string(p.as_bytes()))
            .collect(),
        subject: c_string(&c.subject),
        body: c_string(&c.body),
        body_size: c.body_size,
        author: signature(c.author.as_ref()),
        committer: signature(c.committer.as_ref()),
    }))
}

/// Free a commit from `gitrpc_find_commit`, and with it every string and signature its
/// accessors returned. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_free(commit: *mut gitrpc_commit) {
    quietly((), || {
        if !commit.is_null() {
            // SAFETY: made by `commit_to_c`, freed once.
            drop(unsafe { Box::from_raw(commit) });
        }
    })
}

/// The commit behind a C pointer, if not NULL.
fn commit_ref<'a>(c: *const gitrpc_commit) -> Option<&'a gitrpc_commit> {
    // SAFETY: NULL or, by contract, a live commit from this library.
    unsafe { c.as_ref() }
}

fn signature_ref<'a>(s: *const gitrpc_signature) -> Option<&'a gitrpc_signature> {
    // SAFETY: NULL or, by contract, a signature of a live commit.
    unsafe { s.as_ref() }
}

/// Read one string field, NULL if `p` is NULL.
fn text<T>(p: Option<&T>, field: impl FnOnce(&T) -> &CString) -> *const c_char {
    p.map_or(std::ptr::null(), |v| field(v).as_ptr())
}

/// The commit's object id in hex (40 characters for SHA-1, 64 for SHA-256). Belongs to
/// `commit`, valid until `gitrpc_commit_free`. NULL if `commit` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_id(commit: *const gitrpc_commit) -> *const c_char {
    quietly(std::ptr::null(), || text(commit_ref(commit), |c| &c.id))
}

/// The object id of the commit's tree. Belongs to `commit`, valid until `gitrpc_commit_free`.
/// NULL if `commit` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_tree_id(commit: *const gitrpc_commit) -> *const c_char {
    quietly(std::ptr::null(), || {
        text(commit_ref(commit), |c| &c.tree_id)
    })
}

/// How many parents the commit has (0 for a root commit, or if `commit` is NULL).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_parent_count(commit: *const gitrpc_commit) -> usize {
    quietly(0, || commit_ref(commit).map_or(0, |c| c.parent_ids.len()))
}

/// The object id of parent `index` (0-based, in the commit's order). Belongs to `commit`,
/// valid until `gitrpc_commit_free`. NULL if `index` is out of range or `commit` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_parent_id(
    commit: *const gitrpc_commit,
    index: usize,
) -> *const c_char {
    quietly(std::ptr::null(), || {
        commit_ref(commit)
            .and_then(|c| c.parent_ids.get(index))
            .map_or(std::ptr::null(), |p| p.as_ptr())
    })
}

/// The first line of the message. Belongs to `commit`, valid until `gitrpc_commit_free`.
/// NULL if `commit` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_subject(commit: *const gitrpc_commit) -> *const c_char {
    quietly(std::ptr::null(), || {
        text(commit_ref(commit), |c| &c.subject)
    })
}

/// The whole message, possibly truncated by the server (see `gitrpc_commit_body_size`).
/// Belongs to `commit`, valid until `gitrpc_commit_free`. NULL if `commit` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_body(commit: *const gitrpc_commit) -> *const c_char {
    quietly(std::ptr::null(), || text(commit_ref(commit), |c| &c.body))
}

/// The full size of the message in bytes, even when `gitrpc_commit_body` was truncated
/// (0 if `commit` is NULL).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_body_size(commit: *const gitrpc_commit) -> i64 {
    quietly(0, || commit_ref(commit).map_or(0, |c| c.body_size))
}

/// The author. Belongs to `commit`, valid until `gitrpc_commit_free` (never freed on its
/// own). Never NULL for a non-NULL `commit`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_author(
    commit: *const gitrpc_commit,
) -> *const gitrpc_signature {
    quietly(std::ptr::null(), || {
        commit_ref(commit).map_or(std::ptr::null(), |c| &c.author as *const _)
    })
}

/// The committer. Belongs to `commit`, valid until `gitrpc_commit_free` (never freed on its
/// own). Never NULL for a non-NULL `commit`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_committer(
    commit: *const gitrpc_commit,
) -> *const gitrpc_signature {
    quietly(std::ptr::null(), || {
        commit_ref(commit).map_or(std::ptr::null(), |c| &c.committer as *const _)
    })
}

/// The signature's name. Belongs to its commit, valid until `gitrpc_commit_free`. NULL if
/// `signature` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_signature_name(
    signature: *const gitrpc_signature,
) -> *const c_char {
    quietly(std::ptr::null(), || {
        text(signature_ref(signature), |s| &s.name)
    })
}

/// The signature's email. Belongs to its commit, valid until `gitrpc_commit_free`. NULL if
/// `signature` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_signature_email(
    signature: *const gitrpc_signature,
) -> *const c_char {
    quietly(std::ptr::null(), || {
        text(signature_ref(signature), |s| &s.email)
    })
}

/// When it was signed, in seconds since the Unix epoch (0 if `signature` is NULL).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_signature_time(signature: *const gitrpc_signature) -> i64 {
    quietly(0, || signature_ref(signature).map_or(0, |s| s.time))
}

/// The UTC offset as recorded in the commit, e.g. "+0200". Belongs to its commit, valid
/// until `gitrpc_commit_free`. NULL if `signature` is NULL.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_signature_timezone(
    signature: *const gitrpc_signature,
) -> *const c_char {
    quietly(std::ptr::null(), || {
        text(signature_ref(signature), |s| &s.timezone)
    })
}

//! Typed calls for the common read RPCs, and the structs, strings and buffers they return.

use std::ffi::{c_char, CString};
use std::ptr;

use ::gitrpc_client::client::repository;
use ::gitrpc_client::gitaly::{CommitAuthor, GitCommit};

use crate::client::{block_on, gitrpc_client};
use crate::error::{arg_ptr, arg_str, gitrpc_error, guard, quietly, Error, Result};

/// An author or committer of a commit. Strings are owned by the enclosing gitrpc_commit.
#[repr(C)]
pub struct gitrpc_signature {
    pub name: *mut c_char,
    pub email: *mut c_char,
    /// Seconds since the Unix epoch.
    pub date: i64,
    /// As recorded in the commit, e.g. "+0200".
    pub timezone: *mut c_char,
}

/// A commit, as returned by `gitrpc_find_commit`; free it with `gitrpc_commit_free`.
/// Strings are NUL-terminated; `subject` and `body` also have explicit lengths.
#[repr(C)]
pub struct gitrpc_commit {
    /// Hex object id (40 characters for SHA-1, 64 for SHA-256).
    pub id: *mut c_char,
    pub tree_id: *mut c_char,
    /// `parent_count` hex object ids.
    pub parent_ids: *mut *mut c_char,
    pub parent_count: usize,
    /// The first line of the message.
    pub subject: *mut c_char,
    pub subject_len: usize,
    /// The message, possibly truncated by the server (see `body_size`).
    pub body: *mut c_char,
    pub body_len: usize,
    /// The full size of the message in bytes.
    pub body_size: i64,
    pub author: gitrpc_signature,
    pub committer: gitrpc_signature,
}

/// A C string of `bytes`, cut at the first NUL (git's names and ids never hold one).
fn c_string(bytes: &[u8]) -> *mut c_char {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).expect("NUL removed").into_raw()
}

/// A C string and its length (up to the first NUL).
fn c_text(bytes: &[u8]) -> (*mut c_char, usize) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    (c_string(bytes), end)
}

unsafe fn free_c_string(p: *mut c_char) {
    if !p.is_null() {
        // SAFETY: made by `c_string`, freed once.
        drop(unsafe { CString::from_raw(p) });
    }
}

fn signature(a: Option<&CommitAuthor>) -> gitrpc_signature {
    let empty = CommitAuthor::default();
    let a = a.unwrap_or(&empty);
    gitrpc_signature {
        name: c_string(&a.name),
        email: c_string(&a.email),
        date: a.date.as_ref().map_or(0, |t| t.seconds),
        timezone: c_string(&a.timezone),
    }
}

unsafe fn free_signature(s: &gitrpc_signature) {
    unsafe {
        free_c_string(s.name);
        free_c_string(s.email);
        free_c_string(s.timezone);
    }
}

fn commit_to_c(c: &GitCommit) -> *mut gitrpc_commit {
    let parents: Vec<*mut c_char> = c
        .parent_ids
        .iter()
        .map(|p| c_string(p.as_bytes()))
        .collect();
    let parent_count = parents.len();
    let parent_ids = Box::into_raw(parents.into_boxed_slice()) as *mut *mut c_char;
    let (subject, subject_len) = c_text(&c.subject);
    let (body, body_len) = c_text(&c.body);
    Box::into_raw(Box::new(gitrpc_commit {
        id: c_string(c.id.as_bytes()),
        tree_id: c_string(c.tree_id.as_bytes()),
        parent_ids,
        parent_count,
        subject,
        subject_len,
        body,
        body_len,
        body_size: c.body_size,
        author: signature(c.author.as_ref()),
        committer: signature(c.committer.as_ref()),
    }))
}

/// Free a commit from `gitrpc_find_commit` and everything it points to. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_free(commit: *mut gitrpc_commit) {
    quietly((), || {
        if commit.is_null() {
            return;
        }
        // SAFETY: made by `commit_to_c`, freed once; every pointer in it was made here.
        unsafe {
            let c = Box::from_raw(commit);
            free_c_string(c.id);
            free_c_string(c.tree_id);
            let parents =
                Box::from_raw(ptr::slice_from_raw_parts_mut(c.parent_ids, c.parent_count));
            for p in parents.iter() {
                free_c_string(*p);
            }
            free_c_string(c.subject);
            free_c_string(c.body);
            free_signature(&c.author);
            free_signature(&c.committer);
        }
    })
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
fn target<'a>(
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

/// The default branch as a full ref name ("refs/heads/main"), "" if the repository has no
/// branches. `*out` is freed with `gitrpc_string_free`.
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
        // SAFETY: checked non-NULL.
        unsafe { *out = c_string(&name) };
        Ok(())
    })
}

/// The commit `revision` (a branch, tag, object id, "HEAD~2", ...) resolves to. `*out` is
/// set to NULL if it resolves to no commit, else to a commit freed with `gitrpc_commit_free`.
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
/// with `gitrpc_buffer_free(*data, *len)`) and `*len` receive it. NOT_FOUND if there is no
/// such blob.
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
        let blob = block_on(c.get_blob(&repo, oid, limit))?
            .ok_or_else(|| Error::new(tonic::Code::NotFound, format!("blob {oid} not found")))?;
        let (p, n) = buffer(blob.data);
        // SAFETY: both checked non-NULL.
        unsafe {
            *data = p;
            *len = n;
        }
        Ok(())
    })
}

//! OperationService's most common calls for C: commit files, create and delete a branch,
//! merge. The others go through `gitrpc_call_unary` with protobuf bytes. A hook's refusal
//! is `PERMISSION_DENIED` (or `FAILED_PRECONDITION` for what Gitaly words as an access
//! check) with the hook's message; a conflict's paths are on the error
//! (`gitrpc_error_conflict_path`).

use std::ffi::{c_char, CString};

use ::gitrpc_client::gitaly::User;
use ::gitrpc_client::{BranchUpdate, CommitFiles, FileAction, MergeBranch};

use crate::calls::target;
use crate::client::{block_on, gitrpc_client};
use crate::commit::c_string;
use crate::error::{arg_ptr, arg_str, gitrpc_error, guard, quietly, Error, Result};

/// Who makes a change (GitLab's user): every field a NUL-terminated UTF-8 string; `name` and
/// `email` are the commit's identity; `timezone` an IANA name such as "Europe/Berlin" (NULL
/// or "": UTC); `gl_id`, `gl_username` go to the hooks (NULL: empty).
#[repr(C)]
pub struct gitrpc_user {
    pub gl_id: *const c_char,
    pub gl_username: *const c_char,
    pub name: *const c_char,
    pub email: *const c_char,
    pub timezone: *const c_char,
}

/// What a file action does (the values of Gitaly's `ActionType`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(dead_code)]
pub enum gitrpc_action_type {
    Create = 0,
    CreateDir = 1,
    Update = 2,
    Move = 3,
    Delete = 4,
    Chmod = 5,
}

/// One file action of `gitrpc_commit_files`. `path`: the file (or directory) acted on;
/// `previous_path`: MOVE's source; `content`/`content_len`: CREATE, UPDATE and MOVE's new
/// content (MOVE with `infer_content` keeps the old); `executable`: CREATE's and CHMOD's mode.
#[repr(C)]
pub struct gitrpc_file_action {
    pub action: gitrpc_action_type,
    pub path: *const c_char,
    pub previous_path: *const c_char,
    pub content: *const u8,
    pub content_len: usize,
    pub executable: bool,
    pub infer_content: bool,
}

/// How an operation moved a branch. Opaque; read with the accessors, free with
/// `gitrpc_branch_update_free`.
pub struct gitrpc_branch_update {
    commit_id: CString,
    repo_created: bool,
    branch_created: bool,
}

fn update_to_c(u: BranchUpdate) -> *mut gitrpc_branch_update {
    Box::into_raw(Box::new(gitrpc_branch_update {
        commit_id: c_string(u.commit_id.as_bytes()),
        repo_created: u.repo_created,
        branch_created: u.branch_created,
    }))
}

/// An optional string argument (NULL: none).
fn opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    arg_str(p, name).map(Some)
}

fn user_from(p: *const gitrpc_user) -> Result<User> {
    arg_ptr(p, "user")?;
    // SAFETY: checked non-NULL; by contract a gitrpc_user whose strings outlive the call.
    let u = unsafe { &*p };
    let s = |p, n| opt_str(p, n).map(|s| s.unwrap_or_default().to_string());
    Ok(User {
        gl_id: s(u.gl_id, "user.gl_id")?,
        gl_username: s(u.gl_username, "user.gl_username")?,
        name: s(u.name, "user.name")?.into_bytes(),
        email: s(u.email, "user.email")?.into_bytes(),
        timezone: s(u.timezone, "user.timezone")?,
    })
}

fn action_from(a: &gitrpc_file_action) -> Result<FileAction> {
    let path = || arg_str(a.path, "action path").map(|s| s.as_bytes().to_vec());
    let content = || -> Result<Vec<u8>> {
        if a.content.is_null() {
            return match a.content_len {
                0 => Ok(Vec::new()),
                _ => Err(Error::invalid("action content is NULL")),
            };
        }
        // SAFETY: by contract `content_len` readable bytes.
        Ok(unsafe { std::slice::from_raw_parts(a.content, a.content_len) }.to_vec())
    };
    Ok(match a.action as i32 {
        0 => FileAction::Create {
            path: path()?,
            content: content()?,
            executable: a.executable,
        },
        1 => FileAction::CreateDir { path: path()? },
        2 => FileAction::Update {
            path: path()?,
            content: content()?,
        },
        3 => FileAction::Move {
            from: arg_str(a.previous_path, "action previous_path")?
                .as_bytes()
                .to_vec(),
            to: path()?,
            content: if a.infer_content {
                None
            } else {
                Some(content()?)
            },
        },
        4 => FileAction::Delete { path: path()? },
        5 => FileAction::Chmod {
            path: path()?,
            executable: a.executable,
        },
        n => return Err(Error::invalid(format!("unknown action type {n}"))),
    })
}

/// Commit `action_count` file actions to `branch` (short name) as `user`, with `message`.
/// `start_branch` (NULL: `branch` itself) is the branch the commit is based on; with
/// `expected_old_oid` (NULL: the start commit) the branch must point there (the zero id: it
/// must not exist), so of concurrent writers exactly one wins. On success `*out` receives
/// the update, to free with `gitrpc_branch_update_free`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_commit_files(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    user: *const gitrpc_user,
    branch: *const c_char,
    message: *const c_char,
    actions: *const gitrpc_file_action,
    action_count: usize,
    start_branch: *const c_char,
    expected_old_oid: *const c_char,
    out: *mut *mut gitrpc_branch_update,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let user = user_from(user)?;
        let branch = arg_str(branch, "branch")?;
        let message = arg_str(message, "message")?;
        arg_ptr(out, "out")?;
        if actions.is_null() && action_count > 0 {
            return Err(Error::invalid("actions is NULL"));
        }
        let list = match action_count {
            0 => &[][..],
            // SAFETY: by contract `action_count` actions.
            n => unsafe { std::slice::from_raw_parts(actions, n) },
        };
        let req = CommitFiles {
            user,
            branch: branch.as_bytes().to_vec(),
            message: message.as_bytes().to_vec(),
            actions: list.iter().map(action_from).collect::<Result<_>>()?,
            start_branch: opt_str(start_branch, "start_branch")?.map(|s| s.as_bytes().to_vec()),
            expected_old_oid: opt_str(expected_old_oid, "expected_old_oid")?.map(str::to_string),
            ..Default::default()
        };
        let u = block_on(c.commit_files(&repo, &req))?;
        // SAFETY: checked non-NULL.
        unsafe { *out = update_to_c(u) };
        Ok(())
    })
}

/// Create `branch` (short name) at `start_point` (a revision) as `user`. On success
/// `*commit_id_out` (may be NULL) receives the branch's commit id, to free with
/// `gitrpc_string_free`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_create_branch(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    user: *const gitrpc_user,
    branch: *const c_char,
    start_point: *const c_char,
    commit_id_out: *mut *mut c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let user = user_from(user)?;
        let branch = arg_str(branch, "branch")?;
        let start = arg_str(start_point, "start_point")?;
        let b = block_on(c.create_branch(&repo, &user, branch.as_bytes(), start.as_bytes()))?;
        if !commit_id_out.is_null() {
            let id = b.target_commit.map(|c| c.id).unwrap_or_default();
            // SAFETY: checked non-NULL.
            unsafe { *commit_id_out = c_string(id.as_bytes()).into_raw() };
        }
        Ok(())
    })
}

/// Delete `branch` as `user`, if it points at `expected_old_oid` (NULL: wherever it points).
#[no_mangle]
pub unsafe extern "C" fn gitrpc_delete_branch(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    user: *const gitrpc_user,
    branch: *const c_char,
    expected_old_oid: *const c_char,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let user = user_from(user)?;
        let branch = arg_str(branch, "branch")?;
        let expected = opt_str(expected_old_oid, "expected_old_oid")?;
        block_on(c.delete_branch(&repo, &user, branch.as_bytes(), expected))?;
        Ok(())
    })
}

/// Merge `commit_id` into `branch` as `user` with `message` (Gitaly's two phases in one
/// call). With `apply` the branch moves (if it still points at `expected_old_oid`, NULL: its
/// value when the merge started) and `*out` describes the update; without, nothing is
/// written and `out`'s commit id is the merge commit that would have been made. A conflict
/// is `FAILED_PRECONDITION` with its paths on the error. `*out` is freed with
/// `gitrpc_branch_update_free`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_merge(
    client: *const gitrpc_client,
    storage: *const c_char,
    relative_path: *const c_char,
    user: *const gitrpc_user,
    branch: *const c_char,
    commit_id: *const c_char,
    message: *const c_char,
    expected_old_oid: *const c_char,
    apply: bool,
    out: *mut *mut gitrpc_branch_update,
) -> *mut gitrpc_error {
    guard(|| {
        let (c, repo) = target(client, storage, relative_path)?;
        let m = MergeBranch {
            user: user_from(user)?,
            branch: arg_str(branch, "branch")?.as_bytes().to_vec(),
            commit_id: arg_str(commit_id, "commit_id")?.to_string(),
            message: arg_str(message, "message")?.as_bytes().to_vec(),
            expected_old_oid: opt_str(expected_old_oid, "expected_old_oid")?.map(str::to_string),
            ..Default::default()
        };
        arg_ptr(out, "out")?;
        let u = block_on(async {
            let p = c.merge_branch(&repo, &m).await?;
            match apply {
                true => p.apply().await,
                false => {
                    let id = p.commit_id().to_string();
                    p.abort().await;
                    Ok(BranchUpdate {
                        commit_id: id,
                        ..Default::default()
                    })
                }
            }
        })?;
        // SAFETY: checked non-NULL.
        unsafe { *out = update_to_c(u) };
        Ok(())
    })
}

/// The commit the branch points to now (for a merge without `apply`: the merge commit).
/// Belongs to `update`.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_branch_update_commit_id(
    update: *const gitrpc_branch_update,
) -> *const c_char {
    quietly(c"".as_ptr(), || {
        // SAFETY: NULL or a live update from this library.
        unsafe { update.as_ref() }.map_or(c"".as_ptr(), |u| u.commit_id.as_ptr())
    })
}

/// The repository had no branch before.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_branch_update_repo_created(
    update: *const gitrpc_branch_update,
) -> bool {
    // SAFETY: NULL or a live update from this library.
    quietly(false, || {
        unsafe { update.as_ref() }.is_some_and(|u| u.repo_created)
    })
}

/// The branch did not exist before.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_branch_update_branch_created(
    update: *const gitrpc_branch_update,
) -> bool {
    // SAFETY: NULL or a live update from this library.
    quietly(false, || {
        unsafe { update.as_ref() }.is_some_and(|u| u.branch_created)
    })
}

/// Free a branch update. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gitrpc_branch_update_free(update: *mut gitrpc_branch_update) {
    quietly((), || {
        if !update.is_null() {
            // SAFETY: from `update_to_c`, freed once.
            drop(unsafe { Box::from_raw(update) });
        }
    })
}

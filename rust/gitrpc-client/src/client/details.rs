//! The structured detail of an error status (`grpc-status-details-bin`), as OperationService
//! sends them: each RPC wraps its detail in its own `User...Error` message; [`decode`] looks
//! through the wrapper, so callers (and the C and Ruby adapters) match one enum.

use prost::Message;
use tonic::Status;

use crate::gitaly::*;

/// A hook's refusal, a conflict, a failed ref update... (see [`decode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Conflicting paths (merge, cherry-pick, revert, squash, rebase) and, where known, the
    /// two commits.
    MergeConflict {
        files: Vec<Vec<u8>>,
        commit_ids: Vec<String>,
    },
    /// A hook refused: `kind` is `pre-receive`, `update` or `post-receive`.
    CustomHook {
        kind: &'static str,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// A refusal worded as an access check (cherry-pick's hook refusals).
    AccessCheck {
        message: String,
    },
    ReferenceUpdate {
        reference: Vec<u8>,
        old_oid: String,
        new_oid: String,
    },
    ReferenceExists {
        reference: Vec<u8>,
        oid: String,
    },
    /// A file action of UserCommitFiles could not be applied (`kind`: Gitaly's
    /// `IndexError.ErrorType`, e.g. `FILE_EXISTS`).
    IndexUpdate {
        path: Vec<u8>,
        kind: &'static str,
    },
    NotAncestor {
        parent: Vec<u8>,
        child: Vec<u8>,
    },
    ChangesAlreadyApplied,
    ResolveRevision {
        revision: Vec<u8>,
    },
}

#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

fn hook(h: CustomHookError) -> Detail {
    use custom_hook_error::HookType;
    let kind = match HookType::try_from(h.hook_type) {
        Ok(HookType::Update) => "update",
        Ok(HookType::Postreceive) => "post-receive",
        _ => "pre-receive",
    };
    Detail::CustomHook {
        kind,
        stdout: h.stdout,
        stderr: h.stderr,
    }
}

fn conflict(c: MergeConflictError) -> Detail {
    Detail::MergeConflict {
        files: c.conflicting_files,
        commit_ids: c.conflicting_commit_ids,
    }
}

fn update(u: ReferenceUpdateError) -> Detail {
    Detail::ReferenceUpdate {
        reference: u.reference_name,
        old_oid: u.old_oid,
        new_oid: u.new_oid,
    }
}

fn access(a: AccessCheckError) -> Detail {
    Detail::AccessCheck {
        message: a.error_message,
    }
}

fn not_ancestor(n: NotAncestorError) -> Detail {
    Detail::NotAncestor {
        parent: n.parent_revision,
        child: n.child_revision,
    }
}

fn index(i: IndexError) -> Detail {
    let kind = index_error::ErrorType::try_from(i.error_type)
        .map(|t| t.as_str_name().trim_start_matches("ERROR_TYPE_"))
        .unwrap_or("UNSPECIFIED");
    Detail::IndexUpdate { path: i.path, kind }
}

/// The detail of `status`, if it carries one we know.
pub fn decode(status: &Status) -> Option<Detail> {
    let st = RpcStatus::decode(status.details()).ok()?;
    st.details.iter().find_map(|any| {
        let name = any.type_url.rsplit('/').next()?;
        let v = any.value.as_slice();
        Some(match name {
            "gitaly.UserCreateBranchError" => match UserCreateBranchError::decode(v).ok()?.error? {
                user_create_branch_error::Error::CustomHook(h) => hook(h),
            },
            "gitaly.UserDeleteBranchError" => match UserDeleteBranchError::decode(v).ok()?.error? {
                user_delete_branch_error::Error::AccessCheck(a) => access(a),
                user_delete_branch_error::Error::ReferenceUpdate(u) => update(u),
                user_delete_branch_error::Error::CustomHook(h) => hook(h),
            },
            "gitaly.UserCreateTagError" => match UserCreateTagError::decode(v).ok()?.error? {
                user_create_tag_error::Error::AccessCheck(a) => access(a),
                user_create_tag_error::Error::ReferenceUpdate(u) => update(u),
                user_create_tag_error::Error::CustomHook(h) => hook(h),
                user_create_tag_error::Error::ReferenceExists(r) => Detail::ReferenceExists {
                    reference: r.reference_name,
                    oid: r.oid,
                },
            },
            "gitaly.UserMergeBranchError" => match UserMergeBranchError::decode(v).ok()?.error? {
                user_merge_branch_error::Error::AccessCheck(a) => access(a),
                user_merge_branch_error::Error::ReferenceUpdate(u) => update(u),
                user_merge_branch_error::Error::CustomHook(h) => hook(h),
                user_merge_branch_error::Error::MergeConflict(c) => conflict(c),
            },
            "gitaly.UserFFBranchError" => match UserFfBranchError::decode(v).ok()?.error? {
                user_ff_branch_error::Error::CustomHook(h) => hook(h),
                user_ff_branch_error::Error::ReferenceUpdate(u) => update(u),
            },
            "gitaly.UserCherryPickError" => match UserCherryPickError::decode(v).ok()?.error? {
                user_cherry_pick_error::Error::CherryPickConflict(c) => conflict(c),
                user_cherry_pick_error::Error::TargetBranchDiverged(n) => not_ancestor(n),
                user_cherry_pick_error::Error::ChangesAlreadyApplied(_) => {
                    Detail::ChangesAlreadyApplied
                }
                user_cherry_pick_error::Error::AccessCheck(a) => access(a),
            },
            "gitaly.UserRevertError" => match UserRevertError::decode(v).ok()?.error? {
                user_revert_error::Error::MergeConflict(c) => conflict(c),
                user_revert_error::Error::ChangesAlreadyApplied(_) => Detail::ChangesAlreadyApplied,
                user_revert_error::Error::CustomHook(h) => hook(h),
                user_revert_error::Error::NotAncestor(n) => not_ancestor(n),
            },
            "gitaly.UserCommitFilesError" => match UserCommitFilesError::decode(v).ok()?.error? {
                user_commit_files_error::Error::AccessCheck(a) => access(a),
                user_commit_files_error::Error::IndexUpdate(i) => index(i),
                user_commit_files_error::Error::CustomHook(h) => hook(h),
            },
            "gitaly.UserSquashError" => match UserSquashError::decode(v).ok()?.error? {
                user_squash_error::Error::ResolveRevision(r) => Detail::ResolveRevision {
                    revision: r.revision,
                },
                user_squash_error::Error::RebaseConflict(c) => conflict(c),
            },
            _ => return None,
        })
    })
}

/// Was the change refused by a hook (any of Gitaly's three shapes)?
pub fn is_hook_refusal(status: &Status) -> bool {
    matches!(
        decode(status),
        Some(Detail::CustomHook { .. } | Detail::AccessCheck { .. })
    ) || (status.code() == tonic::Code::PermissionDenied && status.details().is_empty())
}

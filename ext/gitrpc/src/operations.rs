//! Native methods of `GitRPC::Native::Client` behind `lib/gitrpc/repository/operations.rb`
//! (OperationService), and `GitRPC::Native::MergeProposal`, the open first phase of a merge.
//!
//! Arguments come positionally from `lib/`: a user as `[gl_id, gl_username, name, email,
//! timezone]`, file actions as `[type, path, previous_path, content, executable]` (content
//! nil for MOVE: keep it), options as a Hash with symbol keys. Answers are the structs of
//! `lib/gitrpc/types.rb`, built here.

use std::sync::Mutex;

use gitrpc_client::gitaly::{
    Repository, User, UserMergeToRefRequest, UserRebaseToRefRequest, UserSquashRequest,
};
use gitrpc_client::runtime::Owned;
use gitrpc_client::{
    BranchUpdate, CommitFiles, FileAction, MergeBranch, MergeProposal, PickRevert,
};
use magnus::value::Lazy;
use magnus::{
    method, prelude::*, DataTypeFunctions, Error, RArray, RClass, RHash, RModule, RString, Ruby,
    Symbol, TryConvert, TypedData, Value,
};

use crate::blocking::block_on;
use crate::client::NativeClient;
use crate::convert::{self, class};
use crate::errors::OrRaise;

static BRANCH_UPDATE: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "BranchUpdate"));
static TAG: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "Tag"));

fn bytes(s: RString) -> Vec<u8> {
    // SAFETY: copied before any Ruby code can run.
    unsafe { s.as_slice() }.to_vec()
}

fn arg_error(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), msg.into())
}

fn user(ruby: &Ruby, a: RArray) -> Result<User, Error> {
    if a.len() != 5 {
        return Err(arg_error(
            ruby,
            "user must be [gl_id, gl_username, name, email, timezone]",
        ));
    }
    let s = |i: isize| -> Result<Vec<u8>, Error> {
        Ok(a.entry::<Option<RString>>(i)?
            .map(bytes)
            .unwrap_or_default())
    };
    let text = |i: isize| -> Result<String, Error> {
        String::from_utf8(s(i)?).map_err(|_| arg_error(ruby, "user fields must be UTF-8"))
    };
    Ok(User {
        gl_id: text(0)?,
        gl_username: text(1)?,
        name: s(2)?,
        email: s(3)?,
        timezone: text(4)?,
    })
}

/// An optional value of the options Hash.
fn opt<T: TryConvert>(ruby: &Ruby, h: RHash, key: &str) -> Result<Option<T>, Error> {
    h.lookup::<_, Option<T>>(ruby.to_symbol(key))
}

fn opt_bytes(ruby: &Ruby, h: RHash, key: &str) -> Result<Option<Vec<u8>>, Error> {
    Ok(opt::<RString>(ruby, h, key)?.map(bytes))
}

fn timestamp(ruby: &Ruby, h: RHash) -> Result<Option<prost_types::Timestamp>, Error> {
    Ok(opt::<i64>(ruby, h, "timestamp")?
        .map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }))
}

/// `start_repository: [storage, relative_path]`.
fn start_repository(ruby: &Ruby, h: RHash) -> Result<Option<Repository>, Error> {
    opt::<RArray>(ruby, h, "start_repository")?
        .map(|a| -> Result<Repository, Error> {
            let storage: String = a.entry(0)?;
            let path: String = a.entry(1)?;
            Ok(gitrpc_client::client::repository(&storage, &path))
        })
        .transpose()
}

fn action(ruby: &Ruby, a: RArray) -> Result<FileAction, Error> {
    let kind: Symbol = a.entry(0)?;
    let path = bytes(a.entry(1)?);
    let prev: Option<RString> = a.entry(2)?;
    let content: Option<RString> = a.entry(3)?;
    let executable: bool = a.entry(4)?;
    let content_or_empty = || content.map(bytes).unwrap_or_default();
    Ok(match kind.name()?.as_ref() {
        "create" => FileAction::Create {
            path,
            content: content_or_empty(),
            executable,
        },
        "create_dir" => FileAction::CreateDir { path },
        "update" => FileAction::Update {
            path,
            content: content_or_empty(),
        },
        "move" => FileAction::Move {
            from: prev
                .map(bytes)
                .ok_or_else(|| arg_error(ruby, "move needs previous_path:"))?,
            to: path,
            content: content.map(bytes),
        },
        "delete" => FileAction::Delete { path },
        "chmod" => FileAction::Chmod { path, executable },
        other => return Err(arg_error(ruby, format!("unknown action {other:?}"))),
    })
}

fn branch_update(ruby: &Ruby, u: BranchUpdate) -> Result<Value, Error> {
    ruby.get_inner(&BRANCH_UPDATE).new_instance((
        ruby.str_new(&u.commit_id),
        u.repo_created,
        u.branch_created,
    ))
}

impl NativeClient {
    fn commit_files(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u, branch, message): (String, String, RArray, RString, RString),
        actions: RArray,
        o: RHash,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        let req = CommitFiles {
            user: user(ruby, u)?,
            branch: bytes(branch),
            message: bytes(message),
            actions: (0..actions.len() as isize)
                .map(|i| action(ruby, actions.entry::<RArray>(i)?))
                .collect::<Result<_, _>>()?,
            start_branch: opt_bytes(ruby, o, "start_branch")?,
            start_sha: opt(ruby, o, "start_sha")?,
            start_repository: start_repository(ruby, o)?,
            expected_old_oid: opt(ruby, o, "expected_old_oid")?,
            force: opt(ruby, o, "force")?.unwrap_or(false),
            author_name: opt_bytes(ruby, o, "author_name")?,
            author_email: opt_bytes(ruby, o, "author_email")?,
            timestamp: timestamp(ruby, o)?,
        };
        let u = rb_self.run(ruby, |c| async move { c.commit_files(&repo, &req).await })?;
        branch_update(ruby, u)
    }

    fn create_branch(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u): (String, String, RArray),
        name: RString,
        start: RString,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        let (user, name, start) = (user(ruby, u)?, bytes(name), bytes(start));
        let b = rb_self.run(ruby, |c| async move {
            c.create_branch(&repo, &user, &name, &start).await
        })?;
        let full = [&b"refs/heads/"[..], &b.name].concat();
        convert::branch(ruby, &gitrpc_client::gitaly::Branch { name: full, ..b })
    }

    fn update_branch(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u): (String, String, RArray),
        name: RString,
        newrev: String,
        oldrev: String,
    ) -> Result<(), Error> {
        let repo = rb_self.repo(&storage, &path);
        let (user, name) = (user(ruby, u)?, bytes(name));
        rb_self.run(ruby, |c| async move {
            c.update_branch(&repo, &user, &name, &newrev, &oldrev).await
        })
    }

    fn delete_ref(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u): (String, String, RArray),
        kind: Symbol,
        name: RString,
        expected: Option<String>,
    ) -> Result<(), Error> {
        let repo = rb_self.repo(&storage, &path);
        let (user, name) = (user(ruby, u)?, bytes(name));
        let tag = kind.name()?.as_ref() == "tag";
        rb_self.run(ruby, |c| async move {
            match tag {
                true => c.delete_tag(&repo, &user, &name, expected.as_deref()).await,
                false => {
                    c.delete_branch(&repo, &user, &name, expected.as_deref())
                        .await
                }
            }
        })
    }

    fn create_tag(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u): (String, String, RArray),
        name: RString,
        target: RString,
        message: Option<RString>,
        time: Option<i64>,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        let (user, name, target, message) = (
            user(ruby, u)?,
            bytes(name),
            bytes(target),
            message.map(bytes),
        );
        let ts = time.map(|seconds| prost_types::Timestamp { seconds, nanos: 0 });
        let t = rb_self.run(ruby, |c| async move {
            c.create_tag(&repo, &user, &name, &target, message.as_deref(), ts)
                .await
        })?;
        let target_id = t
            .target_commit
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_else(|| t.id.clone());
        ruby.get_inner(&TAG).new_instance((
            convert::text(ruby, &t.name),
            ruby.str_new(&t.id),
            ruby.str_new(&target_id),
            convert::binary(ruby, &t.message),
        ))
    }

    fn pick_revert(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u): (String, String, RArray),
        kind: Symbol,
        (commit_id, branch, message): (String, RString, RString),
        o: RHash,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        let author = match (
            opt_bytes(ruby, o, "author_name")?,
            opt_bytes(ruby, o, "author_email")?,
        ) {
            (Some(n), Some(e)) => Some((n, e)),
            _ => None,
        };
        let p = PickRevert {
            user: user(ruby, u)?,
            commit_id,
            branch: bytes(branch),
            message: bytes(message),
            start_branch: opt_bytes(ruby, o, "start_branch")?,
            start_repository: start_repository(ruby, o)?,
            dry_run: opt(ruby, o, "dry_run")?.unwrap_or(false),
            expected_old_oid: opt(ruby, o, "expected_old_oid")?,
            author,
            timestamp: timestamp(ruby, o)?,
        };
        let pick = kind.name()?.as_ref() == "cherry_pick";
        let u = rb_self.run(ruby, |c| async move {
            match pick {
                true => c.cherry_pick(&repo, &p).await,
                false => c.revert(&repo, &p).await,
            }
        })?;
        branch_update(ruby, u)
    }

    fn ff_branch(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u): (String, String, RArray),
        branch: RString,
        commit_id: String,
        expected: Option<String>,
    ) -> Result<Value, Error> {
        let repo = rb_self.repo(&storage, &path);
        let (user, branch) = (user(ruby, u)?, bytes(branch));
        let u = rb_self.run(ruby, |c| async move {
            c.ff_branch(&repo, &user, &branch, &commit_id, expected.as_deref())
                .await
        })?;
        branch_update(ruby, u)
    }

    /// `squash`, `merge_to_ref`, `rebase_to_ref`: a new commit's id.
    fn write_commit(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u): (String, String, RArray),
        kind: Symbol,
        (source, first, target): (String, RString, RString),
        o: RHash,
    ) -> Result<String, Error> {
        let repo = rb_self.repo(&storage, &path);
        let user = user(ruby, u)?;
        let message = opt_bytes(ruby, o, "message")?.unwrap_or_default();
        let ts = timestamp(ruby, o)?;
        let expected: String = opt(ruby, o, "expected_old_oid")?.unwrap_or_default();
        match kind.name()?.as_ref() {
            "squash" => {
                let author = match opt::<RArray>(ruby, o, "author")? {
                    Some(a) => self::user(ruby, a)?,
                    None => user.clone(),
                };
                let req = UserSquashRequest {
                    user: Some(user),
                    author: Some(author),
                    start_sha: source,
                    end_sha: String::from_utf8_lossy(&bytes(first)).into_owned(),
                    commit_message: message,
                    timestamp: ts,
                    ..Default::default()
                };
                rb_self.run(ruby, |c| async move { c.squash(&repo, req).await })
            }
            "merge_to_ref" => {
                let req = UserMergeToRefRequest {
                    user: Some(user),
                    source_sha: source,
                    first_parent_ref: bytes(first),
                    target_ref: bytes(target),
                    message,
                    timestamp: ts,
                    expected_old_oid: expected,
                    ..Default::default()
                };
                rb_self.run(ruby, |c| async move { c.merge_to_ref(&repo, req).await })
            }
            _ => {
                let req = UserRebaseToRefRequest {
                    user: Some(user),
                    source_sha: source,
                    first_parent_ref: bytes(first),
                    target_ref: bytes(target),
                    timestamp: ts,
                    expected_old_oid: expected,
                    ..Default::default()
                };
                rb_self.run(ruby, |c| async move { c.rebase_to_ref(&repo, req).await })
            }
        }
    }

    /// The first phase of a merge: a `Native::MergeProposal` holding the open call.
    fn merge_start(
        ruby: &Ruby,
        rb_self: &Self,
        (storage, path, u): (String, String, RArray),
        (commit_id, branch, message): (String, RString, RString),
        o: RHash,
    ) -> Result<NativeMergeProposal, Error> {
        let repo = rb_self.repo(&storage, &path);
        let m = MergeBranch {
            user: user(ruby, u)?,
            branch: bytes(branch),
            commit_id,
            message: bytes(message),
            expected_old_oid: opt(ruby, o, "expected_old_oid")?,
            squash: opt(ruby, o, "squash")?.unwrap_or(false),
            timestamp: timestamp(ruby, o)?,
        };
        let p = rb_self.run(ruby, |c| async move { c.merge_branch(&repo, &m).await })?;
        Ok(NativeMergeProposal {
            commit_id: p.commit_id().to_string(),
            proposal: Mutex::new(Some(Owned::new(p))),
        })
    }
}

/// `GitRPC::Native::MergeProposal`: a merge commit computed by the server, not yet in the
/// repository. `apply` moves the branch; `abort` (or garbage collection) drops it.
#[derive(TypedData)]
#[magnus(class = "GitRPC::Native::MergeProposal", free_immediately, size)]
pub struct NativeMergeProposal {
    commit_id: String,
    /// The open call, dropped inside the runtime (`Owned`), left alone after fork.
    proposal: Mutex<Option<Owned<MergeProposal>>>,
}

impl DataTypeFunctions for NativeMergeProposal {}

impl NativeMergeProposal {
    fn commit_id(&self) -> String {
        self.commit_id.clone()
    }

    fn take(&self, ruby: &Ruby) -> Result<MergeProposal, Error> {
        let taken = self
            .proposal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match taken.map(Owned::into_inner) {
            Some(Ok(p)) => Ok(p),
            Some(Err(_)) => Err(crate::errors::rpc(
                ruby,
                tonic::Status::unavailable("merge proposal was made before fork()"),
            )),
            None => Err(arg_error(ruby, "merge proposal already applied or aborted")),
        }
    }

    fn apply(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let p = rb_self.take(ruby)?;
        let u = block_on(ruby, p.apply())?.or_raise(ruby)?;
        branch_update(ruby, u)
    }

    fn abort(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        let p = rb_self.take(ruby)?;
        block_on(ruby, p.abort())?;
        Ok(())
    }
}

pub fn init(ruby: &Ruby, client: RClass, native: RModule) -> Result<(), Error> {
    client.define_method("commit_files", method!(NativeClient::commit_files, 3))?;
    client.define_method("create_branch", method!(NativeClient::create_branch, 3))?;
    client.define_method("update_branch", method!(NativeClient::update_branch, 4))?;
    client.define_method("delete_ref", method!(NativeClient::delete_ref, 4))?;
    client.define_method("create_tag", method!(NativeClient::create_tag, 5))?;
    client.define_method("pick_revert", method!(NativeClient::pick_revert, 4))?;
    client.define_method("ff_branch", method!(NativeClient::ff_branch, 4))?;
    client.define_method("write_commit", method!(NativeClient::write_commit, 4))?;
    client.define_method("merge_start", method!(NativeClient::merge_start, 3))?;
    let p = native.define_class("MergeProposal", ruby.class_object())?;
    p.undef_default_alloc_func();
    p.define_method("commit_id", method!(NativeMergeProposal::commit_id, 0))?;
    p.define_method("apply", method!(NativeMergeProposal::apply, 0))?;
    p.define_method("abort", method!(NativeMergeProposal::abort, 0))?;
    Ok(())
}

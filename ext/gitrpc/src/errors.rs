//! gRPC statuses become `GitRPC::RPCError` subclasses, chosen by `GitRPC::RPCError.from_status`
//! (lib/gitrpc/error.rb), so the code → class table lives in Ruby.

use magnus::value::Lazy;
use magnus::{prelude::*, Error, Exception, RArray, RClass, RModule, Ruby, Value};
use tonic::Status;

static RPC_ERROR: Lazy<RClass> = Lazy::new(|ruby| {
    let gitrpc: RModule = ruby
        .class_object()
        .const_get("GitRPC")
        .expect("GitRPC is defined before the extension loads");
    gitrpc
        .const_get("RPCError")
        .expect("lib/gitrpc/error.rb defines GitRPC::RPCError")
});

/// The structured detail of a status as a frozen Hash (`{type: :merge_conflict,
/// conflicting_paths: [...], ...}`), or nil.
fn detail(ruby: &Ruby, status: &Status) -> Result<Value, Error> {
    use gitrpc_client::Detail as D;
    let Some(d) = gitrpc_client::details::decode(status) else {
        return Ok(ruby.qnil().as_value());
    };
    let h = ruby.hash_new();
    let sym = |s: &str| ruby.to_symbol(s);
    let bin = |b: &[u8]| crate::convert::binary(ruby, b);
    let set = |k: &str, v: Value| h.aset(sym(k), v);
    let kind = match d {
        D::MergeConflict { files, commit_ids } => {
            let paths = RArray::from_iter(files.iter().map(|f| bin(f)));
            paths.freeze();
            let ids = RArray::from_iter(commit_ids.iter().map(|c| ruby.str_new(c)));
            ids.freeze();
            set("conflicting_paths", paths.as_value())?;
            set("conflicting_commit_ids", ids.as_value())?;
            "merge_conflict"
        }
        D::CustomHook {
            kind,
            stdout,
            stderr,
        } => {
            set("hook_type", sym(&kind.replace('-', "_")).as_value())?;
            set("stdout", bin(&stdout).as_value())?;
            set("stderr", bin(&stderr).as_value())?;
            "custom_hook"
        }
        D::AccessCheck { message } => {
            set("message", ruby.str_new(&message).as_value())?;
            "access_check"
        }
        D::ReferenceUpdate {
            reference,
            old_oid,
            new_oid,
        } => {
            set("reference", bin(&reference).as_value())?;
            set("old_oid", ruby.str_new(&old_oid).as_value())?;
            set("new_oid", ruby.str_new(&new_oid).as_value())?;
            "reference_update"
        }
        D::ReferenceExists { reference, oid } => {
            set("reference", bin(&reference).as_value())?;
            set("oid", ruby.str_new(&oid).as_value())?;
            "reference_exists"
        }
        D::IndexUpdate { path, kind } => {
            set("path", bin(&path).as_value())?;
            set("error_type", sym(&kind.to_ascii_lowercase()).as_value())?;
            "index_update"
        }
        D::NotAncestor { parent, child } => {
            set("parent_revision", bin(&parent).as_value())?;
            set("child_revision", bin(&child).as_value())?;
            "not_ancestor"
        }
        D::ChangesAlreadyApplied => "changes_already_applied",
        D::ResolveRevision { revision } => {
            set("revision", bin(&revision).as_value())?;
            "resolve_revision"
        }
    };
    set("type", sym(kind).as_value())?;
    h.freeze();
    Ok(h.as_value())
}

/// The Ruby exception for a gRPC status (with its structured detail, if any).
pub fn rpc(ruby: &Ruby, status: Status) -> Error {
    let status = gitrpc_client::described(status);
    let class = ruby.get_inner(&RPC_ERROR);
    let detail = match detail(ruby, &status) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let built: Result<Exception, Error> = class.funcall(
        "from_status",
        (status.code() as i32, status.message(), detail),
    );
    match built {
        Ok(e) => Error::from(e),
        Err(e) => e,
    }
}

/// A status as a `Result` for `?`.
pub trait OrRaise<T> {
    fn or_raise(self, ruby: &Ruby) -> Result<T, Error>;
}

impl<T> OrRaise<T> for Result<T, Status> {
    fn or_raise(self, ruby: &Ruby) -> Result<T, Error> {
        self.map_err(|s| rpc(ruby, s))
    }
}

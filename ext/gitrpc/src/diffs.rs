//! Native methods of `GitRPC::Native::Client` behind `lib/gitrpc/repository/diffs.rb`:
//! CommitDiff (a stream of `GitRPC::Diff`) and FindChangedPaths (step 11, WP-A).
//!
//! Methods are `impl NativeClient` blocks here, calling through `NativeClient::run` (streams:
//! `crate::stream::NativeStream` of `Item::Other`), registered by `init`; struct classes are
//! looked up with `convert::class`.

use gitrpc_client::client::{repository, CommitDiffOptions, Diff};
use gitrpc_client::gitaly::changed_paths::Status as ChangeStatus;
use gitrpc_client::gitaly::commit_diff_request::WhitespaceChanges;
use magnus::typed_data::Obj;
use magnus::value::{Lazy, ReprValue};
use magnus::{method, prelude::*, Error, RArray, RClass, RHash, RString, Ruby, TryConvert, Value};

use crate::client::NativeClient;
use crate::convert;
use crate::stream::{IntoRuby, Item, NativeStream};

static DIFF: Lazy<RClass> = Lazy::new(|ruby| convert::class(ruby, "Diff"));
static CHANGED_PATH: Lazy<RClass> = Lazy::new(|ruby| convert::class(ruby, "ChangedPath"));

/// `opts[key]` (a Symbol key), `None` if absent or nil.
fn opt<T: TryConvert>(ruby: &Ruby, opts: RHash, key: &str) -> Result<Option<T>, Error> {
    opts.lookup::<_, Option<T>>(ruby.to_symbol(key))
}

fn bytes(s: RString) -> Vec<u8> {
    // SAFETY: copied at once, with the GVL held and no Ruby code in between.
    unsafe { s.as_slice() }.to_vec()
}

/// `GitRPC::Diff(from_path, to_path, from_id, to_id, old_mode, new_mode, binary, patch,
/// overflow, collapsed, too_large, lines_added, lines_removed)`.
struct DiffItem(Diff);

impl IntoRuby for DiffItem {
    fn into_ruby(self: Box<Self>, ruby: &Ruby) -> Result<Value, Error> {
        let d = self.0;
        let fields: [Value; 13] = [
            convert::text(ruby, &d.from_path).as_value(),
            convert::text(ruby, &d.to_path).as_value(),
            ruby.str_new(&d.from_id).as_value(),
            ruby.str_new(&d.to_id).as_value(),
            ruby.integer_from_i64(d.old_mode.into()).as_value(),
            ruby.integer_from_i64(d.new_mode.into()).as_value(),
            ruby.into_value(d.binary),
            convert::binary(ruby, &d.patch).as_value(),
            ruby.into_value(d.overflow_marker),
            ruby.into_value(d.collapsed),
            ruby.into_value(d.too_large),
            ruby.integer_from_i64(d.lines_added.into()).as_value(),
            ruby.integer_from_i64(d.lines_removed.into()).as_value(),
        ];
        ruby.get_inner(&DIFF).new_instance(fields)
    }
}

fn status_name(s: i32) -> &'static str {
    match ChangeStatus::try_from(s) {
        Ok(ChangeStatus::Added) => "added",
        Ok(ChangeStatus::Modified) => "modified",
        Ok(ChangeStatus::Deleted) => "deleted",
        Ok(ChangeStatus::TypeChange) => "type_change",
        Ok(ChangeStatus::Copied) => "copied",
        Ok(ChangeStatus::Renamed) => "renamed",
        Err(_) => "unknown",
    }
}

impl NativeClient {
    /// `commit_diff(storage, path, left, right, opts)`: a stream of `GitRPC::Diff`. `opts`
    /// (built by lib/, Symbol keys, Integers or booleans): paths, the limits of
    /// `CommitDiffOptions` by name, whitespace (:ignore / :ignore_all), word_diff.
    fn commit_diff(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        storage: String,
        path: String,
        left: String,
        right: String,
        opts: RHash,
    ) -> Result<NativeStream, Error> {
        let repo = repository(&storage, &path);
        let mut paths = Vec::new();
        if let Some(list) = opt::<RArray>(ruby, opts, "paths")? {
            for i in 0..list.len() {
                paths.push(bytes(list.entry::<RString>(i as isize)?));
            }
        }
        let int = |k: &str| -> Result<i32, Error> { Ok(opt(ruby, opts, k)?.unwrap_or(0)) };
        let flag = |k: &str| -> Result<bool, Error> { Ok(opt(ruby, opts, k)?.unwrap_or(false)) };
        let mut ext = std::collections::HashMap::new();
        if let Some(h) = opt::<RHash>(ruby, opts, "max_patch_bytes_for_file_extension")? {
            h.foreach(|k: String, v: i32| {
                ext.insert(k, v);
                Ok(magnus::r_hash::ForEach::Continue)
            })?;
        }
        let whitespace = match opt::<String>(ruby, opts, "whitespace")?.as_deref() {
            None => WhitespaceChanges::Unspecified,
            Some("ignore") => WhitespaceChanges::Ignore,
            Some("ignore_all") => WhitespaceChanges::IgnoreAll,
            Some(other) => {
                return Err(Error::new(
                    ruby.exception_arg_error(),
                    format!("whitespace must be nil, :ignore or :ignore_all, not {other}"),
                ))
            }
        };
        let options = CommitDiffOptions {
            paths,
            collapse_diffs: flag("collapse_diffs")?,
            enforce_limits: flag("enforce_limits")?,
            collect_all_paths: flag("collect_all_paths")?,
            max_files: int("max_files")?,
            max_lines: int("max_lines")?,
            max_bytes: int("max_bytes")?,
            safe_max_files: int("safe_max_files")?,
            safe_max_lines: int("safe_max_lines")?,
            safe_max_bytes: int("safe_max_bytes")?,
            max_patch_bytes: int("max_patch_bytes")?,
            max_patch_bytes_for_file_extension: ext,
            word_diff: flag("word_diff")?,
            whitespace,
        };
        let stream = rb_self.run(ruby, |c| async move {
            use futures::StreamExt;
            Ok(c.commit_diff(&repo, &left, &right, options)
                .await?
                .map(|r| r.map(|d| Item::Other(Box::new(DiffItem(d)))))
                .boxed())
        })?;
        Ok(NativeStream::new(rb_self.as_value(), stream))
    }

    /// `changed_paths(storage, path, commits, trees, find_renames)`: Array of
    /// `GitRPC::ChangedPath(status, path, old_path, old_mode, new_mode, old_id, new_id,
    /// commit_id)`; `trees` is an Array of `[left, right]`.
    fn changed_paths(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        commits: Vec<String>,
        trees: Vec<(String, String)>,
        find_renames: bool,
    ) -> Result<RArray, Error> {
        let repo = repository(&storage, &path);
        let paths = rb_self.run(ruby, |c| async move {
            let commits: Vec<&str> = commits.iter().map(String::as_str).collect();
            let trees: Vec<(&str, &str)> = trees
                .iter()
                .map(|(l, r)| (l.as_str(), r.as_str()))
                .collect();
            c.find_changed_paths(&repo, &commits, &trees, find_renames, &[])
                .await
        })?;
        let out = ruby.ary_new_capa(paths.len());
        for p in &paths {
            let old_path = match p.old_path.is_empty() {
                true => ruby.qnil().as_value(),
                false => convert::text(ruby, &p.old_path).as_value(),
            };
            let fields: [Value; 8] = [
                ruby.to_symbol(status_name(p.status)).as_value(),
                convert::text(ruby, &p.path).as_value(),
                old_path,
                ruby.integer_from_i64(p.old_mode.into()).as_value(),
                ruby.integer_from_i64(p.new_mode.into()).as_value(),
                ruby.str_new(&p.old_blob_id).as_value(),
                ruby.str_new(&p.new_blob_id).as_value(),
                ruby.str_new(&p.commit_id).as_value(),
            ];
            out.push(ruby.get_inner(&CHANGED_PATH).new_instance(fields)?)?;
        }
        Ok(out)
    }
}

pub fn init(_ruby: &Ruby, client: RClass) -> Result<(), Error> {
    client.define_method("commit_diff", method!(NativeClient::commit_diff, 5))?;
    client.define_method("changed_paths", method!(NativeClient::changed_paths, 5))?;
    Ok(())
}

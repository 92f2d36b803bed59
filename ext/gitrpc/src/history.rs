//! Native methods of `GitRPC::Native::Client` behind `lib/gitrpc/repository/history.rb`:
//! the CommitService history reads: a directory's entries and their last commits,
//! FindCommits, RawBlame, CountDivergingCommits, CommitStats (step 11, WP-B).
//!
//! Methods are `impl NativeClient` blocks here, calling through `NativeClient::run` (streams:
//! `crate::stream::NativeStream`), registered by `init`; struct classes are looked up with
//! `convert::class`.

use gitrpc_client::client::{repository, FindCommitsOptions};
use gitrpc_client::gitaly::{tree_entry::EntryType, TreeEntry};
use magnus::typed_data::Obj;
use magnus::value::{Lazy, ReprValue};
use magnus::{method, prelude::*, Error, RArray, RClass, RHash, RString, Ruby, TryConvert, Value};

use crate::client::NativeClient;
use crate::convert;
use crate::stream::{Item, NativeStream};

static TREE_ENTRY: Lazy<RClass> = Lazy::new(|ruby| convert::class(ruby, "TreeEntry"));
static LAST_COMMIT: Lazy<RClass> = Lazy::new(|ruby| convert::class(ruby, "LastCommit"));
static COMMIT_STATS: Lazy<RClass> = Lazy::new(|ruby| convert::class(ruby, "CommitStats"));

/// A String's bytes (copied before any Ruby code can run).
fn bytes(s: RString) -> Vec<u8> {
    // SAFETY: copied at once, with the GVL held and no Ruby code in between.
    unsafe { s.as_slice() }.to_vec()
}

/// `opts[key]` (a Symbol key), `None` if absent or nil.
fn opt<T: TryConvert>(ruby: &Ruby, opts: RHash, key: &str) -> Result<Option<T>, Error> {
    opts.lookup::<_, Option<T>>(ruby.to_symbol(key))
}

fn flag(ruby: &Ruby, opts: RHash, key: &str) -> Result<bool, Error> {
    Ok(opt::<bool>(ruby, opts, key)?.unwrap_or(false))
}

fn opt_bytes(ruby: &Ruby, opts: RHash, key: &str) -> Result<Vec<u8>, Error> {
    Ok(opt::<RString>(ruby, opts, key)?
        .map(bytes)
        .unwrap_or_default())
}

/// `GitRPC::TreeEntry(type, id, mode, nil, nil, path, nil)` of a directory listing.
fn listed_entry(ruby: &Ruby, e: &TreeEntry) -> Result<Value, Error> {
    let kind = match e.r#type() {
        EntryType::Tree => "tree",
        EntryType::Commit => "commit",
        EntryType::Blob => "blob",
    };
    let nil = ruby.qnil();
    ruby.get_inner(&TREE_ENTRY).new_instance((
        ruby.to_symbol(kind),
        ruby.str_new(&e.oid),
        e.mode,
        nil,
        nil,
        convert::text(ruby, &e.path),
        nil,
    ))
}

impl NativeClient {
    /// `tree_entries(storage, path, revision, dir)`: Array of `GitRPC::TreeEntry`, or nil if
    /// the revision or the directory does not exist.
    fn tree_entries(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        revision: RString,
        dir: RString,
    ) -> Result<Option<RArray>, Error> {
        let repo = repository(&storage, &path);
        let (rev, dir) = (bytes(revision), bytes(dir));
        let entries = rb_self.run(ruby, |c| async move {
            match c.tree_entries(&repo, &rev, &dir).await {
                Ok(entries) => Ok(Some(entries)),
                // GetTreeEntries' (and Gitaly's) answer for a missing revision or path.
                Err(s)
                    if s.code() == tonic::Code::InvalidArgument
                        && s.message() == "invalid revision or path" =>
                {
                    Ok(None)
                }
                Err(s) => Err(s),
            }
        })?;
        let Some(entries) = entries else {
            return Ok(None);
        };
        let out = ruby.ary_new_capa(entries.len());
        for e in &entries {
            out.push(listed_entry(ruby, e)?)?;
        }
        Ok(Some(out))
    }

    /// `last_commits_for_tree(storage, path, revision, dir, offset, limit)`: Array of
    /// `GitRPC::LastCommit(path, commit)` (pathspecs are literal).
    #[allow(clippy::too_many_arguments)] // the Ruby method's arguments, as magnus passes them
    fn last_commits_for_tree(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        revision: String,
        dir: RString,
        offset: i32,
        limit: i32,
    ) -> Result<RArray, Error> {
        let repo = repository(&storage, &path);
        let dir = bytes(dir);
        let items = rb_self.run(ruby, |c| async move {
            use futures::TryStreamExt;
            c.list_last_commits_for_tree(&repo, &revision, &dir, offset, limit, true)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })?;
        let out = ruby.ary_new_capa(items.len());
        for (p, commit) in &items {
            out.push(
                ruby.get_inner(&LAST_COMMIT)
                    .new_instance((convert::text(ruby, p), convert::commit(ruby, commit)?))?,
            )?;
        }
        Ok(out)
    }

    /// `find_commits(storage, path, opts)`: a stream of `GitRPC::Commit`. `opts` (built by
    /// lib/, Symbol keys): revision, paths, limit, offset, follow, skip_merges, author,
    /// message, before, after (epoch seconds), topo, all, first_parent.
    fn find_commits(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        storage: String,
        path: String,
        opts: RHash,
    ) -> Result<NativeStream, Error> {
        let repo = repository(&storage, &path);
        let mut paths = Vec::new();
        if let Some(list) = opt::<RArray>(ruby, opts, "paths")? {
            for i in 0..list.len() {
                paths.push(bytes(list.entry::<RString>(i as isize)?));
            }
        }
        let options = FindCommitsOptions {
            revision: opt_bytes(ruby, opts, "revision")?,
            paths,
            limit: opt(ruby, opts, "limit")?.unwrap_or(0),
            offset: opt(ruby, opts, "offset")?.unwrap_or(0),
            follow: flag(ruby, opts, "follow")?,
            skip_merges: flag(ruby, opts, "skip_merges")?,
            author: opt_bytes(ruby, opts, "author")?,
            message_regex: opt(ruby, opts, "message")?.unwrap_or_default(),
            before: opt(ruby, opts, "before")?,
            after: opt(ruby, opts, "after")?,
            all: flag(ruby, opts, "all")?,
            first_parent: flag(ruby, opts, "first_parent")?,
            topo_order: flag(ruby, opts, "topo")?,
            literal_pathspecs: true,
            ..Default::default()
        };
        let stream = rb_self.run(ruby, |c| async move {
            use futures::StreamExt;
            Ok(c.find_commits(&repo, options)
                .await?
                .map(|r| r.map(|c| Item::Commit(Box::new(c))))
                .boxed())
        })?;
        Ok(NativeStream::new(rb_self.as_value(), stream))
    }

    /// `raw_blame(storage, path, revision, file, range_or_nil)`: the porcelain output, one
    /// binary String.
    fn raw_blame(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        revision: RString,
        file: RString,
        range: Option<String>,
    ) -> Result<RString, Error> {
        let repo = repository(&storage, &path);
        let (rev, file) = (bytes(revision), bytes(file));
        let out = rb_self.run(ruby, |c| async move {
            use futures::TryStreamExt;
            let pieces: Vec<Vec<u8>> = c
                .raw_blame(&repo, &rev, &file, range.as_deref())
                .await?
                .try_collect()
                .await?;
            Ok(pieces.concat())
        })?;
        Ok(convert::binary(ruby, &out))
    }

    /// `diverging_count(storage, path, from, to, max_count)`: `[left, right]`.
    fn diverging_count(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        from: RString,
        to: RString,
        max_count: i32,
    ) -> Result<(i32, i32), Error> {
        let repo = repository(&storage, &path);
        let (from, to) = (bytes(from), bytes(to));
        rb_self.run(ruby, |c| async move {
            c.count_diverging_commits(&repo, &from, &to, max_count)
                .await
        })
    }

    /// `commit_stats(storage, path, revision)`: `GitRPC::CommitStats(id, additions,
    /// deletions, files)`.
    fn commit_stats(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        revision: RString,
    ) -> Result<Value, Error> {
        let repo = repository(&storage, &path);
        let rev = bytes(revision);
        let s = rb_self.run(ruby, |c| async move { c.commit_stats(&repo, &rev).await })?;
        ruby.get_inner(&COMMIT_STATS).new_instance((
            ruby.str_new(&s.oid),
            s.additions,
            s.deletions,
            s.files,
        ))
    }
}

pub fn init(_ruby: &Ruby, client: RClass) -> Result<(), Error> {
    client.define_method("tree_entries", method!(NativeClient::tree_entries, 4))?;
    client.define_method(
        "last_commits_for_tree",
        method!(NativeClient::last_commits_for_tree, 6),
    )?;
    client.define_method("find_commits", method!(NativeClient::find_commits, 3))?;
    client.define_method("raw_blame", method!(NativeClient::raw_blame, 5))?;
    client.define_method("diverging_count", method!(NativeClient::diverging_count, 5))?;
    client.define_method("commit_stats", method!(NativeClient::commit_stats, 3))?;
    Ok(())
}

//! Native methods of `GitRPC::Native::Client` behind `lib/gitrpc/repository/files.rb`:
//! GetArchive, file search, FindLicense, branches and tags containing a commit
//! (step 11, WP-C).
//!
//! Methods are `impl NativeClient` blocks here, calling through `NativeClient::run` (streams:
//! `crate::stream::NativeStream` of `Item::Other`), registered by `init`; struct classes are
//! looked up with `convert::class`.

use gitrpc_client::gitaly::get_archive_request::Format;
use gitrpc_client::ArchiveOptions;
use magnus::typed_data::Obj;
use magnus::value::{Lazy, ReprValue};
use magnus::{method, prelude::*, Error, RArray, RClass, RHash, RString, Ruby, TryConvert, Value};

use crate::client::NativeClient;
use crate::convert;
use crate::stream::{Item, NativeStream};

// --- archive, search_files, branches/tags containing ---

static CONTENT_MATCH: Lazy<RClass> = Lazy::new(|ruby| convert::class(ruby, "ContentMatch"));

/// A String's bytes (copied before any Ruby code can run).
fn str_bytes(s: RString) -> Vec<u8> {
    // SAFETY: copied at once, with the GVL held and no Ruby code in between.
    unsafe { s.as_slice() }.to_vec()
}

/// `opts[key]` (a Symbol key), `None` if absent or nil.
fn opt_value<T: TryConvert>(ruby: &Ruby, opts: RHash, key: &str) -> Result<Option<T>, Error> {
    opts.lookup::<_, Option<T>>(ruby.to_symbol(key))
}

/// The format names `lib/` passes (its Symbols as Strings).
fn archive_format(ruby: &Ruby, name: &str) -> Result<Format, Error> {
    match name {
        "tar" => Ok(Format::Tar),
        "tar_gz" => Ok(Format::TarGz),
        "tar_bz2" => Ok(Format::TarBz2),
        "zip" => Ok(Format::Zip),
        other => Err(Error::new(
            ruby.exception_arg_error(),
            format!("format must be :tar, :tar_gz, :tar_bz2 or :zip, not {other}"),
        )),
    }
}

/// One line `git grep --null --line-number` prints: `<revision>:<path>\0<n>\0<text>\n`
/// (`<revision>/<path>` when the revision names a tree by path: `main:dir`). `None` for
/// anything else.
fn grep_line<'a>(revision: &[u8], line: &'a [u8]) -> Option<(&'a [u8], u64, &'a [u8])> {
    let nul = line.iter().position(|&b| b == 0)?;
    let (head, rest) = (&line[..nul], &line[nul + 1..]);
    let path = match head.strip_prefix(revision) {
        Some([b':' | b'/', path @ ..]) => path,
        _ => &head[head.iter().position(|&b| b == b':')? + 1..],
    };
    let nul = rest.iter().position(|&b| b == 0)?;
    let number = std::str::from_utf8(&rest[..nul]).ok()?.parse().ok()?;
    let text = &rest[nul + 1..];
    Some((path, number, text.strip_suffix(b"\n").unwrap_or(text)))
}

/// `GitRPC::ContentMatch(path, line_number, data, lines)` of one match block (the matching
/// lines and two lines of context around them, in one file): `line_number` is its first
/// line's, `data` its text, `lines` `[[number, text], ...]`.
fn content_match(ruby: &Ruby, revision: &[u8], block: &[u8]) -> Result<Value, Error> {
    let mut path: Option<&[u8]> = None;
    let mut first = 0u64;
    let mut data = Vec::with_capacity(block.len());
    let lines = ruby.ary_new();
    for raw in block.split_inclusive(|&b| b == b'\n') {
        let Some((p, n, text)) = grep_line(revision, raw) else {
            continue; // nothing else comes out of `git grep --null`
        };
        if path.is_none() {
            path = Some(p);
            first = n;
        }
        data.extend_from_slice(text);
        data.push(b'\n');
        lines.push((n, convert::text(ruby, text)))?;
    }
    ruby.get_inner(&CONTENT_MATCH).new_instance((
        convert::text(ruby, path.unwrap_or_default()),
        first,
        convert::text(ruby, &data),
        lines,
    ))
}

fn names(ruby: &Ruby, names: &[Vec<u8>]) -> Result<RArray, Error> {
    let out = ruby.ary_new_capa(names.len());
    for n in names {
        out.push(convert::text(ruby, n))?;
    }
    Ok(out)
}

impl NativeClient {
    /// `archive(storage, path, revision, opts)`: a stream of binary Strings, the archive's
    /// pieces as the server sends them. `opts` (built by lib/, Symbol keys): format ("tar",
    /// "tar_gz", "tar_bz2", "zip"), prefix, path, exclude (Array of Strings), elide_path.
    fn archive(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        storage: String,
        path: String,
        revision: String,
        opts: RHash,
    ) -> Result<NativeStream, Error> {
        let repo = rb_self.repo(&storage, &path);
        let format = opt_value::<String>(ruby, opts, "format")?.unwrap_or_default();
        let mut options = ArchiveOptions::new(revision, archive_format(ruby, &format)?);
        options.prefix = opt_value::<String>(ruby, opts, "prefix")?.unwrap_or_default();
        options.path = opt_value::<RString>(ruby, opts, "path")?
            .map(str_bytes)
            .unwrap_or_default();
        if let Some(list) = opt_value::<RArray>(ruby, opts, "exclude")? {
            for i in 0..list.len() {
                options
                    .exclude
                    .push(str_bytes(list.entry::<RString>(i as isize)?));
            }
        }
        options.elide_path = opt_value::<bool>(ruby, opts, "elide_path")?.unwrap_or(false);
        let stream = rb_self.run(ruby, |c| async move {
            use futures::StreamExt;
            Ok(c.get_archive(&repo, options)
                .await?
                .map(|r| r.map(Item::Bytes))
                .boxed())
        })?;
        Ok(NativeStream::new(rb_self.as_value(), stream))
    }

    /// `search_files_by_name(storage, path, revision, opts)`: Array of paths. `opts` (Symbol
    /// keys): query (a pathspec, "." for all), filter (a regex, "" for none), offset, limit
    /// (0: all).
    fn search_files_by_name(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        revision: RString,
        opts: RHash,
    ) -> Result<RArray, Error> {
        let repo = rb_self.repo(&storage, &path);
        let revision = str_bytes(revision);
        let query = opt_value::<String>(ruby, opts, "query")?.unwrap_or_default();
        let filter = opt_value::<String>(ruby, opts, "filter")?.unwrap_or_default();
        let offset = opt_value::<u32>(ruby, opts, "offset")?.unwrap_or(0);
        let limit = opt_value::<u32>(ruby, opts, "limit")?.unwrap_or(0);
        let found = rb_self.run(ruby, |c| async move {
            c.search_files_by_name(&repo, &revision, &query, &filter, offset, limit)
                .await
        })?;
        names(ruby, &found)
    }

    /// `search_files_by_content(storage, path, revision, query)`: Array of
    /// `GitRPC::ContentMatch`, one per match block.
    fn search_files_by_content(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        revision: RString,
        query: String,
    ) -> Result<RArray, Error> {
        let repo = rb_self.repo(&storage, &path);
        let revision = str_bytes(revision);
        let rev = revision.clone();
        let blocks = rb_self.run(ruby, |c| async move {
            c.search_files_by_content(&repo, &rev, &query).await
        })?;
        let out = ruby.ary_new_capa(blocks.len());
        for b in &blocks {
            out.push(content_match(ruby, &revision, b)?)?;
        }
        Ok(out)
    }

    /// `branch_names_containing(storage, path, commit_id, limit)`: Array of branch names.
    fn branch_names_containing(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        commit_id: String,
        limit: u32,
    ) -> Result<RArray, Error> {
        let repo = rb_self.repo(&storage, &path);
        let found = rb_self.run(ruby, |c| async move {
            c.branch_names_containing(&repo, &commit_id, limit).await
        })?;
        names(ruby, &found)
    }

    /// `tag_names_containing(storage, path, commit_id, limit)`: Array of tag names.
    fn tag_names_containing(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
        commit_id: String,
        limit: u32,
    ) -> Result<RArray, Error> {
        let repo = rb_self.repo(&storage, &path);
        let found = rb_self.run(ruby, |c| async move {
            c.tag_names_containing(&repo, &commit_id, limit).await
        })?;
        names(ruby, &found)
    }
}

/// The methods of archive, search_files, branches_containing and tags_containing.
fn init_archive_search_containing(client: RClass) -> Result<(), Error> {
    client.define_method("archive", method!(NativeClient::archive, 4))?;
    client.define_method(
        "search_files_by_name",
        method!(NativeClient::search_files_by_name, 4),
    )?;
    client.define_method(
        "search_files_by_content",
        method!(NativeClient::search_files_by_content, 4),
    )?;
    client.define_method(
        "branch_names_containing",
        method!(NativeClient::branch_names_containing, 4),
    )?;
    client.define_method(
        "tag_names_containing",
        method!(NativeClient::tag_names_containing, 4),
    )?;
    Ok(())
}

// --- end of archive, search_files, branches/tags containing ---

// FindLicense: `repo.license`.

static LICENSE: Lazy<RClass> = Lazy::new(|ruby| convert::class(ruby, "License"));

impl NativeClient {
    /// `find_license(storage, path)`: `GitRPC::License(short_name, name, url, path,
    /// nickname)`, or nil if the tree HEAD points to has no license file (or there is no
    /// HEAD).
    fn find_license(
        ruby: &Ruby,
        rb_self: &Self,
        storage: String,
        path: String,
    ) -> Result<Option<Value>, Error> {
        let repo = rb_self.repo(&storage, &path);
        let found = rb_self.run(ruby, |c| async move { c.find_license(&repo).await })?;
        let Some(l) = found else {
            return Ok(None);
        };
        let license = ruby.get_inner(&LICENSE).new_instance((
            ruby.str_new(&l.license_short_name),
            ruby.str_new(&l.license_name),
            ruby.str_new(&l.license_url),
            ruby.str_new(&l.license_path),
            ruby.str_new(&l.license_nickname),
        ))?;
        Ok(Some(license))
    }
}

pub fn init(_ruby: &Ruby, client: RClass) -> Result<(), Error> {
    init_archive_search_containing(client)?;
    client.define_method("find_license", method!(NativeClient::find_license, 2))?;
    Ok(())
}

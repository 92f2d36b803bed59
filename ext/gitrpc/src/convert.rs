//! Rust values → the Ruby objects `lib/gitrpc/types.rb` declares (`GitRPC::Commit`,
//! `Signature`, `Branch`, `Blob`, `TreeEntry`, `HookEvent`, `User`, `RefChange`), built here so that
//! `lib/` never unpacks positional arrays. Each class is looked up once (a `Lazy` static,
//! which Ruby keeps pinned).

use gitrpc_client::gitaly::{Branch, CommitAuthor, GitCommit};
use gitrpc_client::{Blob, TreeEntry};
use gitrpc_server::HookEvent;
use magnus::time::{Offset, Timespec};
use magnus::value::{Lazy, ReprValue};
use magnus::{prelude::*, Error, RArray, RClass, RModule, RString, Ruby, Value};

/// `GitRPC::<name>`, for a `Lazy` static (area files declare their own: `diffs.rs`...).
pub(crate) fn class(ruby: &Ruby, name: &str) -> RClass {
    let gitrpc: RModule = ruby
        .class_object()
        .const_get("GitRPC")
        .expect("GitRPC is defined before the extension loads");
    gitrpc
        .const_get(name)
        .unwrap_or_else(|_| panic!("lib/gitrpc/types.rb defines GitRPC::{name}"))
}

static COMMIT: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "Commit"));
static SIGNATURE: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "Signature"));
static BRANCH: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "Branch"));
static BLOB: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "Blob"));
static TREE_ENTRY: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "TreeEntry"));
static REF_CHANGE: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "RefChange"));
static HOOK_EVENT: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "HookEvent"));
static USER: Lazy<RClass> = Lazy::new(|ruby| class(ruby, "User"));

/// UTF-8 text if the bytes are valid UTF-8, else a binary string (git does not promise an
/// encoding for names and messages).
pub fn text(ruby: &Ruby, bytes: &[u8]) -> RString {
    match std::str::from_utf8(bytes) {
        Ok(s) => ruby.str_new(s),
        Err(_) => ruby.str_from_slice(bytes),
    }
}

/// Binary (ASCII-8BIT) string.
pub fn binary(ruby: &Ruby, bytes: &[u8]) -> RString {
    ruby.str_from_slice(bytes)
}

/// nil or the value.
pub fn opt(ruby: &Ruby, v: Option<Value>) -> Value {
    v.unwrap_or_else(|| ruby.qnil().as_value())
}

/// Seconds east of UTC for a git timezone like "+0130" (0 if it is not one).
fn utc_offset(tz: &[u8]) -> i32 {
    fn parse(tz: &[u8]) -> Option<i32> {
        let (sign, hhmm) = match tz {
            [b'+', rest @ ..] => (1, rest),
            [b'-', rest @ ..] => (-1, rest),
            _ => return None,
        };
        if hhmm.len() != 4 || !hhmm.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = |b: &[u8]| b.iter().fold(0, |acc, d| acc * 10 + i32::from(d - b'0'));
        Some(sign * (n(&hhmm[..2]) * 3600 + n(&hhmm[2..]) * 60))
    }
    parse(tz).unwrap_or(0)
}

/// `GitRPC::Signature(name, email, time, timezone)`, `time` in the signature's own offset;
/// nil if there is none.
fn signature(ruby: &Ruby, a: Option<&CommitAuthor>) -> Result<Value, Error> {
    let Some(a) = a else {
        return Ok(ruby.qnil().as_value());
    };
    let secs = a.date.as_ref().map_or(0, |d| d.seconds);
    let offset = Offset::from_secs(utc_offset(&a.timezone)).unwrap_or_else(|_| Offset::utc());
    let time = ruby.time_timespec_new(
        Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        offset,
    )?;
    ruby.get_inner(&SIGNATURE).new_instance((
        text(ruby, &a.name),
        text(ruby, &a.email),
        time,
        text(ruby, &a.timezone),
    ))
}

/// `GitRPC::Commit(id, subject, body, author, committer, parent_ids, tree_id)`.
pub fn commit(ruby: &Ruby, c: &GitCommit) -> Result<Value, Error> {
    let parents = ruby.ary_from_iter(c.parent_ids.iter().map(|p| ruby.str_new(p)));
    ruby.get_inner(&COMMIT).new_instance((
        ruby.str_new(&c.id),
        text(ruby, &c.subject),
        text(ruby, &c.body),
        signature(ruby, c.author.as_ref())?,
        signature(ruby, c.committer.as_ref())?,
        parents,
        ruby.str_new(&c.tree_id),
    ))
}

/// `GitRPC::Branch(name, target_id)`.
pub fn branch(ruby: &Ruby, b: &Branch) -> Result<Value, Error> {
    let target = opt(
        ruby,
        b.target_commit
            .as_ref()
            .map(|t| ruby.str_new(&t.id).as_value()),
    );
    ruby.get_inner(&BRANCH)
        .new_instance((text(ruby, &b.name), target))
}

/// `GitRPC::Blob(id, size, data)`.
pub fn blob(ruby: &Ruby, b: &Blob) -> Result<Value, Error> {
    ruby.get_inner(&BLOB)
        .new_instance((ruby.str_new(&b.oid), b.size, binary(ruby, &b.data)))
}

/// `GitRPC::TreeEntry(type, id, mode, size, data)`.
pub fn tree_entry(ruby: &Ruby, e: &TreeEntry) -> Result<Value, Error> {
    ruby.get_inner(&TREE_ENTRY).new_instance((
        ruby.to_symbol(e.kind),
        ruby.str_new(&e.oid),
        e.mode,
        e.size,
        binary(ruby, &e.data),
    ))
}

/// `GitRPC::HookEvent(kind, repository, changes, push_options, user, protocol)`, with frozen
/// arrays of `GitRPC::RefChange(old_id, new_id, ref)` and option strings, and a
/// `GitRPC::User`; `repository` is made by the caller (it reads through the quarantine).
pub fn hook_event(ruby: &Ruby, p: &HookEvent, repository: Value) -> Result<Value, Error> {
    let changes = ruby.ary_new_capa(p.changes.len());
    for c in &p.changes {
        changes.push(ruby.get_inner(&REF_CHANGE).new_instance((
            ruby.str_new(&c.old_oid),
            ruby.str_new(&c.new_oid),
            ruby.str_new(&c.reference),
        ))?)?;
    }
    changes.freeze();
    let options = RArray::from_iter(p.push_options.iter().map(|o| ruby.str_new(o)));
    options.freeze();
    let u = &p.user;
    let fields = ruby.hash_new();
    fields.aset(ruby.to_symbol("gl_id"), ruby.str_new(&u.gl_id))?;
    fields.aset(ruby.to_symbol("gl_username"), ruby.str_new(&u.gl_username))?;
    fields.aset(ruby.to_symbol("name"), text(ruby, &u.name))?;
    fields.aset(ruby.to_symbol("email"), text(ruby, &u.email))?;
    fields.aset(ruby.to_symbol("timezone"), ruby.str_new(&u.timezone))?;
    let gl_repository = &p.repository.gl_repository;
    fields.aset(
        ruby.to_symbol("gl_repository"),
        opt(
            ruby,
            (!gl_repository.is_empty()).then(|| ruby.str_new(gl_repository).as_value()),
        ),
    )?;
    let user: Value = ruby
        .get_inner(&USER)
        .new_instance((magnus::KwArgs(fields),))?;
    let kind = p.kind.as_str().replace('-', "_");
    ruby.get_inner(&HOOK_EVENT).new_instance((
        ruby.to_symbol(kind),
        repository,
        changes,
        options,
        user,
        ruby.str_new(p.protocol.as_str()),
    ))
}

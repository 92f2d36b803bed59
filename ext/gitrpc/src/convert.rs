//! Protobuf values → plain Ruby values (strings, integers, arrays). `lib/gitrpc/types.rb`
//! turns the arrays into `GitRPC::Commit` and friends.

use gitrpc_client::gitaly::{CommitAuthor, GitCommit};
use magnus::{IntoValue, RArray, RString, Ruby, Value};

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

/// `[name, email, seconds, timezone]` or nil.
fn signature(ruby: &Ruby, a: &Option<CommitAuthor>) -> Value {
    match a {
        None => ruby.qnil().as_value(),
        Some(a) => {
            let arr = ruby.ary_new_capa(4);
            let secs = a.date.as_ref().map_or(0, |d| d.seconds);
            let _ = arr.push(text(ruby, &a.name));
            let _ = arr.push(text(ruby, &a.email));
            let _ = arr.push(secs);
            let _ = arr.push(text(ruby, &a.timezone));
            arr.as_value()
        }
    }
}

/// `[id, subject, body, author, committer, parent_ids, tree_id]`.
pub fn commit(ruby: &Ruby, c: &GitCommit) -> RArray {
    let arr = ruby.ary_new_capa(7);
    let parents = ruby.ary_from_iter(c.parent_ids.iter().map(|p| ruby.str_new(p)));
    let _ = arr.push(ruby.str_new(&c.id));
    let _ = arr.push(text(ruby, &c.subject));
    let _ = arr.push(text(ruby, &c.body));
    let _ = arr.push(signature(ruby, &c.author));
    let _ = arr.push(signature(ruby, &c.committer));
    let _ = arr.push(parents);
    let _ = arr.push(ruby.str_new(&c.tree_id));
    arr
}

pub fn opt<T: IntoValue>(ruby: &Ruby, v: Option<T>) -> Value {
    match v {
        Some(v) => v.into_value_with(ruby),
        None => ruby.qnil().as_value(),
    }
}

use magnus::value::ReprValue as _;

//! `gitrpc_native`: the Ruby extension under `lib/gitrpc`. One file per Ruby class; the Ruby
//! API (keyword arguments, struct classes, errors) lives in `lib/`, this side converts types
//! (building those structs, [`convert`]; a config Hash into a `Config`, [`config`]) and blocks
//! without the GVL.
//!
//! Rules kept throughout (see README "Ruby"):
//! - Every Ruby VALUE a Rust object holds is marked movable and updated by a `compact`
//!   callback ([`gc`]); class lookups that outlive a call are `magnus::value::Lazy` statics,
//!   which Ruby pins as registered mark objects.
//! - Waiting happens with the GVL released and an unblock function that cancels the wait
//!   ([`blocking`]); no VALUE is touched off the GVL or on a tokio thread.
//! - Rust state tied to a tokio runtime is `gitrpc_client::runtime::Owned` (servers:
//!   `gitrpc_client::embedded::Embedded`): dropped inside the runtime, left alone after
//!   `fork`, and a new runtime is built lazily in the child.

use magnus::{prelude::*, Error, Ruby};

mod blocking;
mod client;
mod config;
mod convert;
mod diffs;
mod errors;
mod files;
mod gc;
mod history;
mod operations;
mod server;
mod smart_http;
mod stream;

#[magnus::init(name = "gitrpc_native")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let gitrpc = ruby.define_module("GitRPC")?;
    let native = gitrpc.define_module("Native")?;
    let client = client::init(ruby, native)?;
    diffs::init(ruby, client)?;
    history::init(ruby, client)?;
    files::init(ruby, client)?;
    operations::init(ruby, client, native)?;
    server::init(ruby, native)?;
    stream::init(ruby, native)?;
    smart_http::init(ruby, native)?;
    Ok(())
}

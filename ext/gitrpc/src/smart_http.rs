//! `GitRPC::Native::SmartHTTP` and `GitRPC::Native::HTTPCall`, under `GitRPC::SmartHTTP`
//! (lib/gitrpc/smart_http.rb). Every HTTP decision is `gitrpc_client::smarthttp`'s; this
//! file only turns them into plain arrays:
//!
//! - a reply is `[status, [[name, value], …], body]`;
//! - `route` answers `[:route, "info_refs" | "post", action, storage, relative_path]` or
//!   `[:reply, status, headers, body]`; `check_post` `[:ok, "gzip" | "identity"]` or a reply.
//!
//! An `HTTPCall` is one RPC streaming both ways (`gitrpc_client::smarthttp::Call`): `write`
//! hands a body chunk over (copied, then waiting for room without the GVL), `read` waits for
//! the next response chunk without the GVL, into a buffer the caller reuses (one String per
//! response, not one per chunk: a clone of hundreds of MiB leaves no garbage for Ruby's GC to
//! catch up with). `close` (the Rack body's) drops the call, which cancels the RPC and the
//! server's git.

use std::sync::Mutex;

use bytes::Bytes;
use gitrpc_client::paths::Storages;
use gitrpc_client::runtime::Owned;
use gitrpc_client::smarthttp::{self, Call, Encoding, Endpoint, Reply, Request};
use gitrpc_client::sshcmd::Action;
use gitrpc_client::Identity;
use magnus::rb_sys::AsRawValue;
use magnus::typed_data::Obj;
use magnus::value::ReprValue;
use magnus::{
    function, method, prelude::*, DataTypeFunctions, Error, RArray, RModule, RString, Ruby,
    TypedData, Value,
};
use tonic::Status;

use crate::blocking::block_on;
use crate::client::NativeClient;
use crate::gc::Held;

fn reply(ruby: &Ruby, r: Reply) -> Result<RArray, Error> {
    let headers = ruby.ary_new_capa(r.headers.len());
    for (k, v) in r.headers {
        headers.push(ruby.ary_from_vec(vec![k.to_string(), v]))?;
    }
    let out = ruby.ary_new_capa(3);
    out.push(r.status)?;
    out.push(headers)?;
    out.push(r.body)?;
    Ok(out)
}

fn tagged_reply(ruby: &Ruby, r: Reply) -> Result<RArray, Error> {
    let out = ruby.ary_new_capa(4);
    out.push(ruby.to_symbol("reply"))?;
    for v in reply(ruby, r)? {
        out.push(v)?;
    }
    Ok(out)
}

fn action(ruby: &Ruby, name: &str) -> Result<Action, Error> {
    Action::from_name(name).ok_or_else(|| {
        Error::new(
            ruby.exception_arg_error(),
            format!("unknown action {name:?}"),
        )
    })
}

fn endpoint(ruby: &Ruby, kind: &str, name: &str) -> Result<Endpoint, Error> {
    let a = action(ruby, name)?;
    match kind {
        "info_refs" => Ok(Endpoint::InfoRefs(a)),
        "post" => Ok(Endpoint::Post(a)),
        other => Err(Error::new(
            ruby.exception_arg_error(),
            format!("unknown endpoint {other:?}"),
        )),
    }
}

/// `SmartHTTP.route(method, path_info, query, storage)`.
fn route(
    ruby: &Ruby,
    method: String,
    path_info: String,
    query: String,
    storage: String,
) -> Result<RArray, Error> {
    match smarthttp::route(&method, &path_info, &query, &Storages::single(&storage)) {
        Err(r) => tagged_reply(ruby, r),
        Ok(route) => {
            let (kind, a) = match route.endpoint {
                Endpoint::InfoRefs(a) => ("info_refs", a),
                Endpoint::Post(a) => ("post", a),
            };
            let out = ruby.ary_new_capa(5);
            out.push(ruby.to_symbol("route"))?;
            out.push(kind)?;
            out.push(a.as_str())?;
            out.push(route.storage)?;
            out.push(route.relative_path)?;
            Ok(out)
        }
    }
}

/// `SmartHTTP.check_post(action, content_type, content_encoding)`.
fn check_post(
    ruby: &Ruby,
    name: String,
    content_type: Option<String>,
    content_encoding: Option<String>,
) -> Result<RArray, Error> {
    let a = action(ruby, &name)?;
    match smarthttp::check_post(a, content_type.as_deref(), content_encoding.as_deref()) {
        Err(r) => tagged_reply(ruby, r),
        Ok(e) => {
            let enc = match e {
                Encoding::Gzip => "gzip",
                Encoding::Identity => "identity",
            };
            let out = ruby.ary_new_capa(2);
            out.push(ruby.to_symbol("ok"))?;
            out.push(enc)?;
            Ok(out)
        }
    }
}

/// `SmartHTTP.unauthorized(realm, message)`: 401 with `WWW-Authenticate`.
fn unauthorized(ruby: &Ruby, realm: String, message: String) -> Result<RArray, Error> {
    reply(ruby, Reply::unauthorized(&realm, &message))
}

/// `SmartHTTP.forbidden(action, message)`: 403.
fn forbidden(ruby: &Ruby, name: String, message: String) -> Result<RArray, Error> {
    reply(ruby, Reply::forbidden(action(ruby, &name)?, &message))
}

/// `SmartHTTP.headers(kind, action)`: a successful answer's headers.
fn headers(ruby: &Ruby, kind: String, name: String) -> Result<RArray, Error> {
    let e = endpoint(ruby, &kind, &name)?;
    let out = ruby.ary_new();
    out.push(ruby.ary_from_vec(vec!["Content-Type".to_string(), e.content_type()]))?;
    for (k, v) in smarthttp::NO_CACHE {
        out.push(ruby.ary_from_vec(vec![k, v]))?;
    }
    Ok(out)
}

enum State {
    Ready(Owned<Box<Call>>),
    /// Another thread is using it.
    Busy,
    Closed,
}

#[derive(TypedData)]
#[magnus(
    class = "GitRPC::Native::HTTPCall",
    free_immediately,
    mark,
    compact,
    size
)]
pub struct HTTPCall {
    state: Mutex<State>,
    /// The client the call runs on, kept alive with it.
    client: Held,
}

impl DataTypeFunctions for HTTPCall {
    fn mark(&self, marker: &magnus::gc::Marker) {
        self.client.mark(marker);
    }

    fn compact(&self, compactor: &magnus::gc::Compactor) {
        self.client.compact(compactor);
    }
}

/// What identifies the pusher, in `HTTPCall.start`'s order.
type Who = (String, String, String, String);

impl HTTPCall {
    /// `HTTPCall.start(client, kind, action, storage, relative_path, git_protocol_header,
    /// gzip, [gl_id, username, gl_repository, remote_ip])`.
    #[allow(clippy::too_many_arguments)]
    fn start(
        ruby: &Ruby,
        client: Obj<NativeClient>,
        kind: String,
        name: String,
        storage: String,
        relative_path: String,
        git_protocol: Option<String>,
        gzip: bool,
        who: Who,
    ) -> Result<HTTPCall, Error> {
        let c = client.client(ruby)?;
        let (gl_id, username, gl_repository, remote_ip) = who;
        let req = Request {
            endpoint: endpoint(ruby, &kind, &name)?,
            repository: gitrpc_client::client::repository(&storage, &relative_path),
            git_protocol: smarthttp::git_protocol(git_protocol.as_deref()),
            identity: Identity {
                gl_id,
                username,
                gl_repository,
                remote_ip,
                key_id: String::new(),
            },
            encoding: if gzip {
                Encoding::Gzip
            } else {
                Encoding::Identity
            },
        };
        let rt = gitrpc_client::runtime::get();
        let call = {
            let _inside = rt.enter();
            Call::start(&c, req)
        };
        Ok(HTTPCall {
            state: Mutex::new(State::Ready(Owned::new(Box::new(call)))),
            client: Held::new(client),
        })
    }

    fn take(&self, ruby: &Ruby) -> Result<Option<Owned<Box<Call>>>, Error> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *st, State::Busy) {
            State::Ready(c) if c.is_ours() => Ok(Some(c)),
            State::Ready(c) => {
                *st = State::Ready(c);
                Err(crate::errors::rpc(
                    ruby,
                    Status::unavailable("call was started before fork(); it belongs to the parent"),
                ))
            }
            State::Busy => Err(Error::new(
                ruby.exception_thread_error(),
                "call is being used by another thread",
            )),
            State::Closed => {
                *st = State::Closed;
                Ok(None)
            }
        }
    }

    fn put(&self, call: Owned<Box<Call>>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*st, State::Busy) {
            *st = State::Ready(call);
        }
    }

    /// Run `f` on the call with the GVL released; `None` once closed.
    fn with<T, F>(&self, ruby: &Ruby, f: F) -> Result<Option<T>, Error>
    where
        F: for<'a> FnOnce(&'a mut Call) -> futures::future::BoxFuture<'a, T>,
    {
        let Some(mut owned) = self.take(ruby)? else {
            return Ok(None);
        };
        let Ok(call) = owned.get_mut() else {
            unreachable!("`take` hands out only calls of this process");
        };
        let out = block_on(ruby, f(call));
        self.put(owned);
        out.map(Some)
    }

    /// Hand a body chunk over; `false`: the call takes no more (ask `failure`).
    fn write(ruby: &Ruby, rb_self: &Self, data: RString) -> Result<bool, Error> {
        // SAFETY: copied before any Ruby code can run.
        let bytes = Bytes::copy_from_slice(unsafe { data.as_slice() });
        Ok(rb_self
            .with(ruby, |c| Box::pin(c.write(bytes)))?
            .unwrap_or(false))
    }

    fn close_write(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        rb_self.with(ruby, |c| Box::pin(c.close_write()))?;
        Ok(())
    }

    /// nil if the RPC started well, else the reply for its failure.
    fn failure(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        match rb_self.with(ruby, |c| Box::pin(c.failure()))?.flatten() {
            None => Ok(ruby.qnil().as_value()),
            Some(r) => Ok(reply(ruby, r)?.as_value()),
        }
    }

    /// Put the next response chunk into `buf` (replacing its content, keeping its
    /// capacity); `false` at the end. A failure now raises.
    fn read(ruby: &Ruby, rb_self: &Self, buf: RString) -> Result<bool, Error> {
        buf.modify_expand(0)?; // raises if frozen
        match rb_self.with(ruby, |c| Box::pin(c.read()))?.flatten() {
            None => Ok(false),
            Some(Ok(b)) => {
                // SAFETY: `buf` is modifiable (checked above) and 0 is within its length.
                unsafe { rb_sys::rb_str_set_len(buf.as_raw(), 0) };
                buf.cat(&b);
                Ok(true)
            }
            Some(Err(s)) => {
                rb_self.close();
                Err(crate::errors::rpc(ruby, s))
            }
        }
    }

    /// Drop the call (cancels the RPC if it still runs). Idempotent.
    fn close(&self) {
        let old = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match &*st {
                State::Busy => return, // the thread using it finishes or is interrupted
                _ => std::mem::replace(&mut *st, State::Closed),
            }
        };
        drop(old);
    }
}

/// `HTTPCall.start` with the pusher's identity as one array (magnus takes at most 15
/// arguments, and this keeps the Ruby side readable).
#[allow(clippy::too_many_arguments)]
fn start(
    ruby: &Ruby,
    client: Obj<NativeClient>,
    kind: String,
    name: String,
    storage: String,
    relative_path: String,
    git_protocol: Option<String>,
    gzip: bool,
    who: RArray,
) -> Result<HTTPCall, Error> {
    let who: Vec<Option<String>> = who.to_vec()?;
    let field = |i: usize| who.get(i).cloned().flatten().unwrap_or_default();
    HTTPCall::start(
        ruby,
        client,
        kind,
        name,
        storage,
        relative_path,
        git_protocol,
        gzip,
        (field(0), field(1), field(2), field(3)),
    )
}

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    let m = native.define_module("SmartHTTP")?;
    m.define_singleton_method("route", function!(route, 4))?;
    m.define_singleton_method("check_post", function!(check_post, 3))?;
    m.define_singleton_method("unauthorized", function!(unauthorized, 2))?;
    m.define_singleton_method("forbidden", function!(forbidden, 2))?;
    m.define_singleton_method("headers", function!(headers, 2))?;
    let class = native.define_class("HTTPCall", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("start", function!(start, 8))?;
    class.define_method("write", method!(HTTPCall::write, 1))?;
    class.define_method("close_write", method!(HTTPCall::close_write, 0))?;
    class.define_method("failure", method!(HTTPCall::failure, 0))?;
    class.define_method("read", method!(HTTPCall::read, 1))?;
    class.define_method("close", method!(HTTPCall::close, 0))?;
    Ok(())
}

//! `GitRPC::Native::Stream`: the responses of a server-streaming call, taken in batches by the
//! `Enumerator`s in `lib/gitrpc` (`Repository#list_commits`, `Client#call_stream`). `close`
//! (called by the enumerators' `ensure`) drops the call, which cancels it on the server.

use std::sync::Mutex;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use gitrpc_client::gitaly::GitCommit;
use gitrpc_client::runtime::Owned;
use magnus::{method, prelude::*, DataTypeFunctions, Error, RModule, Ruby, TypedData, Value};
use tonic::Status;

use crate::blocking::block_on;
use crate::convert;
use crate::errors::OrRaise;
use crate::gc::Held;

pub enum Item {
    Commit(Box<GitCommit>),
    Bytes(Vec<u8>),
    /// Anything else, converted by its own code on the Ruby thread (a diff, a blame chunk...):
    /// a new stream needs no new variant here.
    #[allow(dead_code)] // until the first one of diffs.rs, history.rs, files.rs
    Other(Box<dyn IntoRuby>),
}

/// A stream item that builds its Ruby object itself (called with the GVL held).
pub trait IntoRuby: Send {
    fn into_ruby(self: Box<Self>, ruby: &Ruby) -> Result<Value, Error>;
}

type Inner = BoxStream<'static, Result<Item, Status>>;

/// Most items handed to Ruby per `next_batch`.
const BATCH: usize = 256;

enum State {
    /// Dropped inside the runtime (cancelling the call), or left alone after fork.
    Ready(Owned<Inner>),
    /// Another thread is waiting on it.
    Busy,
    /// Items before an error were handed out; the error is raised next.
    Failed(Status),
    Done,
}

#[derive(TypedData)]
#[magnus(
    class = "GitRPC::Native::Stream",
    free_immediately,
    mark,
    compact,
    size
)]
pub struct NativeStream {
    state: Mutex<State>,
    /// The client the call was made on, kept alive while the stream is.
    client: Held,
}

impl DataTypeFunctions for NativeStream {
    fn mark(&self, marker: &magnus::gc::Marker) {
        self.client.mark(marker);
    }

    fn compact(&self, compactor: &magnus::gc::Compactor) {
        self.client.compact(compactor);
    }
}

impl NativeStream {
    pub fn new(client: Value, inner: Inner) -> NativeStream {
        NativeStream {
            state: Mutex::new(State::Ready(Owned::new(inner))),
            client: Held::new(client),
        }
    }

    fn take(&self, ruby: &Ruby) -> Result<Option<Owned<Inner>>, Error> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *st, State::Busy) {
            State::Ready(s) if s.is_ours() => Ok(Some(s)),
            State::Ready(s) => {
                *st = State::Ready(s);
                Err(crate::errors::rpc(
                    ruby,
                    Status::unavailable(
                        "stream was opened before fork(); it belongs to the parent",
                    ),
                ))
            }
            State::Busy => Err(Error::new(
                ruby.exception_thread_error(),
                "stream is being read by another thread",
            )),
            State::Failed(status) => {
                *st = State::Done;
                Err(crate::errors::rpc(ruby, status))
            }
            State::Done => {
                *st = State::Done;
                Ok(None)
            }
        }
    }

    /// The next items (waiting for at least one), or nil at the end.
    fn next_batch(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let Some(mut inner) = rb_self.take(ruby)? else {
            return Ok(ruby.qnil().as_value());
        };
        let Ok(stream) = inner.get_mut() else {
            unreachable!("`take` hands out only streams of this process");
        };
        let got = block_on(ruby, async {
            let mut items = Vec::new();
            match stream.next().await {
                None => return (items, true),
                Some(first) => items.push(first),
            }
            // Whatever else has already arrived, without waiting.
            while items.len() < BATCH {
                if items.last().is_some_and(|i| i.is_err()) {
                    break;
                }
                match stream.next().now_or_never() {
                    Some(Some(item)) => items.push(item),
                    Some(None) => return (items, true),
                    None => break,
                }
            }
            (items, false)
        });
        let (items, ended) = match got {
            Ok(r) => r,
            Err(interrupted) => {
                *rb_self.state.lock().unwrap_or_else(|p| p.into_inner()) = State::Ready(inner);
                return Err(interrupted);
            }
        };
        let mut items = items;
        let error = match items.last() {
            Some(Err(_)) => items.pop().and_then(|i| i.err()),
            _ => None,
        };
        let next = match error {
            Some(e) if items.is_empty() => {
                drop(inner);
                *rb_self.state.lock().unwrap_or_else(|p| p.into_inner()) = State::Done;
                return Err(crate::errors::rpc(ruby, e));
            }
            Some(e) => {
                drop(inner);
                State::Failed(e)
            }
            None if ended => {
                drop(inner);
                State::Done
            }
            None => State::Ready(inner),
        };
        *rb_self.state.lock().unwrap_or_else(|p| p.into_inner()) = next;
        if items.is_empty() {
            return Ok(ruby.qnil().as_value());
        }
        let out = ruby.ary_new_capa(items.len());
        for item in items {
            match item.or_raise(ruby)? {
                Item::Commit(c) => out.push(convert::commit(ruby, &c)?)?,
                Item::Bytes(b) => out.push(convert::binary(ruby, &b))?,
                Item::Other(x) => out.push(x.into_ruby(ruby)?)?,
            }
        }
        Ok(out.as_value())
    }

    /// Stop reading; cancels the call if it is still running. Idempotent.
    fn close(&self) {
        let state = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match &*st {
                State::Busy => return, // the reading thread finishes or is interrupted
                _ => std::mem::replace(&mut *st, State::Done),
            }
        };
        drop(state);
    }

    fn client(ruby: &Ruby, rb_self: &Self) -> Value {
        rb_self.client.get(ruby)
    }
}

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    let class = native.define_class("Stream", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_method("next_batch", method!(NativeStream::next_batch, 0))?;
    class.define_method("close", method!(NativeStream::close, 0))?;
    class.define_method("client", method!(NativeStream::client, 0))?;
    Ok(())
}

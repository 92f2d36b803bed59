//! `GitRPC::Native::Server`: a gitrpc server running inside the Ruby process
//! (`gitrpc_client::embedded::Embedded`, shared with the C API), on the extension's tokio
//! runtime, from a config Hash (see `config.rs`).
//!
//! Hooks as Ruby blocks (pre-receive, update, post-receive): the server's hook closures run
//! on tokio threads, which are not Ruby threads and never touch a VALUE or the GVL: they
//! only queue the event with a reply channel and wait. `run_hooks`, called by `lib/` on the
//! Ruby thread the server owns, waits for the next event with the GVL released
//! (interruptibly: [`block_on`]), calls the block with the GVL held, and sends the verdict
//! back. The blocks are VALUEs held here, marked movable and updated on compaction. After
//! `fork` the child has neither the server nor its thread: `run_hooks` returns at once
//! there, and the parent's queue is left alone.

use std::sync::Mutex;

use gitrpc_client::embedded::Embedded;
use gitrpc_server::{ConfigError, HookEvent, HookFn, HookKind, Hooks, Rejected, StartError};
use magnus::typed_data::Obj;
use magnus::value::ReprValue;
use magnus::{
    function, method, prelude::*, DataTypeFunctions, Error, RArray, RClass, RHash, RModule, Ruby,
    TypedData, Value,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::blocking::block_on;
use crate::client::NativeClient;
use crate::convert;
use crate::errors::{rpc, OrRaise};
use crate::gc::Held;

type Verdict = Result<(), String>;
type HookCall = (HookEvent, oneshot::Sender<Verdict>);

#[derive(TypedData)]
#[magnus(
    class = "GitRPC::Native::Server",
    free_immediately,
    mark,
    compact,
    size
)]
pub struct NativeServer {
    /// Dropped while running (garbage-collected without `stop`): no waiting in the GC;
    /// listeners and calls are aborted, the socket file removed. Left alone after fork.
    embedded: Embedded,
    pid: u32,
    hooks_rx: Mutex<Option<mpsc::Receiver<HookCall>>>,
    stopped: CancellationToken,
    /// The config Hash the server was started from.
    config: Held,
    /// The pre-receive, update and post-receive blocks (`HookKind::ALL` order), each nil or
    /// callable.
    blocks: [Held; 3],
}

impl DataTypeFunctions for NativeServer {
    fn mark(&self, marker: &magnus::gc::Marker) {
        self.config.mark(marker);
        self.blocks.iter().for_each(|b| b.mark(marker));
    }

    fn compact(&self, compactor: &magnus::gc::Compactor) {
        self.config.compact(compactor);
        self.blocks.iter().for_each(|b| b.compact(compactor));
    }
}

fn index(kind: HookKind) -> usize {
    match kind {
        HookKind::PreReceive => 0,
        HookKind::Update => 1,
        HookKind::PostReceive => 2,
    }
}

/// A hook closure that queues its event for the Ruby hook thread and waits for the verdict.
fn queued(tx: &mpsc::Sender<HookCall>) -> HookFn {
    let tx = tx.clone();
    std::sync::Arc::new(move |event| {
        let tx = tx.clone();
        Box::pin(async move {
            let kind = event.kind.as_str();
            let (reply, answer) = oneshot::channel();
            if tx.send((event, reply)).await.is_err() {
                return Err(Rejected(format!("{kind} handler is not running")));
            }
            answer
                .await
                .unwrap_or_else(|_| Err(format!("{kind} handler stopped")))
                .map_err(Rejected)
        })
    })
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        self.stopped.cancel();
    }
}

/// The one place a server that did not start becomes a Ruby exception, by the code
/// `StartError::code` gives: a bad config (`INVALID_ARGUMENT`) is Ruby's own `ArgumentError`
/// (naming the key), anything else the `GitRPC::RPCError` of its code (an address another
/// process listens on: `GitRPC::AlreadyExistsError`; a socket that cannot be bound:
/// `GitRPC::UnavailableError`).
fn start_error(ruby: &Ruby, e: impl Into<StartError>) -> Error {
    let status = Status::from(e.into());
    match status.code() {
        tonic::Code::InvalidArgument => {
            Error::new(ruby.exception_arg_error(), status.message().to_string())
        }
        _ => rpc(ruby, status),
    }
}

fn config(ruby: &Ruby, hash: RHash) -> Result<gitrpc_server::Config, Error> {
    crate::config::from_hash(ruby, hash)?.map_err(|e: ConfigError| start_error(ruby, e))
}

impl NativeServer {
    /// `Native::Server.check_config(hash)`: raises `ArgumentError` if `hash` is not a valid
    /// config (unknown key, wrong type, no storage, ...); starts nothing.
    fn check_config(ruby: &Ruby, hash: RHash) -> Result<(), Error> {
        let config = config(ruby, hash)?;
        config
            .validate()
            .map(drop)
            .map_err(|e| start_error(ruby, e))
    }

    /// `Native::Server.new(config_hash, pre_receive, update, post_receive)` (each block nil
    /// or callable): starts serving.
    fn new(
        ruby: &Ruby,
        hash: RHash,
        pre_receive: Value,
        update: Value,
        post_receive: Value,
    ) -> Result<Self, Error> {
        let config = config(ruby, hash)?;
        let blocks = [pre_receive, update, post_receive];
        for (block, kind) in blocks.iter().zip(HookKind::ALL) {
            if !block.is_nil() && !block.respond_to("call", false)? {
                return Err(Error::new(
                    ruby.exception_type_error(),
                    format!("{} must respond to #call", kind.config_key()),
                ));
            }
        }
        let mut hooks = Hooks::default();
        let mut hooks_rx = None;
        if blocks.iter().any(|b| !b.is_nil()) {
            let (tx, rx) = mpsc::channel::<HookCall>(64);
            hooks_rx = Some(rx);
            let hook = |b: &Value| (!b.is_nil()).then(|| queued(&tx));
            hooks.pre_receive = hook(&pre_receive);
            hooks.update = hook(&update);
            hooks.post_receive = hook(&post_receive);
        }
        let embedded =
            block_on(ruby, Embedded::start(config, hooks))?.map_err(|e| start_error(ruby, e))?;
        Ok(NativeServer {
            embedded,
            pid: std::process::id(),
            hooks_rx: Mutex::new(hooks_rx),
            stopped: CancellationToken::new(),
            config: Held::new(hash),
            blocks: blocks.map(Held::new),
        })
    }

    fn addresses(&self) -> Vec<String> {
        self.embedded.addresses().to_vec()
    }

    fn config(ruby: &Ruby, rb_self: &Self) -> Value {
        rb_self.config.get(ruby)
    }

    /// `[pre_receive, update, post_receive]`, each nil or the block.
    fn hooks(ruby: &Ruby, rb_self: &Self) -> RArray {
        RArray::from_iter(rb_self.blocks.iter().map(|b| b.get(ruby)))
    }

    fn is_running(&self) -> bool {
        self.embedded.is_running()
    }

    /// An in-process client (`timeout` in seconds or nil).
    fn client(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        timeout: Option<f64>,
    ) -> Result<NativeClient, Error> {
        let timeout = NativeClient::timeout_arg(timeout)?;
        let client = rb_self.embedded.client(timeout).or_raise(ruby)?;
        Ok(NativeClient::in_process(ruby, rb_self, client, timeout))
    }

    /// Stop accepting, let running calls finish (up to `graceful_restart_timeout`), cancel
    /// the rest, remove the socket. True if it was running. In a forked child: false, and
    /// the parent's server is left alone.
    fn stop(ruby: &Ruby, rb_self: &Self) -> Result<bool, Error> {
        let Some(stop) = rb_self.embedded.stop() else {
            return Ok(false);
        };
        // The hook thread keeps answering while running pushes finish.
        let out = block_on(ruby, stop);
        rb_self.stopped.cancel();
        out.map(|_| true)
    }

    /// Answer hook calls with the blocks until the server stops. Runs on a Ruby thread
    /// (`lib/gitrpc/server.rb` starts one); returns at once if there is no block, in a forked
    /// child, or if another thread is already answering.
    fn run_hooks(ruby: &Ruby, rb_self: Obj<Self>) -> Result<(), Error> {
        if rb_self.pid != std::process::id() {
            return Ok(());
        }
        let taken = rb_self
            .hooks_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut rx) = taken else {
            return Ok(());
        };
        let result = loop {
            let stopped = rb_self.stopped.clone();
            let next = block_on(ruby, async {
                tokio::select! {
                    call = rx.recv() => call,
                    _ = stopped.cancelled() => None,
                }
            });
            let (change, reply) = match next {
                Err(interrupted) => break Err(interrupted),
                Ok(None) => break Ok(()),
                Ok(Some(call)) => call,
            };
            let kind = change.kind.as_str();
            match Self::call_hook(ruby, rb_self, change) {
                Ok(verdict) => {
                    let _ = reply.send(verdict);
                }
                Err(fatal) => {
                    let _ = reply.send(Err(format!("{kind} handler was interrupted")));
                    break Err(fatal);
                }
            }
        };
        *rb_self.hooks_rx.lock().unwrap_or_else(|p| p.into_inner()) = Some(rx);
        result
    }

    /// The `GitRPC::Repository` a hook event names, read through an in-process client of
    /// this server that sends the event's object directories (the quarantine) with each call.
    fn hook_repository(ruby: &Ruby, rb_self: Obj<Self>, event: &HookEvent) -> Result<Value, Error> {
        let timeout = Some(std::time::Duration::from_secs(30));
        let client = rb_self.embedded.client(timeout).or_raise(ruby)?;
        let r = &event.repository;
        let native = NativeClient::in_process(ruby, rb_self, client, timeout).with_objects(
            r.git_object_directory.clone(),
            r.git_alternate_object_directories.clone(),
        );
        let server: RClass = convert::class(ruby, "Server");
        server.funcall(
            "hook_repository",
            (native, event.storage(), event.relative_path()),
        )
    }

    /// Call the block for `change.kind`. A `StandardError` rejects the change (a
    /// `GitRPC::PushRejected` with its message, others with their class name only);
    /// anything else (Interrupt, kill) is raised.
    fn call_hook(ruby: &Ruby, rb_self: Obj<Self>, change: HookEvent) -> Result<Verdict, Error> {
        let gitrpc: RModule = ruby.class_object().const_get("GitRPC")?;
        let rejected: RClass = gitrpc.const_get("PushRejected")?;
        let kind = change.kind.as_str();
        let block = rb_self.blocks[index(change.kind)].get(ruby);
        if block.is_nil() {
            return Ok(Ok(()));
        }
        let repository = Self::hook_repository(ruby, rb_self, &change)?;
        let event = convert::hook_event(ruby, &change, repository)?;
        match block.funcall::<_, _, Value>("call", (event,)) {
            Ok(v) if v.is_kind_of(ruby.class_false_class()) => {
                Ok(Err(format!("push rejected by {kind} hook")))
            }
            Ok(_) => Ok(Ok(())),
            Err(e) if e.is_kind_of(rejected) => {
                let msg = e
                    .value()
                    .map(|v| v.funcall::<_, _, String>("message", ()))
                    .transpose()?
                    .unwrap_or_default();
                Ok(Err(msg))
            }
            Err(e) if e.is_kind_of(ruby.exception_standard_error()) => {
                let class = e
                    .value()
                    .map(|v| v.class().inspect())
                    .unwrap_or_else(|| "an error".to_string());
                Ok(Err(format!("push rejected: {kind} hook raised {class}")))
            }
            Err(e) => Err(e),
        }
    }
}

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    let class = native.define_class("Server", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("new", function!(NativeServer::new, 4))?;
    class.define_singleton_method("check_config", function!(NativeServer::check_config, 1))?;
    class.define_method("addresses", method!(NativeServer::addresses, 0))?;
    class.define_method("config", method!(NativeServer::config, 0))?;
    class.define_method("hooks", method!(NativeServer::hooks, 0))?;
    class.define_method("running?", method!(NativeServer::is_running, 0))?;
    class.define_method("client", method!(NativeServer::client, 1))?;
    class.define_method("stop", method!(NativeServer::stop, 0))?;
    class.define_method("run_hooks", method!(NativeServer::run_hooks, 0))?;
    Ok(())
}

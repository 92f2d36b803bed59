//! `GitRPC::Native::Server`: a gitrpc server running inside the Ruby process
//! (`gitrpc_client::embedded::Embedded`, shared with the C API), on the extension's tokio
//! runtime, from a config Hash (see `config.rs`).
//!
//! Pre-receive hook as a Ruby block: the server's hook closure (called on a tokio thread)
//! only queues the push and waits for the answer; `run_hooks`, called by `lib/` on a Ruby
//! thread, takes pushes off the queue (without the GVL), calls the block with the GVL and
//! sends the verdict back. The block is a VALUE held here, marked and compacted.

use std::sync::Mutex;

use gitrpc_client::embedded::Embedded;
use gitrpc_server::{ConfigError, Hooks, PreReceive, PreReceiveHook, Rejected, StartError};
use magnus::typed_data::Obj;
use magnus::value::ReprValue;
use magnus::{
    function, method, prelude::*, DataTypeFunctions, Error, RClass, RHash, RModule, Ruby,
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
type HookCall = (PreReceive, oneshot::Sender<Verdict>);

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
    /// The pre-receive block, or nil.
    pre_receive: Held,
}

impl DataTypeFunctions for NativeServer {
    fn mark(&self, marker: &magnus::gc::Marker) {
        self.config.mark(marker);
        self.pre_receive.mark(marker);
    }

    fn compact(&self, compactor: &magnus::gc::Compactor) {
        self.config.compact(compactor);
        self.pre_receive.compact(compactor);
    }
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

    /// `Native::Server.new(config_hash, pre_receive_or_nil)`: starts serving.
    fn new(ruby: &Ruby, hash: RHash, pre_receive: Value) -> Result<Self, Error> {
        let config = config(ruby, hash)?;
        if !pre_receive.is_nil() && !pre_receive.respond_to("call", false)? {
            return Err(Error::new(
                ruby.exception_type_error(),
                "pre_receive must respond to #call",
            ));
        }
        let mut hooks = Hooks::default();
        let mut hooks_rx = None;
        if !pre_receive.is_nil() {
            let (tx, rx) = mpsc::channel::<HookCall>(64);
            hooks_rx = Some(rx);
            let hook: PreReceiveHook = std::sync::Arc::new(move |change| {
                let tx = tx.clone();
                Box::pin(async move {
                    let (reply, answer) = oneshot::channel();
                    if tx.send((change, reply)).await.is_err() {
                        return Err("pre-receive handler is not running".into());
                    }
                    answer
                        .await
                        .unwrap_or_else(|_| Err("pre-receive handler stopped".to_string()))
                        .map_err(Rejected)
                })
            });
            hooks.pre_receive = Some(hook);
        }
        let embedded =
            block_on(ruby, Embedded::start(config, hooks))?.map_err(|e| start_error(ruby, e))?;
        Ok(NativeServer {
            embedded,
            pid: std::process::id(),
            hooks_rx: Mutex::new(hooks_rx),
            stopped: CancellationToken::new(),
            config: Held::new(hash),
            pre_receive: Held::new(pre_receive),
        })
    }

    fn addresses(&self) -> Vec<String> {
        self.embedded.addresses().to_vec()
    }

    fn config(ruby: &Ruby, rb_self: &Self) -> Value {
        rb_self.config.get(ruby)
    }

    fn pre_receive(ruby: &Ruby, rb_self: &Self) -> Value {
        rb_self.pre_receive.get(ruby)
    }

    fn is_running(&self) -> bool {
        self.embedded.is_running()
    }

    /// This server as a route of a routed client (fails after fork or stop).
    pub fn route(&self) -> Result<gitrpc_client::routing::Route, Status> {
        self.embedded.route()
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

    /// Answer pre-receive calls with the block until the server stops. Runs on a Ruby thread
    /// (`lib/gitrpc/server.rb` starts one); returns at once if there is no block, in a forked
    /// child, or if another thread is already answering.
    fn run_hooks(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
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
            match rb_self.call_hook(ruby, change) {
                Ok(verdict) => {
                    let _ = reply.send(verdict);
                }
                Err(fatal) => {
                    let _ = reply.send(Err("pre-receive handler was interrupted".to_string()));
                    break Err(fatal);
                }
            }
        };
        *rb_self.hooks_rx.lock().unwrap_or_else(|p| p.into_inner()) = Some(rx);
        result
    }

    /// Call the block. A `StandardError` rejects the push (a `GitRPC::PushRejected` with its
    /// message, others with their class name only); anything else (Interrupt, kill) is raised.
    fn call_hook(&self, ruby: &Ruby, change: PreReceive) -> Result<Verdict, Error> {
        let gitrpc: RModule = ruby.class_object().const_get("GitRPC")?;
        let rejected: RClass = gitrpc.const_get("PushRejected")?;
        let event = convert::pre_receive(ruby, &change)?;
        let block = self.pre_receive.get(ruby);
        match block.funcall::<_, _, Value>("call", (event,)) {
            Ok(v) if v.is_kind_of(ruby.class_false_class()) => {
                Ok(Err("push rejected by pre-receive hook".to_string()))
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
                Ok(Err(format!(
                    "push rejected: pre-receive hook raised {class}"
                )))
            }
            Err(e) => Err(e),
        }
    }
}

pub fn init(ruby: &Ruby, native: RModule) -> Result<(), Error> {
    let class = native.define_class("Server", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("new", function!(NativeServer::new, 2))?;
    class.define_singleton_method("check_config", function!(NativeServer::check_config, 1))?;
    class.define_method("addresses", method!(NativeServer::addresses, 0))?;
    class.define_method("config", method!(NativeServer::config, 0))?;
    class.define_method("pre_receive", method!(NativeServer::pre_receive, 0))?;
    class.define_method("running?", method!(NativeServer::is_running, 0))?;
    class.define_method("client", method!(NativeServer::client, 1))?;
    class.define_method("stop", method!(NativeServer::stop, 0))?;
    class.define_method("run_hooks", method!(NativeServer::run_hooks, 0))?;
    Ok(())
}

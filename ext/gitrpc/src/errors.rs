//! gRPC statuses become `GitRPC::RPCError` subclasses, chosen by `GitRPC::RPCError.from_status`
//! (lib/gitrpc/error.rb), so the code → class table lives in Ruby.

use magnus::value::Lazy;
use magnus::{prelude::*, Error, Exception, RClass, RModule, Ruby};
use tonic::Status;

static RPC_ERROR: Lazy<RClass> = Lazy::new(|ruby| {
    let gitrpc: RModule = ruby
        .class_object()
        .const_get("GitRPC")
        .expect("GitRPC is defined before the extension loads");
    gitrpc
        .const_get("RPCError")
        .expect("lib/gitrpc/error.rb defines GitRPC::RPCError")
});

/// The Ruby exception for a gRPC status.
pub fn rpc(ruby: &Ruby, status: Status) -> Error {
    let status = gitrpc_client::described(status);
    let class = ruby.get_inner(&RPC_ERROR);
    let built: Result<Exception, Error> =
        class.funcall("from_status", (status.code() as i32, status.message()));
    match built {
        Ok(e) => Error::from(e),
        Err(e) => e,
    }
}

/// A status as a `Result` for `?`.
pub trait OrRaise<T> {
    fn or_raise(self, ruby: &Ruby) -> Result<T, Error>;
}

impl<T> OrRaise<T> for Result<T, Status> {
    fn or_raise(self, ruby: &Ruby) -> Result<T, Error> {
        self.map_err(|s| rpc(ruby, s))
    }
}

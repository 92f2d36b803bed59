//! The layers every call passes on its way to a handler, built in one place for calls over
//! listeners ([`crate::server::run`]) and in-process calls ([`crate::Serving::in_process`]),
//! outermost first:
//!
//! 1. `rpclog.rs`: accounting (in flight, metrics) and one log line per call;
//! 2. `deadline.rs`: `grpc-timeout` enforced on the response body;
//! 3. `unknown.rs`: `UNIMPLEMENTED` with grpc-go's message for unknown methods;
//! 4. `auth.rs`: the v2 token (listeners only: in-process calls are the process itself);
//! 5. `ratelimit.rs`: `[[rate_limiting]]`, calls delayed up to `max_delay` or refused (a
//!    waiting call holds no concurrency slot);
//! 6. `admission.rs`: the request size bound, the repository decoded once, the
//!    `[[concurrency]]` limit;
//!
//! then tonic's router (`server::routes`) and the service.

use std::sync::Arc;

use tower::Layer;

use crate::admission::{Admission, AdmissionLayer};
use crate::auth::{AuthLayer, Authenticated};
use crate::deadline::{Deadline, DeadlineLayer};
use crate::deps::Deps;
use crate::ratelimit::{RateLimitLayer, RateLimited};
use crate::rpclog::{RpcLog, RpcLogLayer};
use crate::unknown::{UnknownMethod, UnknownMethodLayer};

/// A service `S` with every layer around it.
pub type Stack<S> = RpcLog<Deadline<UnknownMethod<Authenticated<RateLimited<Admission<S>>>>>>;

/// The layer stack of one server.
#[derive(Clone)]
pub struct Layers {
    rpclog: RpcLogLayer,
    auth: AuthLayer,
    rate: RateLimitLayer,
    admission: AdmissionLayer,
}

impl Layers {
    /// For calls that come over a listener: with the server's `[auth]`.
    pub fn listener(deps: &Arc<Deps>) -> Layers {
        Layers::new(deps, deps.auth.clone())
    }

    /// For in-process calls: no authentication.
    pub fn in_process(deps: &Arc<Deps>) -> Layers {
        Layers::new(deps, None)
    }

    fn new(deps: &Arc<Deps>, auth: Option<Arc<crate::auth::Auth>>) -> Layers {
        Layers {
            rpclog: RpcLogLayer::new(deps.rpcs.clone(), Some(deps.scheduler.clone())),
            auth: AuthLayer::new(auth),
            rate: RateLimitLayer::new(deps.limits.rate.clone()),
            admission: AdmissionLayer::new(deps.limits.clone(), deps.config.max_message_bytes),
        }
    }
}

impl<S> Layer<S> for Layers {
    type Service = Stack<S>;

    fn layer(&self, inner: S) -> Stack<S> {
        let admitted = self.admission.layer(inner);
        let paced = self.rate.layer(admitted);
        let authenticated = self.auth.layer(paced);
        let known = UnknownMethodLayer.layer(authenticated);
        let bounded = DeadlineLayer.layer(known);
        self.rpclog.layer(bounded)
    }
}

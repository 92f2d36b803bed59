//! Authentication: Gitaly's v2 token (`[auth] token` / `token_file`), checked by a tower layer
//! on every call that arrives over a listener, before admission control, so an unauthenticated
//! caller never takes a slot or runs git. Health checks are exempt (load balancers probe
//! without a secret); in-process calls don't pass through it (they are the process itself).
//!
//! Missing or malformed credentials answer `UNAUTHENTICATED`, a wrong signature or a
//! timestamp more than 30 s off answers `PERMISSION_DENIED` — Gitaly's codes and messages. With
//! `transitioning = true` refusals are only logged, for rolling a secret out.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use gitrpc_proto::auth::{self, Refusal};
use tonic::body::Body as TonicBody;
use tonic::Status;
use tower::{Layer, Service};

use crate::config::AuthConfig;
use crate::startup::StartError;

/// The checked secret of one server.
pub struct Auth {
    secret: Vec<u8>,
    transitioning: bool,
}

impl Auth {
    /// `None` when no token is configured (every call is accepted). The config is valid
    /// (not both `token` and `token_file`); the file is read here.
    pub fn from_config(c: &AuthConfig) -> Result<Option<Arc<Auth>>, StartError> {
        let secret = match (&c.token, &c.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(path)) => {
                auth::read_secret_file(path).map_err(|source| StartError::TokenFile {
                    path: path.clone(),
                    source,
                })?
            }
            (None, None) => return Ok(None),
        };
        if secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(Auth {
            secret: secret.into_bytes(),
            transitioning: c.transitioning,
        })))
    }

    /// The verdict on a call to `path` with these headers, now.
    pub fn check(&self, path: &str, headers: &http::HeaderMap) -> Result<(), Status> {
        if path.starts_with("/grpc.health.v1.Health/") {
            return Ok(());
        }
        let header = headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let refusal = match auth::check(&self.secret, header, SystemTime::now()) {
            Ok(()) => return Ok(()),
            Err(r) => r,
        };
        if self.transitioning {
            tracing::warn!(grpc.method = %path, reason = ?refusal, "auth: would refuse (transitioning)");
            return Ok(());
        }
        Err(match refusal {
            Refusal::Missing => Status::unauthenticated("authentication required"),
            Refusal::Denied => Status::permission_denied("permission denied"),
        })
    }
}

#[derive(Clone)]
pub struct AuthLayer {
    auth: Option<Arc<Auth>>,
}

impl AuthLayer {
    pub fn new(auth: Option<Arc<Auth>>) -> AuthLayer {
        AuthLayer { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;
    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Option<Arc<Auth>>,
}

impl<S, B> Service<http::Request<B>> for Authenticated<S>
where
    S: Service<http::Request<B>, Response = http::Response<TonicBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if let Some(auth) = &self.auth {
            if let Err(status) = auth.check(req.uri().path(), req.headers()) {
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}

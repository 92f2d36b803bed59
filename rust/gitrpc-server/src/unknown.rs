//! Calls to a method or service the server doesn't have answer `UNIMPLEMENTED` with grpc-go's
//! message (`unknown method NoSuch for service gitaly.RefService`, `unknown service
//! gitaly.NoSuch`), before auth and admission look at them. tonic's router and generated
//! services answer these with an empty message, which C and Ruby callers print as nothing.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::task::{Context, Poll};

use prost::Message;
use tonic::body::Body as TonicBody;
use tonic::Status;
use tower::{Layer, Service};

/// Every service the router serves, with its methods: our protos, health and reflection.
fn known() -> &'static HashMap<String, HashSet<String>> {
    static KNOWN: OnceLock<HashMap<String, HashSet<String>>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut out: HashMap<String, HashSet<String>> = HashMap::new();
        for set in [
            gitrpc_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let set = prost_types::FileDescriptorSet::decode(set).expect("valid descriptor set");
            for file in &set.file {
                for svc in &file.service {
                    let name = format!("{}.{}", file.package(), svc.name());
                    let methods = out.entry(name).or_default();
                    methods.extend(svc.method.iter().map(|m| m.name().to_string()));
                }
            }
        }
        out
    })
}

/// The refusal for `path` (`/package.Service/Method`), or `None` if the router serves it.
pub fn unknown(path: &str) -> Option<Status> {
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return Some(Status::unimplemented(format!(
            "malformed method name: {path:?}"
        )));
    };
    let message = match known().get(service) {
        None => format!("unknown service {service}"),
        Some(methods) if !methods.contains(method) => {
            format!("unknown method {method} for service {service}")
        }
        Some(_) => return None,
    };
    Some(Status::unimplemented(message))
}

#[derive(Clone, Default)]
pub struct UnknownMethodLayer;

impl<S> Layer<S> for UnknownMethodLayer {
    type Service = UnknownMethod<S>;
    fn layer(&self, inner: S) -> UnknownMethod<S> {
        UnknownMethod { inner }
    }
}

#[derive(Clone)]
pub struct UnknownMethod<S> {
    inner: S,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for UnknownMethod<S>
where
    S: Service<http::Request<B>, Response = http::Response<TonicBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match unknown(req.uri().path()) {
            Some(status) => Box::pin(async move { Ok(status.into_http()) }),
            None => Box::pin(self.inner.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_like_grpc_go() {
        assert_eq!(
            unknown("/gitaly.RefService/NoSuch").unwrap().message(),
            "unknown method NoSuch for service gitaly.RefService"
        );
        assert_eq!(
            unknown("/gitaly.NoSuch/X").unwrap().message(),
            "unknown service gitaly.NoSuch"
        );
        assert_eq!(
            unknown("/x").unwrap().message(),
            "malformed method name: \"/x\""
        );
        for served in [
            "/gitaly.RefService/RefExists",
            "/gitaly.SSHService/SSHUploadPack",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(unknown(served).is_none(), "{served}");
        }
    }
}

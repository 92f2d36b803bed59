//! The limiters of one server (`[[concurrency]]` per RPC and repository,
//! `[pack_objects_limiting]` server-wide or per client, `[[rate_limiting]]` per RPC and caller) and the
//! refusal Gitaly answers with. The admission and rate-limit layers and the transport
//! services take slots (or tokens) from them; metrics read their snapshots.

use std::collections::HashMap;
use std::sync::Arc;

use gitrpc_proto::identity::Identity;
use tonic::{Code, Status};

use crate::config::{Config, LimitKey};
use crate::error::{any, detail, status_with_details};
use crate::limiter::{Limiter, Permit, Refused};
use crate::ratelimit::RateLimiter;

/// The limiters of one server.
#[derive(Default)]
pub struct Limits {
    /// `[[concurrency]]`, by full method name.
    pub by_rpc: HashMap<String, Arc<Limiter>>,
    /// `[pack_objects_limiting]`.
    pub pack_objects: Option<Arc<Limiter>>,
    /// The adaptive ones among `by_rpc`, with their AIMD rule.
    pub adaptive: Vec<(Arc<Limiter>, crate::adaptive::Aimd)>,
    /// `[pack_objects_limiting] key`: whose pack requests share a budget.
    pub pack_key: LimitKey,
    /// `[[rate_limiting]]`, by full method name.
    pub rate: Arc<HashMap<String, Arc<RateLimiter>>>,
}

/// Key of the pack-objects limiter when it is server-wide: one queue for the whole server.
pub const PACK_KEY: &str = "all";

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        let mut adaptive = Vec::new();
        let by_rpc = config
            .concurrency
            .iter()
            .map(|c| {
                let l = Limiter::new(
                    c.rpc.clone(),
                    c.max_concurrency,
                    c.max_queue_size,
                    c.max_queue_wait,
                );
                if c.adaptive {
                    let rule = crate::adaptive::Aimd {
                        min: c.min_limit.unwrap_or(1),
                        max: c.max_limit.unwrap_or(c.max_concurrency),
                        backoff: config.adaptive_limiting.backoff,
                    };
                    adaptive.push((l.clone(), rule));
                }
                (c.rpc.clone(), l)
            })
            .collect();
        let pack_objects = config.pack_objects_limiting.as_ref().map(|p| {
            Limiter::new(
                "pack-objects",
                p.max_concurrency,
                p.max_queue_length,
                p.max_queue_wait,
            )
        });
        let rate = config
            .rate_limiting
            .iter()
            .map(|r| {
                let l = RateLimiter::new(&r.rpc, r.interval, r.burst, r.max_delay);
                (r.rpc.clone(), Arc::new(l))
            })
            .collect();
        Limits {
            by_rpc,
            pack_objects,
            adaptive,
            rate: Arc::new(rate),
            pack_key: config
                .pack_objects_limiting
                .as_ref()
                .map(|p| p.key)
                .unwrap_or_default(),
        }
    }

    /// The pack-objects limiter's key for a request of `caller` (`[pack_objects_limiting]
    /// key`): one budget for the server, per client address or per user. `caller` is
    /// [`Identity::caller`]'s (its address without a port; the user `user_id`, else
    /// `username`).
    pub fn pack_key_of(&self, caller: &Identity) -> String {
        match self.pack_key {
            LimitKey::Global => PACK_KEY.to_string(),
            LimitKey::RemoteIp => format!("remote_ip:{}", caller.remote_ip),
            LimitKey::User => format!("user:{}", caller.user()),
        }
    }

    /// Every limiter, named (for metrics).
    pub fn all(&self) -> impl Iterator<Item = &Arc<Limiter>> {
        self.by_rpc.values().chain(self.pack_objects.iter())
    }

    /// A slot for a git process generating a pack for `caller` (`None` without a pack
    /// limit).
    pub async fn pack_slot(&self, caller: &Identity) -> Result<Option<Permit>, Status> {
        match &self.pack_objects {
            None => Ok(None),
            Some(l) => l
                .acquire(&self.pack_key_of(caller))
                .await
                .map(Some)
                .map_err(|r| limit_status(r, l)),
        }
    }
}

/// `RESOURCE_EXHAUSTED` with a `gitaly.LimitError` detail, as Gitaly answers. `retry_after`
/// is zero: Gitaly's clients treat that as "do not retry this server right away".
pub fn limit_status(why: Refused, limiter: &Limiter) -> Status {
    let message = format!("{}: {}", limiter.name(), why.message());
    let detail = gitrpc_proto::gitaly::LimitError {
        error_message: why.message().to_string(),
        retry_after: Some(prost_types::Duration {
            seconds: 0,
            nanos: 0,
        }),
    };
    status_with_details(
        Code::ResourceExhausted,
        message,
        vec![any("LimitError", &detail)],
    )
}

/// Decode the `LimitError` of a status made by [`limit_status`] (for clients and tests).
pub fn limit_error(status: &Status) -> Option<gitrpc_proto::gitaly::LimitError> {
    detail(status, "LimitError")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_from_metadata() {
        let mut h = http::HeaderMap::new();
        assert_eq!(Identity::caller(&h), Identity::default());
        h.insert("remote_ip", "10.0.0.7:4242".parse().unwrap());
        h.insert("username", "alice".parse().unwrap());
        let c = Identity::caller(&h);
        assert_eq!((c.remote_ip.as_str(), c.user()), ("10.0.0.7", "alice"));
        h.insert("user_id", "user-12".parse().unwrap());
        h.insert("remote_ip", "2001:db8::1".parse().unwrap());
        let c = Identity::caller(&h);
        assert_eq!((c.remote_ip.as_str(), c.user()), ("2001:db8::1", "user-12"));
        h.insert("user_id", "x".repeat(300).parse().unwrap());
        assert_eq!(Identity::caller(&h).user(), "alice");
    }

    #[test]
    fn pack_keys() {
        let caller = Identity {
            remote_ip: "10.0.0.7".into(),
            gl_id: "user-12".into(),
            ..Default::default()
        };
        let mut limits = Limits::default();
        assert_eq!(limits.pack_key_of(&caller), "all");
        limits.pack_key = LimitKey::RemoteIp;
        assert_eq!(limits.pack_key_of(&caller), "remote_ip:10.0.0.7");
        assert_eq!(limits.pack_key_of(&Identity::default()), "remote_ip:");
        limits.pack_key = LimitKey::User;
        assert_eq!(limits.pack_key_of(&caller), "user:user-12");
        let by_name = Identity {
            username: "alice".into(),
            ..Default::default()
        };
        assert_eq!(limits.pack_key_of(&by_name), "user:alice");
    }

    /// One client is one budget whatever port or padding its front door sent.
    #[test]
    fn pack_keys_of_one_client_agree() {
        let limits = Limits {
            pack_key: LimitKey::RemoteIp,
            ..Default::default()
        };
        let key = |ip: &str| {
            let mut h = http::HeaderMap::new();
            h.insert("remote_ip", ip.parse().unwrap());
            limits.pack_key_of(&Identity::caller(&h))
        };
        assert_eq!(key("10.0.0.7:4242"), "remote_ip:10.0.0.7");
        assert_eq!(key(" 10.0.0.7 "), "remote_ip:10.0.0.7");
        assert_eq!(key("[::1]:123"), "remote_ip:::1");
        assert_eq!(key("::1"), "remote_ip:::1");
    }
}

//! The limiters of one server (`[[concurrency]]` per RPC and repository,
//! `[pack_objects_limiting]` server-wide, `[[rate_limiting]]` per RPC and caller) and the
//! refusal Gitaly answers with. The admission and rate-limit layers and the transport
//! services take slots (or tokens) from them; metrics read their snapshots.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::{Code, Status};

use crate::config::Config;
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
    /// `[[rate_limiting]]`, by full method name.
    pub rate: Arc<HashMap<String, Arc<RateLimiter>>>,
}

/// Key of the pack-objects limiter: one queue for the whole server.
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
        }
    }

    /// Every limiter, named (for metrics).
    pub fn all(&self) -> impl Iterator<Item = &Arc<Limiter>> {
        self.by_rpc.values().chain(self.pack_objects.iter())
    }

    /// A slot for a git process generating a pack (`None` without a pack limit).
    pub async fn pack_slot(&self) -> Result<Option<Permit>, Status> {
        match &self.pack_objects {
            None => Ok(None),
            Some(l) => l
                .acquire(PACK_KEY)
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

//! One generation: `git pack-objects` run by the server's executor for a miss, its pack
//! written into the entry, owned by the cache (a reader that leaves doesn't stop it; the
//! cache being dropped does, killing pack-objects' process group).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gitrpc_git::packobjects::PackObjectsArgs;
use tokio::io::AsyncReadExt;

use super::entry::{Entry, Failure, Outcome, Wrote};
use super::key::Key;
use super::Shared;

/// Check free space on the cache's filesystem after this many bytes.
const CHECK_FREE_EVERY: u64 = 8 << 20;

/// What a miss needs to generate.
pub struct Job {
    pub key: Key,
    pub repo: PathBuf,
    pub label: String,
    pub args: PackObjectsArgs,
    /// pack-objects' input, at offset 0.
    pub stdin: std::fs::File,
    /// `[pack_objects_limiting]` key of the request that caused the miss.
    pub limit_key: String,
    /// The git of the call that caused the miss (its log line lists pack-objects).
    pub git: gitrpc_git::Git,
}

/// Ends the entry as failed if the task is dropped before it finished (the cache stopped).
struct Unfinished(Option<(Arc<Shared>, Arc<Entry>)>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some((cache, entry)) = self.0.take() {
            let outcome = Outcome::Failed(Failure::Failed("cancelled".into()));
            entry.finish(outcome.clone());
            cache.finished(&entry, &outcome);
        }
    }
}

pub async fn run(cache: Arc<Shared>, entry: Arc<Entry>, job: Job) {
    let started = Instant::now();
    let mut guard = Unfinished(Some((cache.clone(), entry.clone())));
    let label = job.label.clone();
    let outcome = match generate(&cache, &entry, job).await {
        Ok(()) => Outcome::Done,
        Err(f) => Outcome::Failed(f),
    };
    guard.0 = None;
    let took = started.elapsed().as_secs_f64();
    let result = match &outcome {
        Outcome::Failed(Failure::Refused(_)) => "refused",
        Outcome::Failed(f) => {
            tracing::warn!(repo = %label, entry = %super::key::short(&entry.key), error = %f.message(), "pack-objects cache: generation failed");
            "failed"
        }
        _ => "ok",
    };
    cache.metrics.generated(result, took);
    tracing::debug!(repo = %label, entry = %super::key::short(&entry.key), result, seconds = took, bytes = entry.on_disk(), "pack-objects cache: generation ended");
    entry.finish(outcome.clone());
    cache.finished(&entry, &outcome);
}

async fn generate(cache: &Shared, entry: &Entry, job: Job) -> Result<(), Failure> {
    let _permit = match &cache.limits.pack_objects {
        Some(l) => Some(
            l.acquire(&job.limit_key)
                .await
                .map_err(|r| Failure::Refused(crate::limits::limit_status(r, l)))?,
        ),
        None => None,
    };
    let cmd = job.args.command(&job.repo, job.stdin);
    let mut p = job
        .git
        .spawn(&cmd)
        .map_err(|e| Failure::Failed(e.to_string()))?;
    entry.set_pid(Some(p.pid()));
    let mut out = p.take_stdout();
    let mut err = p.take_stderr();
    let mut buf = vec![0u8; 256 << 10];
    let mut ebuf = vec![0u8; 8 << 10];
    let mut unchecked = 0u64;
    while out.is_some() || err.is_some() {
        tokio::select! {
            n = async { out.as_mut().expect("checked").read(&mut buf).await }, if out.is_some() => {
                let n = n.map_err(|e| Failure::Failed(format!("read pack-objects output: {e}")))?;
                if n == 0 {
                    out = None;
                    continue;
                }
                cache.metrics.generated_bytes.inc_by(n as u64);
                unchecked += n as u64;
                if unchecked >= CHECK_FREE_EVERY {
                    unchecked = 0;
                    if !entry.in_memory() && cache.below_min_free_disk() {
                        tracing::warn!(entry = %super::key::short(&entry.key), "pack-objects cache: disk nearly full; streaming the rest of this pack from memory");
                        entry.fall_back();
                        cache.fell_back(entry, "min_free_disk");
                    }
                }
                match entry.write(Bytes::copy_from_slice(&buf[..n])).await {
                    Ok(Wrote::Stored) => {}
                    Ok(Wrote::FellBack(reason)) => cache.fell_back(entry, reason),
                    Err(why) => return Err(Failure::Failed(why)),
                }
            }
            n = async { err.as_mut().expect("checked").read(&mut ebuf).await }, if err.is_some() => {
                match n {
                    Ok(0) | Err(_) => err = None,
                    Ok(n) => entry.write_stderr(&ebuf[..n]),
                }
            }
        }
    }
    let (status, _) = p
        .wait_status()
        .await
        .map_err(|e| Failure::Failed(e.to_string()))?;
    if !status.success() {
        return Err(Failure::Failed(format!("git pack-objects: {status}")));
    }
    Ok(())
}

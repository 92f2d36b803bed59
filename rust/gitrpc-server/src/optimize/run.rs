//! One optimization, step by step, in Gitaly's order (`optimizeRepository`): clean stale
//! data, repack, prune, pack refs, commit-graph. The first failing step ends it. Every step
//! is timed into the metrics, every task counted (Gitaly's task names), and the whole logged
//! in one line, "optimized repository".

use std::time::{Duration, Instant, SystemTime};

use gitrpc_git::housekeeping::stale::clean_stale_data;
use gitrpc_git::housekeeping::stats::RepositoryInfo;
use gitrpc_git::housekeeping::strategy::{
    self, CommitGraphWrite, Plan, Prune, Repack, RepackStrategy,
};
use gitrpc_git::housekeeping::tasks;
use gitrpc_git::Git;

use super::{Claim, Inner, Mode, OptimizeError, Target};

/// PruneUnreachableObjects' grace period: objects touched more recently may be about to be
/// referenced by a concurrent writer.
const PRUNE_GRACE: Duration = Duration::from_secs(30 * 60);

/// What one optimization did: tasks with their outcome, and step times.
#[derive(Default)]
struct Report {
    tasks: Vec<(String, bool)>,
    times: Vec<(&'static str, Duration)>,
}

impl Report {
    fn tasks_text(&self) -> String {
        let v: Vec<String> = self
            .tasks
            .iter()
            .map(|(t, ok)| format!("{t}={}", if *ok { "success" } else { "failure" }))
            .collect();
        v.join(",")
    }

    fn time(&self, step: &str) -> f64 {
        self.times
            .iter()
            .find(|(s, _)| *s == step)
            .map_or(0.0, |(_, d)| d.as_secs_f64() * 1000.0)
    }
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, OptimizeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OptimizeError::Io {
            what,
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|source| OptimizeError::Io { what, source })
}

async fn run_all(git: &Git, cmds: &[gitrpc_git::Command]) -> Result<(), OptimizeError> {
    for c in cmds {
        git.output(c).await?;
    }
    Ok(())
}

pub(super) async fn optimize(
    inner: &Inner,
    claim: &Claim,
    git: &Git,
    target: &Target,
    mode: Mode,
) -> Result<(), OptimizeError> {
    let started = Instant::now();
    let mut report = Report::default();
    let result = steps(inner, claim, git, target, mode, &mut report).await;
    let total = started.elapsed();
    let m = &inner.metrics;
    for (task, ok) in &report.tasks {
        m.task(task, *ok);
    }
    m.task("total", result.is_ok());
    m.took("total", total);
    let error = result.as_ref().err().map(|e| e.to_string());
    tracing::info!(
        repository = %target.label(),
        origin = claim.job.origin.as_str(),
        mode = ?mode,
        optimizations = %report.tasks_text(),
        total_ms = total.as_secs_f64() * 1000.0,
        clean_stale_data_ms = report.time("clean_stale_data"),
        repack_ms = report.time("repack"),
        prune_ms = report.time("prune"),
        pack_refs_ms = report.time("pack_refs"),
        commit_graph_ms = report.time("commit_graph"),
        error = error.as_deref().unwrap_or(""),
        "optimized repository"
    );
    result
}

/// Time `step` into the report and the metrics.
struct Step<'a> {
    name: &'static str,
    started: Instant,
    report: &'a mut Report,
    inner: &'a Inner,
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        let d = self.started.elapsed();
        self.report.times.push((self.name, d));
        self.inner.metrics.took(self.name, d);
    }
}

fn step<'a>(
    name: &'static str,
    claim: &Claim,
    inner: &'a Inner,
    report: &'a mut Report,
) -> Step<'a> {
    claim.step(name);
    Step {
        name,
        started: Instant::now(),
        report,
        inner,
    }
}

async fn steps(
    inner: &Inner,
    claim: &Claim,
    git: &Git,
    target: &Target,
    mode: Mode,
    report: &mut Report,
) -> Result<(), OptimizeError> {
    let path = target.path.clone();
    {
        let _s = step("clean_stale_data", claim, inner, report);
        let (processes, p, grace) = (git.processes().clone(), path.clone(), inner.grace);
        let stale = blocking("clean stale data", move || {
            clean_stale_data(&processes, &p, grace)
        })
        .await?;
        for (kind, n) in stale.counts() {
            inner.metrics.pruned_files(kind, n);
        }
        if !stale.removed.is_empty() {
            tracing::info!(repository = %target.label(), removed = ?stale.removed, "removed stale files");
        }
    }
    let (p, pool) = (path.clone(), target.is_pool());
    let info = blocking("read repository statistics", move || {
        RepositoryInfo::gather(&p, pool)
    })
    .await?;
    let now = SystemTime::now();
    let plan = match mode {
        Mode::Heuristical => strategy::heuristical(&info, now),
        Mode::Eager => strategy::eager(&info, now),
    };
    tracing::debug!(repository = %target.label(), ?info, ?plan, "optimization plan");
    execute(inner, claim, git, target, &plan, report).await
}

/// Run a plan's tasks in order, recording each.
async fn execute(
    inner: &Inner,
    claim: &Claim,
    git: &Git,
    target: &Target,
    plan: &Plan,
    report: &mut Report,
) -> Result<(), OptimizeError> {
    let path = &target.path;
    if let Some(r) = &plan.repack {
        let res = {
            let _s = step("repack", claim, inner, report);
            repack(git, target, r).await
        };
        // Idle cat-files keep the packs a repack deleted open (and their disk space).
        inner.catfile.evict(path);
        let ok = res.is_ok();
        report
            .tasks
            .push((format!("packed_objects_{}", r.strategy.name()), ok));
        if r.write_bitmap {
            report.tasks.push(("written_bitmap".into(), ok));
        }
        if r.write_midx {
            report.tasks.push(("written_multi_pack_index".into(), ok));
        }
        res?;
    }
    if let Some(p) = &plan.prune {
        let res = {
            let _s = step("prune", claim, inner, report);
            git.output(&tasks::prune(path, p)).await
        };
        report.tasks.push(("pruned_objects".into(), res.is_ok()));
        res?;
    }
    if plan.pack_refs {
        let res = {
            let _s = step("pack_refs", claim, inner, report);
            git.output(&tasks::pack_refs(path)).await
        };
        report.tasks.push(("packed_refs".into(), res.is_ok()));
        res?;
    }
    if let Some(c) = &plan.commit_graph {
        let res = {
            let _s = step("commit_graph", claim, inner, report);
            git.output(&tasks::write_commit_graph(path, c)).await
        };
        let task = match c.replace_chain {
            true => "written_commit_graph_full",
            false => "written_commit_graph_incremental",
        };
        report.tasks.push((task.into(), res.is_ok()));
        res?;
    }
    Ok(())
}

async fn repack(git: &Git, target: &Target, r: &Repack) -> Result<(), OptimizeError> {
    if r.strategy.is_full() {
        let p = target.path.clone();
        blocking("write full-repack timestamp", move || {
            tasks::write_full_repack_timestamp(&p)
        })
        .await?;
    }
    run_all(git, &tasks::repack(&target.path, r, target.is_pool())).await
}

pub(super) async fn prune_unreachable(
    inner: &Inner,
    claim: &Claim,
    git: &Git,
    target: &Target,
) -> Result<(), OptimizeError> {
    let started = Instant::now();
    let before = SystemTime::now() - PRUNE_GRACE;
    let path = &target.path;
    let (p, pool) = (path.clone(), target.is_pool());
    let info = blocking("read repository statistics", move || {
        RepositoryInfo::gather(&p, pool)
    })
    .await?;
    claim.step("prune");
    git.output(&tasks::prune(
        path,
        &Prune {
            expire_before: before,
        },
    ))
    .await?;
    claim.step("repack");
    let full = Repack {
        strategy: RepackStrategy::FullWithCruft,
        write_bitmap: info.alternates.directories.is_empty(),
        write_midx: true,
        cruft_expire_before: Some(before),
    };
    let res = repack(git, target, &full).await;
    inner.catfile.evict(path);
    res?;
    claim.step("commit_graph");
    git.output(&tasks::write_commit_graph(
        path,
        &CommitGraphWrite {
            replace_chain: true,
        },
    ))
    .await?;
    tracing::info!(
        repository = %target.label(),
        total_ms = started.elapsed().as_secs_f64() * 1000.0,
        "pruned unreachable objects"
    );
    Ok(())
}

//! Repository optimization (`crate::optimize`): Gitaly's `gitaly_housekeeping_*` families
//! under our prefix, with its label names and task names, plus the background scheduler's
//! queue.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{latency_histogram, Histograms};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskStatus {
    pub housekeeping_task: String,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Task {
    pub housekeeping_task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileType {
    pub filetype: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// What optimizations did, and the background queue.
#[derive(Clone)]
pub struct HousekeepingMetrics {
    tasks: Family<TaskStatus, Counter>,
    seconds: Histograms<Task>,
    pruned_files: Family<FileType, Counter>,
    scheduled: Family<Reason, Counter>,
    skipped: Family<Reason, Counter>,
    running: Gauge,
    queued: Gauge,
}

impl Default for HousekeepingMetrics {
    fn default() -> Self {
        HousekeepingMetrics {
            tasks: Family::default(),
            seconds: Family::new_with_constructor(latency_histogram),
            pruned_files: Family::default(),
            scheduled: Family::default(),
            skipped: Family::default(),
            running: Gauge::default(),
            queued: Gauge::default(),
        }
    }
}

impl HousekeepingMetrics {
    /// A task (`packed_objects_geometric`, `pruned_objects`, ..., `total`) ended.
    pub fn task(&self, task: &str, ok: bool) {
        self.tasks
            .get_or_create(&TaskStatus {
                housekeeping_task: task.to_string(),
                status: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// How long a step (`clean_stale_data`, `repack`, `prune`, `pack_refs`, `commit_graph`,
    /// `total`) took.
    pub fn took(&self, step: &'static str, d: Duration) {
        self.seconds
            .get_or_create(&Task {
                housekeeping_task: step,
            })
            .observe(d.as_secs_f64());
    }

    pub fn pruned_files(&self, filetype: &'static str, n: usize) {
        self.pruned_files
            .get_or_create(&FileType { filetype })
            .inc_by(n as u64);
    }

    /// A background optimization was queued, because of `reason` (`writes`, `daily`).
    pub fn scheduled(&self, reason: &'static str) {
        self.scheduled.get_or_create(&Reason { reason }).inc();
    }

    /// One was not run: `busy` (another ran on the repository), `queue_full`, `gone`.
    pub fn skipped(&self, reason: &'static str) {
        self.skipped.get_or_create(&Reason { reason }).inc();
    }

    pub fn running(&self) -> &Gauge {
        &self.running
    }

    pub fn queued(&self) -> &Gauge {
        &self.queued
    }

    /// Finished tasks named `task` with `status` (`"success"`, `"failure"`).
    pub fn count(&self, task: &str, status: &'static str) -> u64 {
        self.tasks
            .get(&TaskStatus {
                housekeeping_task: task.to_string(),
                status,
            })
            .map_or(0, |c| c.get())
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "gitrpc_housekeeping_tasks",
            "Repository optimization tasks done, by task and status (Gitaly's names)",
            self.tasks.clone(),
        );
        r.register(
            "gitrpc_housekeeping_task_seconds",
            "Time each step of a repository optimization took",
            self.seconds.clone(),
        );
        r.register(
            "gitrpc_housekeeping_pruned_files",
            "Stale files (locks, temporary objects, quarantines) removed by optimizations, by kind",
            self.pruned_files.clone(),
        );
        r.register(
            "gitrpc_housekeeping_scheduled",
            "Background optimizations queued, by reason (writes, daily)",
            self.scheduled.clone(),
        );
        r.register(
            "gitrpc_housekeeping_skipped",
            "Background optimizations not run, by reason (busy, queue_full, gone)",
            self.skipped.clone(),
        );
        r.register(
            "gitrpc_housekeeping_running",
            "Repository optimizations running now (background and RPCs)",
            self.running.clone(),
        );
        r.register(
            "gitrpc_housekeeping_queued",
            "Background optimizations waiting for a slot",
            self.queued.clone(),
        );
    }
}

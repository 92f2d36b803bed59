//! `[daily_maintenance]`: Gitaly's daily window (`internal/gitaly/maintenance`). Every day at
//! `start_hour:start_minute` UTC, for `duration`, the repositories of the configured storages
//! are optimized (heuristically) one after another, in random order, at most one started per
//! second, each taking a slot of `[housekeeping] max_concurrency`. A window already open when
//! the server starts is used at once (Gitaly waits for the next day's: a server restarted
//! during the window would skip a day).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::config::DailyMaintenance;

use super::{scheduler::Shared, Mode, Origin, Target};

const DAY: u64 = 24 * 3600;

/// One day's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: SystemTime,
    pub end: SystemTime,
}

/// The window open at `now`, or else the next one to open.
pub fn next_window(now: SystemTime, hour: u32, minute: u32, duration: Duration) -> Window {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let today = secs - secs % DAY + u64::from(hour) * 3600 + u64::from(minute) * 60;
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    // Yesterday's window may reach past midnight.
    for start in [today.saturating_sub(DAY), today] {
        let w = Window {
            start: at(start),
            end: at(start) + duration,
        };
        if w.start <= now && now < w.end {
            return w;
        }
    }
    let start = if at(today) > now { today } else { today + DAY };
    Window {
        start: at(start),
        end: at(start) + duration,
    }
}

/// A cheap shuffle (xorshift seeded by the clock): the order only has to differ between days.
fn shuffle<T>(v: &mut [T]) {
    let mut x = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// Until dropped: wait for each window and walk the storages in it.
pub(super) async fn run(shared: std::sync::Arc<Shared>, config: DailyMaintenance) {
    loop {
        let w = next_window(
            SystemTime::now(),
            config.start_hour,
            config.start_minute,
            config.duration,
        );
        *super::scheduler::lock(&shared.next_window) = Some(w);
        if let Ok(wait) = w.start.duration_since(SystemTime::now()) {
            tracing::info!(start = ?w.start, "maintenance: daily scheduled");
            tokio::time::sleep(wait).await;
        }
        tracing::info!(until = ?w.end, "maintenance: daily starting");
        let walked = walk(&shared, &config, w.end).await;
        tracing::info!(repositories = walked, "maintenance: daily completed");
        // Don't walk the same window again.
        if let Ok(rest) = w.end.duration_since(SystemTime::now()) {
            tokio::time::sleep(rest).await;
        }
    }
}

/// Optimize repositories until `end`; returns how many were started.
async fn walk(shared: &Shared, config: &DailyMaintenance, end: SystemTime) -> usize {
    let roots: Vec<(String, PathBuf)> = shared
        .locator
        .storages()
        .filter(|(name, _)| {
            config
                .storages
                .as_ref()
                .is_none_or(|s| s.iter().any(|n| n == name))
        })
        .map(|(n, p)| (n.to_string(), p.to_path_buf()))
        .collect();
    let listed = tokio::task::spawn_blocking(move || {
        let mut v: Vec<Target> = Vec::new();
        let stop = std::sync::atomic::AtomicBool::new(false);
        for (storage, root) in &roots {
            crate::housekeeping::for_each_repository(root, &stop, |path| {
                if let Ok(rel) = path.strip_prefix(root) {
                    v.push(Target {
                        path: path.to_path_buf(),
                        storage: storage.clone(),
                        relative: rel.to_string_lossy().into_owned(),
                    });
                }
            });
        }
        v
    })
    .await;
    let mut targets = listed.unwrap_or_default();
    shuffle(&mut targets);
    let mut started = 0;
    for t in targets {
        if SystemTime::now() >= end {
            break;
        }
        let tick = tokio::time::sleep(Duration::from_secs(1));
        let Ok(_permit) = shared.slots.acquire().await else {
            break;
        };
        shared.metrics().scheduled("daily");
        started += 1;
        let res = shared
            .optimizer
            .optimize(&shared.git, &t, Mode::Heuristical, Origin::Daily)
            .await;
        shared.finished(&t, res);
        tick.await;
    }
    started
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u64, m: u64, s: u64) -> SystemTime {
        // 2026-01-10 00:00:00 UTC
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_768_003_200 + h * 3600 + m * 60 + s)
    }

    #[test]
    fn windows() {
        let ten = Duration::from_secs(600);
        // Before today's window: today's.
        assert_eq!(next_window(at(11, 0, 0), 12, 0, ten).start, at(12, 0, 0));
        // Inside it: the open one.
        let w = next_window(at(12, 3, 0), 12, 0, ten);
        assert_eq!((w.start, w.end), (at(12, 0, 0), at(12, 10, 0)));
        assert_eq!(next_window(at(12, 0, 0), 12, 0, ten).start, at(12, 0, 0));
        // After it: tomorrow's.
        assert_eq!(next_window(at(12, 10, 0), 12, 0, ten).start, at(36, 0, 0));
        // A window over midnight, seen after midnight.
        let w = next_window(at(0, 30, 0), 23, 50, Duration::from_secs(3600));
        assert_eq!((w.start, w.end), (at(0, 0, 0) - ten, at(0, 50, 0)));
        assert_eq!(next_window(at(23, 0, 0), 23, 50, ten).start, at(23, 50, 0));
    }
}

//! What /proc says about a live process (state, CPU time, resident memory), read with the
//! `procfs` crate.

use procfs::WithCurrentSystemInfo;

/// One row of the git process table.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ProcInfo {
    /// `R` running, `S` sleeping, `D` disk wait, `Z` zombie, ...
    pub state: String,
    /// User + system CPU seconds so far.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

pub fn read(pid: i32) -> Option<ProcInfo> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    let ticks = procfs::ticks_per_second().max(1) as f64;
    Some(ProcInfo {
        state: stat.state.to_string(),
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        rss_bytes: stat.rss_bytes().get(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_process() {
        let me = super::read(std::process::id() as i32).unwrap();
        assert!(me.rss_bytes > 1024 * 1024);
        assert!(["R", "S"].contains(&me.state.as_str()), "{}", me.state);
    }
}

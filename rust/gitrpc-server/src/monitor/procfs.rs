//! What /proc says about a live process: state, CPU time, resident memory.

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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] = state (field 3); utime, stime = fields 14, 15; rss (pages) = field 24.
    let ticks = clock_ticks();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let rss_pages: u64 = f.get(21)?.parse().ok()?;
    Some(ProcInfo {
        state: f.first()?.to_string(),
        cpu_seconds: (utime + stime) / ticks,
        rss_bytes: rss_pages * page_size(),
    })
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
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

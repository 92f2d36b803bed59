//! `[[rate_limiting]]` end to end: 50 `git ls-remote` sessions of one user through sshd +
//! gitrpc-shell at once, against 10 calls a second (interval 100 ms) with a burst of 5.
//!
//! The sessions are held at the access check until all 50 are there, then let go together,
//! so they reach gitrpcd within a fraction of a second. Arrival times on a loaded machine
//! are not ours to choose, so the server records each decision (arrival and delay, in
//! nanoseconds, on `/diagnostics.json`) and the test replays the arrivals through the token
//! bucket and requires the very same decisions, counts included:
//!
//! - `max_delay` 5 s: all 50 are served. Exact whatever the arrival times: the worst case,
//!   all 50 at one instant, has the 50th wait (50 − 5) × 100 ms = 4.5 s. (At 3 s, the
//!   issue's number, only 5 + 30 = 35 are sure to be served: see `src/ratelimit/tests.rs`.)
//! - `max_delay` 0.5 s: the calls beyond the rate are refused at once, with gitrpc-shell's
//!   busy message; the others are served. Refusals = the replay's = failed sessions = the
//!   `gitrpc_rate_limit_refused_total` counter.

use crate::support::*;

const RPC: &str = "/gitaly.SSHService/SSHUploadPackWithSidechannel";
const INTERVAL: u64 = 100_000_000;
const BURST: u64 = 5;

/// The token bucket, replayed: each arrival's delay, or `None` if refused.
fn replay(arrivals: &[u64], max_delay: u64) -> Vec<Option<u64>> {
    let mut due = 0u64; // when the next token is due
    arrivals
        .iter()
        .map(|&t| {
            let start = due.max(t);
            let wait = (start + INTERVAL).saturating_sub(BURST * INTERVAL + t);
            if wait > max_delay {
                None
            } else {
                due = start + INTERVAL;
                Some(wait)
            }
        })
        .collect()
}

/// 50 sessions at once with `max_delay`; the decisions the server recorded and how many
/// sessions failed with the busy message.
fn fifty_sessions(max_delay: &str) -> (Door, Vec<serde_json::Value>, usize, usize) {
    let door = Door::start_with(
        &format!(
            "[[rate_limiting]]\nrpc = \"{RPC}\"\ninterval = \"100ms\"\nburst = {BURST}\nmax_delay = \"{max_delay}\"\n"
        ),
        None,
        true,
    );
    door.daemon.seed("g/p.git");
    let url = door.url("g/p.git");
    let outcomes = std::thread::scope(|s| {
        let sessions: Vec<_> = (0..50)
            .map(|_| {
                let (door, url) = (&door, &url);
                s.spawn(move || {
                    let t = tempfile::tempdir().unwrap();
                    door.git(&door.alice, t.path(), &["ls-remote", url], &[])
                })
            })
            .collect();
        door.release(50);
        sessions
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut busy = 0;
    for o in &outcomes {
        if !o.status.success() {
            let err = stderr(o);
            assert!(
                err.contains("gitrpc is busy, please try again later"),
                "{err}"
            );
            assert!(err.contains("rate limit reached"), "{err}");
            busy += 1;
        }
    }
    let diagnostics: serde_json::Value =
        serde_json::from_str(&door.daemon.monitor_get("/diagnostics.json")).unwrap();
    let rule = diagnostics["rate_limiting"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rpc"] == RPC)
        .expect("the rule on /diagnostics.json")
        .clone();
    let decisions: Vec<serde_json::Value> = rule["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["key"] == "user:user-42")
        .cloned()
        .collect();
    assert_eq!(decisions.len(), 50, "one decision per session");
    (door, decisions, busy, outcomes.len() - busy)
}

fn check(decisions: &[serde_json::Value], max_delay_ns: u64) -> (usize, Vec<u64>) {
    let arrivals: Vec<u64> = decisions
        .iter()
        .map(|d| d["arrival_ns"].as_u64().unwrap())
        .collect();
    let recorded: Vec<Option<u64>> = decisions
        .iter()
        .map(|d| {
            d["admitted"]
                .as_bool()
                .unwrap()
                .then(|| d["delay_ns"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        recorded,
        replay(&arrivals, max_delay_ns),
        "arrivals {arrivals:?}"
    );
    let refused = recorded.iter().filter(|d| d.is_none()).count();
    let delays: Vec<u64> = recorded.into_iter().flatten().collect();
    println!(
        "max_delay {max_delay_ns} ns: arrivals spread over {} ms, {} served (longest wait {} ms), {refused} refused",
        (arrivals[arrivals.len() - 1] - arrivals[0]) / 1_000_000,
        delays.len(),
        delays.iter().max().unwrap_or(&0) / 1_000_000
    );
    (refused, delays)
}

#[test]
fn fifty_sessions_are_smoothed_within_max_delay() {
    let (door, decisions, busy, ok) = fifty_sessions("5s");
    let (refused, delays) = check(&decisions, 5_000_000_000);
    assert_eq!((refused, busy, ok), (0, 0, 50), "all 50 served");
    // The spread: the k-th of calls arriving within `spread` of each other waits
    // (k − 4) × 100 ms minus up to `spread` (tokens earned meanwhile); the first five none.
    let first = decisions[0]["arrival_ns"].as_u64().unwrap();
    let spread = decisions[49]["arrival_ns"].as_u64().unwrap() - first;
    for (k, d) in delays.iter().enumerate() {
        let full = (k as u64).saturating_sub(4) * INTERVAL;
        assert!(
            *d <= full && *d + spread >= full,
            "call {k}: {d} ns, {full} ns at once, spread {spread} ns"
        );
    }
    let m = |name: &str| door.daemon.metric(&format!("{name}{{rpc=\"{RPC}\"}}"));
    assert_eq!(m("gitrpc_rate_limit_admitted_total"), 50.0);
    assert_eq!(m("gitrpc_rate_limit_refused_total"), 0.0);
    assert_eq!(m("gitrpc_rate_limit_delay_seconds_count"), 50.0);
}

#[test]
fn beyond_max_delay_sessions_are_refused_at_once() {
    let (door, decisions, busy, ok) = fifty_sessions("500ms");
    let (refused, delays) = check(&decisions, 500_000_000);
    assert!(refused > 0, "no refusals: {decisions:?}");
    assert_eq!(busy, refused, "each refusal reached its user as busy");
    assert_eq!(ok, delays.len());
    assert!(delays.iter().all(|d| *d <= 500_000_000));
    for d in decisions.iter().filter(|d| d["admitted"] == false) {
        assert_eq!(d["delay_ns"], 0, "refused at once");
    }
    let m = |name: &str| door.daemon.metric(&format!("{name}{{rpc=\"{RPC}\"}}"));
    assert_eq!(m("gitrpc_rate_limit_refused_total"), refused as f64);
    assert_eq!(m("gitrpc_rate_limit_admitted_total"), ok as f64);
}

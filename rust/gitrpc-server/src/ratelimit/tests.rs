//! The arithmetic of `[[rate_limiting]]`, at exact arrival times: 10 calls a second
//! (interval 100 ms), burst 5, 50 calls.
//!
//! - All 50 at once: the k-th (0-based) waits max(0, k − 4) × 100 ms; `max_delay` D serves
//!   5 + floor(D / 100 ms). D = 3 s: 35 served (the last after 3.0 s), 15 refused;
//!   D = 0.5 s: 10 served, 40 refused; D = 5 s: all 50, the last after 4.5 s.
//! - Spread evenly over one second (the i-th at i × 20 ms): while all are served the i-th
//!   waits max(0, (i − 4) × 100 ms − i × 20 ms) = max(0, 80·i − 400) ms, so the 50th needs
//!   3.52 s: D = 3 s serves 44 and refuses 6; D = 0.5 s serves 19; D = 5 s serves all 50.
//!
//! So the "50 sessions in one second at 10/s, burst 5, max_delay 3 s: all served" is
//! not arithmetic: all 50 are served from a max_delay of 3.52 s (spread) or 4.5 s (at once).

use std::time::Duration;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn limiter(max_delay: Duration) -> RateLimiter {
    RateLimiter::new("/gitaly.A/B", 100 * MS, 5, max_delay)
}

/// Offer calls at `offsets` (from a common start); the verdicts.
fn offer(l: &RateLimiter, offsets: impl IntoIterator<Item = Duration>) -> Vec<Verdict> {
    let t0 = Instant::now();
    offsets
        .into_iter()
        .map(|o| l.decide_at("user:7", t0 + o, None))
        .collect()
}

fn served(v: &[Verdict]) -> Vec<Duration> {
    v.iter()
        .filter_map(|v| match v {
            Verdict::Admit(d) => Some(*d),
            _ => None,
        })
        .collect()
}

#[test]
fn fifty_at_once() {
    for (max_delay, n_served) in [(3000 * MS, 35), (500 * MS, 10), (5000 * MS, 50)] {
        let l = limiter(max_delay);
        let v = offer(&l, [Duration::ZERO; 50]);
        let delays = served(&v);
        assert_eq!(delays.len(), n_served, "max_delay {max_delay:?}");
        for (k, d) in delays.iter().enumerate() {
            assert_eq!(*d, 100 * MS * (k as u32).saturating_sub(4), "call {k}");
        }
        // The rest were refused at once (taking no token: each would have been the next
        // served), with how much longer they would have waited.
        let next = 100 * MS * (n_served as u32 - 4);
        for (k, r) in v.iter().enumerate().skip(n_served) {
            let want = next - max_delay;
            assert_eq!(*r, Verdict::Refuse { retry_after: want }, "call {k}");
        }
        assert_eq!(
            (l.admitted(), l.refused()),
            (n_served as u64, 50 - n_served as u64)
        );
    }
}

#[test]
fn fifty_spread_over_a_second() {
    let every_20ms = || (0..50).map(|i| 20 * MS * i);
    for (max_delay, n_served) in [(3000 * MS, 44), (500 * MS, 19), (5000 * MS, 50)] {
        let l = limiter(max_delay);
        let v = offer(&l, every_20ms());
        assert_eq!(served(&v).len(), n_served, "max_delay {max_delay:?}");
    }
    let v = offer(&limiter(5000 * MS), every_20ms());
    for (i, d) in served(&v).iter().enumerate() {
        assert_eq!(*d, MS * (80 * i as u32).saturating_sub(400), "call {i}");
    }
    assert_eq!(served(&v)[49], 3520 * MS);
}

#[test]
fn callers_and_tokens_are_independent() {
    let l = limiter(Duration::ZERO);
    let t0 = Instant::now();
    for k in 0..5 {
        assert_eq!(
            l.decide_at("a", t0, None),
            Verdict::Admit(Duration::ZERO),
            "{k}"
        );
    }
    assert!(matches!(l.decide_at("a", t0, None), Verdict::Refuse { .. }));
    // Another caller has its own bucket; a token comes back every interval.
    assert_eq!(l.decide_at("b", t0, None), Verdict::Admit(Duration::ZERO));
    assert_eq!(
        l.decide_at("a", t0 + 100 * MS, None),
        Verdict::Admit(Duration::ZERO)
    );
    assert!(matches!(
        l.decide_at("a", t0 + 100 * MS, None),
        Verdict::Refuse { .. }
    ));
    // A long pause refills the bucket, but never past `burst`.
    let later = t0 + 10 * 1000 * MS;
    for _ in 0..5 {
        assert_eq!(
            l.decide_at("a", later, None),
            Verdict::Admit(Duration::ZERO)
        );
    }
    assert!(matches!(
        l.decide_at("a", later, None),
        Verdict::Refuse { .. }
    ));
}

#[test]
fn a_call_is_not_held_past_its_deadline() {
    let l = limiter(3000 * MS);
    let t0 = Instant::now();
    for _ in 0..5 {
        l.decide_at("a", t0, None);
    }
    // The next waits 100 ms: not with a 50 ms deadline, and that refusal takes no token.
    assert!(matches!(
        l.decide_at("a", t0, Some(50 * MS)),
        Verdict::Refuse { .. }
    ));
    assert_eq!(
        l.decide_at("a", t0, Some(MS * 100)),
        Verdict::Admit(100 * MS)
    );
}

#[test]
fn due_buckets_are_forgotten() {
    let l = limiter(Duration::ZERO);
    let t0 = Instant::now();
    for i in 0..(PRUNE_EVERY - 1) {
        l.decide_at(&format!("caller {i}"), t0, None);
    }
    assert_eq!(l.keys(), PRUNE_EVERY as usize - 1);
    // One more decision, a second later: every other bucket's next token is due by then.
    l.decide_at("late", t0 + 1000 * MS, None);
    assert_eq!(l.keys(), 1);
    assert_eq!(l.recent().len(), PRUNE_EVERY as usize);
    let last = l.recent().pop().unwrap();
    assert_eq!((last.key.as_str(), last.admitted), ("late", true));
}

#[test]
fn refusals_carry_gitalys_detail() {
    let s = limiter(Duration::ZERO).refusal(1500 * MS);
    assert_eq!(s.code(), tonic::Code::ResourceExhausted);
    assert_eq!(s.message(), "/gitaly.A/B: rate limit reached");
    let e = gitrpc_proto::limit::limit_error(&s).unwrap();
    assert_eq!(e.error_message, "rate limit reached");
    assert_eq!(e.retry_after.unwrap().seconds, 1);
}

#[test]
fn keys_name_the_user_first() {
    let req = |headers: &[(&'static str, &str)]| {
        let mut r = http::Request::new(());
        for (k, v) in headers {
            r.headers_mut().insert(*k, v.parse().unwrap());
        }
        caller_key(&r)
    };
    assert_eq!(
        req(&[("user_id", "user-7"), ("remote_ip", "10.0.0.1")]),
        "user:user-7"
    );
    assert_eq!(req(&[("username", "alice")]), "username:alice");
    assert_eq!(req(&[("remote_ip", "10.0.0.1")]), "ip:10.0.0.1");
    assert_eq!(req(&[]), "");
}

/// One client is one bucket: the metadata is read as `Identity::caller` reads it.
#[test]
fn keys_ignore_ports_and_padding() {
    let req = |headers: &[(&'static str, &str)]| {
        let mut r = http::Request::new(());
        for (k, v) in headers {
            r.headers_mut().insert(*k, v.parse().unwrap());
        }
        caller_key(&r)
    };
    assert_eq!(req(&[("remote_ip", "10.0.0.1:4242")]), "ip:10.0.0.1");
    assert_eq!(req(&[("remote_ip", "[::1]:123")]), "ip:::1");
    assert_eq!(req(&[("user_id", " user-7 ")]), "user:user-7");
    // Blank or over-long names are no names: the next thing known keys the call.
    assert_eq!(
        req(&[("user_id", "  "), ("username", "alice")]),
        "username:alice"
    );
    let long = "u".repeat(gitrpc_proto::identity::MAX_FIELD + 1);
    assert_eq!(
        req(&[("user_id", long.as_str()), ("remote_ip", "10.0.0.1")]),
        "ip:10.0.0.1"
    );
}

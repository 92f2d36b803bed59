//! `[[rate_limiting]]` through a real server's layer stack (in-process dispatch), on tokio's
//! paused clock, so arrivals and delays are exact: 10 calls a second (interval 100 ms),
//! burst 5, 50 calls of one user at once. The k-th (0-based) is served after
//! max(0, k − 4) × 100 ms, so `max_delay` D serves 5 + floor(D / 100 ms) of them and refuses
//! the rest at once: D = 5 s serves all 50 (the last after 4.5 s), D = 3 s serves 35,
//! D = 0.5 s serves 10 (see `src/ratelimit/tests.rs` for calls spread over a second, and
//! why the "all served at max_delay 3 s" can't hold).

use std::time::Duration;

use gitrpc_client::Client;
use gitrpc_proto::gitaly::ref_service_client::RefServiceClient;
use gitrpc_proto::gitaly::RefExistsRequest;
use gitrpc_proto::identity::Identity;
use gitrpc_server::config::RateLimitingConfig;
use tonic::Code;

use crate::common::*;

const REF_EXISTS: &str = "/gitaly.RefService/RefExists";

/// One call as `user`: its code and when it finished (from `t0`).
async fn ref_exists(
    client: &Client,
    user: &str,
    t0: tokio::time::Instant,
) -> (Result<(), tonic::Status>, Duration) {
    let mut rpc = RefServiceClient::new(client.transport());
    let mut req = tonic::Request::new(RefExistsRequest {
        repository: Some(repository()),
        r#ref: b"refs/heads/main".to_vec(),
    });
    Identity {
        gl_id: user.into(),
        ..Default::default()
    }
    .apply(req.metadata_mut());
    let r = rpc.ref_exists(req).await.map(|_| ());
    (r, t0.elapsed())
}

fn repository() -> gitrpc_proto::gitaly::Repository {
    gitrpc_proto::gitaly::Repository {
        storage_name: STORAGE.into(),
        relative_path: "r.git".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn fifty_at_once_are_smoothed_then_refused() {
    const MS: Duration = Duration::from_millis(1);
    for (max_delay, served) in [(5000 * MS, 50), (3000 * MS, 35), (500 * MS, 10)] {
        let dir = tempfile::tempdir().unwrap();
        let s = serving(dir.path(), |c| {
            c.rate_limiting = vec![RateLimitingConfig {
                rpc: REF_EXISTS.into(),
                interval: 100 * MS,
                burst: 5,
                max_delay,
            }]
        })
        .await;
        Fixture::create(&dir.path().join("storage/r.git"), "sha1");
        let client = Client::from_service(s.in_process(), None);
        tokio::time::pause();
        let t0 = tokio::time::Instant::now();
        let calls = (0..50).map(|_| ref_exists(&client, "user-7", t0));
        let (results, other) = tokio::join!(
            futures::future::join_all(calls),
            // Another user has a bucket of its own: served at once.
            ref_exists(&client, "user-8", t0)
        );
        tokio::time::resume();
        assert!(other.0.is_ok() && other.1.is_zero(), "{other:?}");
        let mut ok: Vec<Duration> = results
            .iter()
            .filter(|(r, _)| r.is_ok())
            .map(|(_, t)| *t)
            .collect();
        ok.sort();
        assert_eq!(ok.len(), served, "max_delay {max_delay:?}");
        // Served after exactly the computed delay (tokio's timer fires on whole
        // milliseconds, so up to 1 ms late)...
        for (k, t) in ok.iter().enumerate() {
            let want = 100 * MS * (k as u32).saturating_sub(4);
            assert!(
                *t >= want && *t <= want + MS,
                "call {k}: {t:?}, not {want:?}"
            );
        }
        // ... which the limiter decided to the nanosecond.
        let limiter = &s.deps().limits.rate[REF_EXISTS];
        let mut delays: Vec<u64> = limiter
            .recent()
            .iter()
            .filter(|d| d.key == "user:user-7" && d.admitted)
            .map(|d| d.delay_ns)
            .collect();
        delays.sort();
        let want: Vec<u64> = (0..served as u64)
            .map(|k| k.saturating_sub(4) * 100_000_000)
            .collect();
        assert_eq!(delays, want);
        for (r, t) in results.iter().filter(|(r, _)| r.is_err()) {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
            assert_eq!(e.message(), format!("{REF_EXISTS}: rate limit reached"));
            let detail = gitrpc_proto::limit::limit_error(e).expect("a LimitError detail");
            assert_eq!(detail.error_message, "rate limit reached");
            assert!(t.is_zero(), "refused after {t:?}, not at once");
        }
        let metrics = gitrpc_server::metrics::encode(&s.deps().metrics);
        let line = |name: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(&format!("{name}{{rpc=\"{REF_EXISTS}\"}}")))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
        };
        assert_eq!(
            line("gitrpc_rate_limit_admitted_total"),
            served as f64 + 1.0
        );
        assert_eq!(
            line("gitrpc_rate_limit_refused_total"),
            50.0 - served as f64
        );
        assert_eq!(
            line("gitrpc_rate_limit_delay_seconds_count"),
            served as f64 + 1.0
        );
        // Six calls did not wait (five of user-7's burst and user-8's); the histogram's
        // first bucket is 0.
        assert!(
            metrics.contains(&format!(
                "gitrpc_rate_limit_delay_seconds_bucket{{rpc=\"{REF_EXISTS}\",le=\"0\"}} 6"
            )),
            "{metrics}"
        );
        s.stop(Duration::from_secs(5)).await;
    }
}

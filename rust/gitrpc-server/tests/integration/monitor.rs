use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gitrpc_client::{client::repository, Client, Options};
use gitrpc_proto::gitaly::commit_service_client::CommitServiceClient;
use gitrpc_proto::gitaly::CommitIsAncestorRequest;
use gitrpc_server::config::{ConcurrencyConfig, Config};
use gitrpc_server::Serving;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::common::*;

const IS_ANCESTOR: &str = "/gitaly.CommitService/CommitIsAncestor";

fn config(dir: &tempfile::TempDir) -> Config {
    Config {
        prometheus_listen_addr: Some("127.0.0.1:0".into()),
        ..socket_config(dir)
    }
}

/// A plain blocking HTTP GET (what a scraper does); returns (status line, body).
fn get(url: &str, path: &str) -> (String, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of one sample line (`name{labels} value`) in a Prometheus exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// With every worker thread of the server's runtime blocked, gRPC cannot answer (a health
/// check times out) while /metrics and /diagnostics, on their own thread, still do — and show
/// the limiter's state, the calls in flight and the git process table.
#[test]
fn metrics_and_diagnostics_answer_while_grpc_is_jammed() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir);
    cfg.concurrency = vec![ConcurrencyConfig {
        rpc: IS_ANCESTOR.into(),
        max_concurrency: 1,
        max_queue_size: 1,
        max_queue_wait: None,
        adaptive: false,
        min_limit: None,
        max_limit: None,
    }];
    let server = server_rt.block_on(Serving::start(cfg)).unwrap();
    let url = server.monitor_url().unwrap();
    hanging_repo(&dir.path().join("storage"), "hang.git");
    let address = server.addresses()[0].clone();
    let channel = client_rt
        .block_on(gitrpc_client::connect(&address, &Options::default()))
        .unwrap();
    let limiter = server.deps().limits.by_rpc[IS_ANCESTOR].clone();

    // One call runs (its git blocks), one waits, one is refused: started one at a time so
    // we know which is which.
    let wait_until = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "{what}: {:?}",
                limiter.snapshot()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut calls = Vec::new();
    for (d, what) in [("1", "running"), ("2", "queued"), ("3", "refused")] {
        let mut c = CommitServiceClient::new(channel.clone());
        let req = CommitIsAncestorRequest {
            repository: Some(repository(STORAGE, "hang.git")),
            ancestor_id: d.repeat(40),
            child_id: "f".repeat(40),
        };
        calls.push(client_rt.spawn(async move { c.commit_is_ancestor(req).await }));
        wait_until(what, &|| {
            let s = limiter.snapshot();
            match d {
                "1" => s.running == 1 && !git_processes(dir.path(), &"1".repeat(40)).is_empty(),
                "2" => s.queued == 1,
                _ => s.dropped_max_size == 1,
            }
        });
    }

    // Jam the server: block both of its runtime's worker threads. (Unjammed on the way out
    // whatever happens: dropping a runtime whose workers never return would hang.)
    struct Unjam(Arc<AtomicBool>);
    impl Drop for Unjam {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let release = Arc::new(AtomicBool::new(false));
    let _unjam = Unjam(release.clone());
    let blocked = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let (release, blocked) = (release.clone(), blocked.clone());
        server_rt.spawn(async move {
            blocked.fetch_add(1, Ordering::SeqCst);
            while !release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }
    while blocked.load(Ordering::SeqCst) < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let health = |timeout: Duration| {
        let mut h = HealthClient::new(channel.clone());
        client_rt.block_on(async move {
            tokio::time::timeout(timeout, h.check(HealthCheckRequest::default())).await
        })
    };
    assert!(
        health(Duration::from_millis(500)).is_err(),
        "gRPC answered although jammed"
    );

    let started = Instant::now();
    let (status, text) = get(&url, "/metrics");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(status, "HTTP/1.1 200 OK");
    let lim = format!("{{limiter=\"{IS_ANCESTOR}\"}}");
    assert_eq!(
        sample(&text, &format!("gitrpc_limit_current{lim}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("gitrpc_limit_in_flight{lim}")),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, &format!("gitrpc_limit_queued{lim}")),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("gitrpc_limit_dropped_total{{limiter=\"{IS_ANCESTOR}\",reason=\"max_size\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "gitrpc_rpc_requests_total{{method=\"{IS_ANCESTOR}\",code=\"RESOURCE_EXHAUSTED\"}}"
            )
        ),
        Some(1.0)
    );
    assert!(sample(&text, "gitrpc_git_processes_running").unwrap() >= 1.0);
    assert_eq!(sample(&text, "gitrpc_rpcs_in_flight"), Some(2.0));

    let (status, json) = get(&url, "/diagnostics.json");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let d: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rpcs = d["rpcs"].as_array().unwrap();
    assert_eq!(rpcs.len(), 2, "{json}");
    for r in rpcs {
        assert_eq!(r["method"], IS_ANCESTOR);
        assert_eq!(r["repository"], "default/hang.git");
        assert!(r["age_seconds"].as_f64().unwrap() > 0.0);
    }
    let git = d["git_processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["args"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a.as_str().unwrap().contains(&"1".repeat(40)))
                // The table is process-wide: other tests run gits with the same ids.
                && p["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a.as_str().unwrap().contains(dir.path().to_str().unwrap()))
        })
        .expect("the running git in the process table");
    assert_eq!(git["subcommand"], "merge-base");
    assert!(git["pid"].as_i64().unwrap() > 0);
    assert!(git["rss_bytes"].as_u64().unwrap() > 0);
    assert!(["S", "R", "D"].contains(&git["state"].as_str().unwrap()));

    let (_, text) = get(&url, "/diagnostics");
    assert!(text.contains("RPCs in flight: 2"), "{text}");
    assert!(text.contains("default/hang.git"), "{text}");
    assert!(text.contains("merge-base"), "{text}");
    assert_eq!(get(&url, "/nope").0, "HTTP/1.1 404 Not Found");

    // Unjam: gRPC answers again.
    release.store(true, Ordering::SeqCst);
    assert!(health(Duration::from_secs(5)).is_ok());
    for c in calls {
        c.abort();
    }
    server_rt.block_on(server.stop(Duration::from_secs(1)));
}

/// RPC counts by code and latency histograms, per server.
#[tokio::test]
async fn rpc_metrics_count_calls_by_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serving::start(config(&dir)).await.unwrap();
    let url = server.monitor_url().unwrap();
    Fixture::create(&dir.path().join("storage/r.git"), "sha1");
    let client = Client::from_service(server.in_process(), None);
    assert!(client
        .repository_exists(&repository(STORAGE, "r.git"))
        .await
        .unwrap());
    assert!(!client
        .repository_exists(&repository(STORAGE, "missing.git"))
        .await
        .unwrap());
    let err = client
        .find_commit(&repository(STORAGE, "missing.git"), b"main")
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    let exists = "/gitaly.RepositoryService/RepositoryExists";
    let find = "/gitaly.CommitService/FindCommit";
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let url = url.clone();
        let (_, text) = tokio::task::spawn_blocking(move || get(&url, "/metrics"))
            .await
            .unwrap();
        let n = sample(
            &text,
            &format!("gitrpc_rpc_requests_total{{method=\"{find}\",code=\"NOT_FOUND\"}}"),
        );
        if n == Some(1.0) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        sample(
            &text,
            &format!("gitrpc_rpc_requests_total{{method=\"{exists}\",code=\"OK\"}}")
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("gitrpc_rpc_duration_seconds_count{{method=\"{exists}\"}}")
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("gitrpc_rpc_duration_seconds_bucket{{method=\"{exists}\",le=\"+Inf\"}}")
        ),
        Some(2.0)
    );
    assert!(text.contains("# TYPE gitrpc_git_spawn_seconds histogram"));
    assert!(text.contains("# TYPE gitrpc_git_command_max_rss_bytes histogram"));
    assert!(text.contains("gitrpc_git_command_cpu_seconds_total{subcommand="));
    assert!(text.contains("gitrpc_spool_bytes{place=\"memory\"}"));
    assert!(text.contains("gitrpc_catfile_cache_total{result=\"hit\"}"));
    server.stop(Duration::from_secs(1)).await;
}

/// Two servers in one process: each one's /metrics and /diagnostics show its own calls and
/// git processes only (the executor's tables and counters are per server, not global).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_in_one_process_have_separate_metrics() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Serving::start(config(&dir_a)).await.unwrap();
    let b = Serving::start(config(&dir_b)).await.unwrap();
    hanging_repo(&dir_a.path().join("storage"), "hang.git");
    let channel = gitrpc_client::connect(&a.addresses()[0], &Options::default())
        .await
        .unwrap();
    let mut c = CommitServiceClient::new(channel);
    let req = CommitIsAncestorRequest {
        repository: Some(repository(STORAGE, "hang.git")),
        ancestor_id: "1".repeat(40),
        child_id: "f".repeat(40),
    };
    let call = tokio::spawn(async move { c.commit_is_ancestor(req).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.deps().git.processes().count() == 0 {
        assert!(Instant::now() < deadline, "server A's git never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let page =
        |url: String, path: &'static str| tokio::task::spawn_blocking(move || get(&url, path).1);
    let (url_a, url_b) = (a.monitor_url().unwrap(), b.monitor_url().unwrap());
    let (metrics_a, metrics_b) = (
        page(url_a.clone(), "/metrics").await.unwrap(),
        page(url_b.clone(), "/metrics").await.unwrap(),
    );
    let merge_base = "gitrpc_git_commands_started_total{subcommand=\"merge-base\"}";
    assert_eq!(sample(&metrics_a, merge_base), Some(1.0), "{metrics_a}");
    assert_eq!(sample(&metrics_b, merge_base), None, "{metrics_b}");
    assert_eq!(
        sample(&metrics_a, "gitrpc_git_processes_running"),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics_b, "gitrpc_git_processes_running"),
        Some(0.0)
    );
    assert_eq!(sample(&metrics_a, "gitrpc_rpcs_in_flight"), Some(1.0));
    assert_eq!(sample(&metrics_b, "gitrpc_rpcs_in_flight"), Some(0.0));
    let diag = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap();
    let diag_a = diag(page(url_a, "/diagnostics.json").await.unwrap());
    let diag_b = diag(page(url_b, "/diagnostics.json").await.unwrap());
    assert_eq!(
        diag_a["git_processes"].as_array().unwrap().len(),
        1,
        "{diag_a}"
    );
    assert_eq!(diag_a["git_processes"][0]["subcommand"], "merge-base");
    assert!(
        diag_b["git_processes"].as_array().unwrap().is_empty(),
        "{diag_b}"
    );
    assert!(diag_b["rpcs"].as_array().unwrap().is_empty(), "{diag_b}");
    call.abort();
    a.stop(Duration::from_secs(1)).await;
    b.stop(Duration::from_secs(1)).await;
}

//! OptimizeRepository, PruneUnreachableObjects and the background scheduler, against what
//! git says about the repository afterwards (packs, multi-pack-index, commit-graph, fsck).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use gitrpc_proto::gitaly::optimize_repository_request::Strategy;
use gitrpc_proto::gitaly::repository_service_client::RepositoryServiceClient;
use gitrpc_proto::gitaly::*;
use gitrpc_server::Serving;
use tonic::transport::Channel;
use tonic::Code;

use crate::common::*;

async fn channel(server: &Serving) -> Channel {
    gitrpc_client::connect(&server.addresses()[0], &Default::default())
        .await
        .unwrap()
}

/// A server on a temp socket (its config changed by `edit`), its storage and a client.
/// Taken apart as `let Setup { dir, server, storage, c } = ...`: bound in that order, they
/// are dropped in the reverse one (the client first, the directory last).
struct Setup {
    c: RepositoryServiceClient<Channel>,
    server: Serving,
    storage: PathBuf,
    dir: tempfile::TempDir,
}

async fn start(edit: impl FnOnce(&mut gitrpc_server::config::Config)) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = serving(dir.path(), edit).await;
    let storage = server
        .deps()
        .locator
        .storage(STORAGE)
        .unwrap()
        .to_path_buf();
    let c = RepositoryServiceClient::new(channel(&server).await);
    Setup {
        c,
        server,
        storage,
        dir,
    }
}

fn repo(rel: &str) -> Repository {
    Repository {
        storage_name: STORAGE.into(),
        relative_path: rel.into(),
        ..Default::default()
    }
}

async fn optimize(
    c: &mut RepositoryServiceClient<Channel>,
    rel: &str,
    strategy: i32,
) -> Result<(), tonic::Status> {
    c.optimize_repository(OptimizeRepositoryRequest {
        repository: Some(repo(rel)),
        strategy,
    })
    .await
    .map(|_| ())
}

/// One sample of the server's metrics (`name{labels}` as printed), 0 if absent.
fn metric(server: &Serving, series: &str) -> f64 {
    let text = gitrpc_server::metrics::encode(&server.deps().metrics);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn count(dir: &Path, pred: impl Fn(&str) -> bool) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| pred(&e.file_name().to_string_lossy()))
                .count()
        })
        .unwrap_or(0)
}

fn loose_objects(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum()
}

fn fsck(repo: &Path) {
    git(repo, &["fsck", "--no-progress", "--no-dangling"]);
}

/// Wait up to `timeout` (generous: the machine is loaded) for `f`.
async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn heuristical_then_eager() {
    let Setup {
        dir: _dir,
        server,
        storage,
        mut c,
    } = start(|_| {}).await;
    let path = storage.join("a.git");
    let f = Fixture::create(&path, "sha1");
    let head = f.rev_parse("main");
    assert!(loose_objects(&path) > 0);

    // Loose objects only, no multi-pack-index: a geometric repack writes one; the graph is
    // written as a chain with Bloom filters.
    optimize(&mut c, "a.git", Strategy::Unspecified as i32)
        .await
        .unwrap();
    assert_eq!(loose_objects(&path), 0);
    assert!(path.join("objects/pack/multi-pack-index").exists());
    assert!(path
        .join("objects/info/commit-graphs/commit-graph-chain")
        .exists());
    assert!(!path.join(".gitaly-full-repack-timestamp").exists());
    let succeeded_once = |tasks: &[&str]| {
        for task in tasks {
            let series = format!(
                "gitrpc_housekeeping_tasks_total{{housekeeping_task=\"{task}\",status=\"success\"}}"
            );
            assert_eq!(metric(&server, &series), 1.0, "{task}");
        }
    };
    succeeded_once(&[
        "packed_objects_geometric",
        "written_commit_graph_full",
        "total",
    ]);
    fsck(&path);

    // Nothing left to do: a second heuristical optimization runs no git.
    let started = |sub: &str| {
        metric(
            &server,
            &format!("gitrpc_git_commands_started_total{{subcommand=\"{sub}\"}}"),
        )
    };
    let repacks = started("repack");
    optimize(&mut c, "a.git", Strategy::Heuristical as i32)
        .await
        .unwrap();
    assert_eq!(started("repack"), repacks);
    assert_eq!(started("commit-graph"), 1.0);

    // Eager: one full pack (with a bitmap), packed refs, a new chain, the timestamp.
    optimize(&mut c, "a.git", Strategy::Eager as i32)
        .await
        .unwrap();
    assert_eq!(
        count(&path.join("objects/pack"), |n| n.ends_with(".pack")),
        1
    );
    assert!(count(&path.join("objects/pack"), |n| n.ends_with(".bitmap")) >= 1);
    assert!(path.join(".gitaly-full-repack-timestamp").exists());
    assert!(!path.join("refs/heads/main").exists(), "refs not packed");
    assert!(std::fs::read_to_string(path.join("packed-refs"))
        .unwrap()
        .contains("refs/heads/main"));
    succeeded_once(&[
        "packed_objects_full_with_cruft",
        "packed_refs",
        "pruned_objects",
    ]);
    fsck(&path);
    assert_eq!(f.rev_parse("main"), head);
    assert_eq!(git(&path, &["rev-list", "--count", "--all"]).trim(), "5");
    // The step timings are in the histogram.
    let text = gitrpc_server::metrics::encode(&server.deps().metrics);
    assert!(
        text.contains("gitrpc_housekeeping_task_seconds_count{housekeeping_task=\"repack\"} 2"),
        "{text}"
    );
}

/// A request of [`bad_requests_spawn_nothing`].
enum Call {
    Optimize(Option<Repository>, i32),
    Prune(Repository),
}

#[tokio::test]
async fn bad_requests_spawn_nothing() {
    let Setup {
        dir: _dir,
        server,
        storage,
        mut c,
    } = start(|_| {}).await;
    let path = storage.join("a.git");
    Fixture::create(&path, "sha1");
    Fixture::create(&storage.join("@pools/aa/bb.git"), "sha1");
    let elsewhere = Repository {
        storage_name: "nope".into(),
        ..repo("a.git")
    };
    let cases = [
        (
            Call::Optimize(Some(repo("a.git")), 7),
            Code::InvalidArgument,
            "unsupported optimization strategy 7",
        ),
        (
            Call::Optimize(Some(repo("a.git")), Strategy::Offloading as i32),
            Code::Unimplemented,
            "offloading feature not enabled",
        ),
        (
            Call::Optimize(Some(repo("a.git")), Strategy::Rehydration as i32),
            Code::Unimplemented,
            "offloading feature not enabled",
        ),
        (
            Call::Optimize(Some(repo("missing.git")), 0),
            Code::NotFound,
            "repository not found: \"missing.git\"",
        ),
        (
            Call::Optimize(Some(repo("../x.git")), 0),
            Code::InvalidArgument,
            "relative path escapes root directory: \"../x.git\"",
        ),
        (
            Call::Optimize(None, 0),
            Code::InvalidArgument,
            "empty Repository",
        ),
        (
            Call::Prune(elsewhere),
            Code::InvalidArgument,
            "storage not found: \"nope\"",
        ),
        // Object pools are never pruned.
        (
            Call::Prune(repo("@pools/aa/bb.git")),
            Code::InvalidArgument,
            "pruning objects for object pool",
        ),
    ];
    for (call, code, message) in cases {
        let e = match call {
            Call::Optimize(repository, strategy) => c
                .optimize_repository(OptimizeRepositoryRequest {
                    repository,
                    strategy,
                })
                .await
                .map(|_| ()),
            Call::Prune(r) => c
                .prune_unreachable_objects(PruneUnreachableObjectsRequest {
                    repository: Some(r),
                })
                .await
                .map(|_| ()),
        }
        .unwrap_err();
        assert_eq!((e.code(), e.message()), (code, message));
    }
    assert_eq!(
        metric(
            &server,
            "gitrpc_git_spawn_seconds_count{subcommand=\"repack\"}",
        ),
        0.0
    );
    assert!(!path.join("objects/pack/multi-pack-index").exists());
    assert_eq!(
        metric(&server, "gitrpc_housekeeping_running"),
        0.0,
        "a claim leaked"
    );
}

#[tokio::test]
async fn one_optimization_per_repository_across_processes() {
    let Setup {
        dir: _dir,
        server: _server,
        storage,
        mut c,
    } = start(|_| {}).await;
    let path = storage.join("a.git");
    Fixture::create(&path, "sha1");
    // Another process (an embedded server in another Puma worker, say) optimizes it: it
    // holds the flock on the repository directory.
    let other = std::fs::File::open(&path).unwrap();
    // SAFETY: flock(2) on a descriptor we own.
    assert_eq!(
        unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    for call in 0..2 {
        let e = match call {
            0 => optimize(&mut c, "a.git", 0).await.unwrap_err(),
            _ => c
                .prune_unreachable_objects(PruneUnreachableObjectsRequest {
                    repository: Some(repo("a.git")),
                })
                .await
                .unwrap_err(),
        };
        assert_eq!(e.code(), Code::AlreadyExists);
        assert_eq!(e.message(), "housekeeping already executing for repository");
    }
    drop(other);
    // Closing our descriptor releases the lock once no other copy of it is open: a process
    // another test spawns at that moment holds a copy until its exec closes it (O_CLOEXEC),
    // which on a loaded machine can take a while. So: free again within seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match optimize(&mut c, "a.git", 0).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::AlreadyExists && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("optimize after the other process let go: {e:?}"),
        }
    }
    assert!(path.join("objects/pack/multi-pack-index").exists());
}

#[tokio::test]
async fn a_running_optimization_is_shown_exclusive_and_cancellable() {
    let Setup {
        dir,
        server,
        storage,
        mut c,
    } = start(|_| {}).await;
    // Every git that reads objects here blocks on the alternates FIFO (an eager optimization
    // starts with a full repack).
    hanging_repo(&storage, "hang.git");
    let mut c2 = c.clone();
    let call = tokio::spawn(async move { optimize(&mut c2, "hang.git", 2).await });
    let deps = server.deps().clone();
    eventually(
        "the optimization shows as running",
        Duration::from_secs(20),
        || {
            let d = gitrpc_server::monitor::diagnostics(&deps);
            d.housekeeping.running.iter().any(|r| {
                r.repository == "default/hang.git" && r.step == "repack" && r.origin == "rpc"
            })
        },
    )
    .await;
    assert_eq!(metric(&server, "gitrpc_housekeeping_running"), 1.0);
    let text = gitrpc_server::monitor::diagnostics_text(&deps);
    assert!(text.contains("default/hang.git"), "{text}");
    // A second one is refused at once.
    let e = optimize(&mut c, "hang.git", 0).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    // The client gives up: git is killed, the repository is free again.
    call.abort();
    eventually("repack killed", Duration::from_secs(20), || {
        git_processes(dir.path(), "repack").is_empty()
            && deps.scheduler.optimizer().running().is_empty()
    })
    .await;
    assert_eq!(metric(&server, "gitrpc_housekeeping_running"), 0.0);
}

/// `git hash-object -w` of `content`: a loose object nothing references.
fn unreachable_blob(repo: &Path, content: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), content).unwrap();
    let f = work.path().join("f");
    git(
        work.path(),
        &[
            "--git-dir",
            repo.to_str().unwrap(),
            "hash-object",
            "-w",
            f.to_str().unwrap(),
        ],
    )
    .trim()
    .to_string()
}

fn object_path(repo: &Path, oid: &str) -> std::path::PathBuf {
    repo.join("objects").join(&oid[..2]).join(&oid[2..])
}

fn has_object(repo: &Path, oid: &str) -> bool {
    git_output(repo, &["cat-file", "-e", oid]).status.success()
}

#[tokio::test]
async fn prune_removes_only_unreachable_objects_past_the_grace_period() {
    let Setup {
        dir: _dir,
        server: _server,
        storage,
        mut c,
    } = start(|_| {}).await;
    let path = storage.join("a.git");
    let f = Fixture::create(&path, "sha1");
    let reachable: Vec<String> = git(&path, &["rev-list", "--objects", "--all"])
        .lines()
        .map(|l| l[..40].to_string())
        .collect();
    let old: Vec<String> = (0..3)
        .map(|i| unreachable_blob(&path, &format!("old {i}\n")))
        .collect();
    let new: Vec<String> = (0..3)
        .map(|i| unreachable_blob(&path, &format!("new {i}\n")))
        .collect();
    for oid in &old {
        let file = std::fs::File::open(object_path(&path, oid)).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }
    c.prune_unreachable_objects(PruneUnreachableObjectsRequest {
        repository: Some(repo("a.git")),
    })
    .await
    .unwrap();
    for oid in &old {
        assert!(!has_object(&path, oid), "{oid} (an hour old) survived");
    }
    for oid in new.iter().chain(&reachable) {
        assert!(has_object(&path, oid), "{oid} was pruned");
    }
    // The recent unreachable ones went into a cruft pack; a new commit-graph chain.
    assert_eq!(
        count(&path.join("objects/pack"), |n| n.ends_with(".mtimes")),
        1
    );
    assert!(path
        .join("objects/info/commit-graphs/commit-graph-chain")
        .exists());
    fsck(&path);
    assert_eq!(f.rev_parse("main").len(), 40);
}

#[tokio::test]
async fn the_scheduler_optimizes_after_n_writes() {
    let Setup {
        dir: _dir,
        server,
        storage,
        mut c,
    } = start(|c| c.housekeeping.after_writes = 3).await;
    let f = Fixture::create(&storage.join("a.git"), "sha1");
    Fixture::create(&storage.join("b.git"), "sha1");
    let head = f.rev_parse("main");
    let writer = c.clone();
    let write = |rel: &'static str, name: String| {
        let mut c = writer.clone();
        let head = head.clone();
        async move {
            c.write_ref(WriteRefRequest {
                repository: Some(repo(rel)),
                r#ref: name.into_bytes(),
                revision: head.into_bytes(),
                old_revision: Vec::new(),
            })
            .await
        }
    };
    let scheduled = || {
        metric(
            &server,
            "gitrpc_housekeeping_scheduled_total{reason=\"writes\"}",
        )
    };
    // Two writes, a failed one (bad input) and reads: nothing yet.
    write("a.git", "refs/heads/w1".into()).await.unwrap();
    write("a.git", "refs/heads/w2".into()).await.unwrap();
    assert_eq!(
        write("a.git", "HEAD~".into()).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    c.repository_size(RepositorySizeRequest {
        repository: Some(repo("a.git")),
    })
    .await
    .unwrap();
    // Writes to another repository count for it.
    write("b.git", "refs/heads/x".into()).await.unwrap();
    // So do maintenance RPCs: not at all.
    optimize(&mut c, "b.git", Strategy::Heuristical as i32)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(scheduled(), 0.0);
    assert!(!storage.join("a.git/objects/pack/multi-pack-index").exists());
    // The third write queues one, run in the background.
    write("a.git", "refs/heads/w3".into()).await.unwrap();
    eventually("scheduled", Duration::from_secs(10), || scheduled() == 1.0).await;
    eventually(
        "background optimization of a.git",
        Duration::from_secs(60),
        || {
            storage.join("a.git/objects/pack/multi-pack-index").exists()
                && server.deps().scheduler.optimizer().running().is_empty()
        },
    )
    .await;
    assert_eq!(
        metric(
            &server,
            "gitrpc_housekeeping_tasks_total{housekeeping_task=\"total\",status=\"success\"}"
        ),
        2.0
    );
    fsck(&storage.join("a.git"));
}

#[tokio::test]
async fn the_daily_window_walks_every_repository() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    for r in ["a.git", "g/b.git", "g/h/c.git"] {
        Fixture::create(&storage.join(r), "sha1");
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (hour, minute) = ((now % 86400 / 3600) as u32, (now % 3600 / 60) as u32);
    let server = serving(dir.path(), |c| {
        c.housekeeping.after_writes = 0;
        c.daily_maintenance = Some(gitrpc_server::config::DailyMaintenance {
            start_hour: hour,
            start_minute: minute,
            duration: Duration::from_secs(600),
            storages: None,
            disabled: false,
        });
    })
    .await;
    eventually("three optimizations", Duration::from_secs(60), || {
        metric(
            &server,
            "gitrpc_housekeeping_tasks_total{housekeeping_task=\"total\",status=\"success\"}",
        ) == 3.0
    })
    .await;
    assert_eq!(
        metric(
            &server,
            "gitrpc_housekeeping_scheduled_total{reason=\"daily\"}"
        ),
        3.0
    );
    for r in ["a.git", "g/b.git", "g/h/c.git"] {
        assert!(
            storage
                .join(r)
                .join("objects/pack/multi-pack-index")
                .exists(),
            "{r}"
        );
    }
    let d = gitrpc_server::monitor::diagnostics(server.deps());
    let (start, end) = d.housekeeping.daily_window.unwrap();
    assert!(start <= now + 1 && end - start == 600, "{start}..{end}");
}

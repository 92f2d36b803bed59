//! The mixed load: each family is an open loop at a fixed rate (a call starts on every tick
//! whatever the previous ones do, up to a cap of calls in flight; a tick over the cap is
//! counted as skipped), so a slow server shows as latency, not as less load.
//!
//! | family | calls |
//! |---|---|
//! | reads | RefExists, FindCommit, TreeEntry, GetBlob on `reads.git` (answers checked) |
//! | listings | FindLocalBranches, ListRefs, ListCommits (100) on `reads.git` |
//! | operations | WriteRef of a branch of `push.git` (OperationService isn't served yet) |
//! | cancelled | ListCommits of the whole history dropped after the first page; CountCommits with a 2 ms deadline |
//! | clones | `git clone --bare` of `clone.git` through `gitrpc-ssh` (its `main` checked) |
//! | pushes | `git push` of a new commit to a pusher's own branch of `push.git` through `gitrpc-ssh` |
//! | maintenance | OptimizeRepository (heuristical) of `push.git` |
//!
//! In a fault run every read-only call is retried until it succeeds (or 60 s pass): clients
//! of read-only RPCs recover by retry. Writes are not retried; a push is recorded only when
//! `git push` said it succeeded.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitrpc_client::gitaly::*;
use gitrpc_client::Client;
use tokio_stream::StreamExt;
use tonic::{Code, Status};

use crate::repo::Samples;

pub const FAMILIES: [&str; 7] = [
    "reads",
    "listings",
    "operations",
    "cancelled",
    "clones",
    "pushes",
    "maintenance",
];
const READS: usize = 0;
const LISTINGS: usize = 1;
const OPERATIONS: usize = 2;
const CANCELLED: usize = 3;
const CLONES: usize = 4;
const PUSHES: usize = 5;
const MAINTENANCE: usize = 6;

/// One finished call.
#[derive(Clone, Copy)]
pub struct Rec {
    pub family: u8,
    /// Seconds since the load started, at the call's end.
    pub at: f32,
    pub ms: f32,
    pub ok: bool,
}

/// Everything the families share.
pub struct Ctx {
    pub client: Client,
    pub samples: Arc<Samples>,
    pub started: Instant,
    pub faults: bool,
    /// `GIT_SSH_COMMAND` reaching the server.
    pub ssh: String,
    pub scratch: PathBuf,
    pub recs: Mutex<Vec<Rec>>,
    /// Wrong answers, failed writes outside a fault run, reads that never recovered.
    pub wrong: Mutex<Vec<String>>,
    pub wrong_count: AtomicU64,
    pub skipped: [AtomicU64; 7],
    in_flight: [AtomicU64; 7],
    /// (branch, sha) of every push `git push` reported successful.
    pub pushed: Mutex<Vec<(String, String)>>,
    pushers: Vec<Mutex<PathBuf>>,
    pub stop: AtomicBool,
    /// Longest a read-only call needed to recover (fault runs).
    pub max_recovery_ms: AtomicU64,
    /// Read-only calls (and clones) that failed at first and succeeded on a retry.
    pub recovered: AtomicU64,
}

fn repo(rel: &str) -> Repository {
    gitrpc_client::client::repository("default", rel)
}

fn client_git(ssh: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_SSH_COMMAND", ssh)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Soak")
        .env("GIT_AUTHOR_EMAIL", "soak@example.com")
        .env("GIT_COMMITTER_NAME", "Soak")
        .env("GIT_COMMITTER_EMAIL", "soak@example.com")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

type Answer = Result<Result<(), String>, Status>;

impl Ctx {
    pub fn new(
        client: Client,
        samples: Arc<Samples>,
        faults: bool,
        ssh: String,
        scratch: PathBuf,
        pushers: usize,
    ) -> Arc<Ctx> {
        let mut dirs = Vec::new();
        for p in 0..pushers {
            let dir = scratch.join(format!("pusher-{p}"));
            std::fs::create_dir_all(&dir).unwrap();
            let out = client_git(
                &ssh,
                &dir,
                &["clone", "-q", "ssh://gitrpc/default/push.git", "w"],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            dirs.push(Mutex::new(dir.join("w")));
        }
        Arc::new(Ctx {
            client,
            samples,
            started: Instant::now(),
            faults,
            ssh,
            scratch,
            recs: Mutex::new(Vec::new()),
            wrong: Mutex::new(Vec::new()),
            wrong_count: AtomicU64::new(0),
            skipped: Default::default(),
            in_flight: Default::default(),
            pushed: Mutex::new(Vec::new()),
            pushers: dirs,
            stop: AtomicBool::new(false),
            max_recovery_ms: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
        })
    }

    fn record(&self, family: usize, t: Instant, ok: bool) {
        let r = Rec {
            family: family as u8,
            at: self.started.elapsed().as_secs_f32(),
            ms: t.elapsed().as_secs_f32() * 1000.0,
            ok,
        };
        self.recs.lock().unwrap().push(r);
    }

    fn wrong(&self, what: String) {
        self.wrong_count.fetch_add(1, Ordering::Relaxed);
        let mut w = self.wrong.lock().unwrap();
        if w.len() < 50 {
            w.push(what);
        }
    }

    /// Run a read-only call: once, or in a fault run until it answers (at most 60 s). An
    /// answer is `Ok(Err(why))` when it was wrong.
    async fn read<F, Fut>(&self, family: usize, what: &str, call: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Answer>,
    {
        let t = Instant::now();
        let mut retried = false;
        loop {
            match call().await {
                Ok(Ok(())) => {
                    if retried {
                        let ms = t.elapsed().as_millis() as u64;
                        self.max_recovery_ms.fetch_max(ms, Ordering::Relaxed);
                        self.recovered.fetch_add(1, Ordering::Relaxed);
                    }
                    return self.record(family, t, true);
                }
                Ok(Err(why)) => {
                    self.wrong(format!("{what}: {why}"));
                    return self.record(family, t, false);
                }
                Err(_) if self.faults && t.elapsed() < Duration::from_secs(60) => {
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    // Outside a fault run no read may fail; in one, none may stay failed.
                    match self.faults {
                        true => self.wrong(format!("{what}: not recovered after 60 s: {e:?}")),
                        false => self.wrong(format!("{what}: {e:?}")),
                    }
                    return self.record(family, t, false);
                }
            }
        }
    }
}

/// The call of `family` number `k` (a pseudo-random number picks its arguments).
pub async fn call(ctx: Arc<Ctx>, family: usize, k: u64) {
    let s = ctx.samples.clone();
    let pick = |n: usize| (k % n as u64) as usize;
    let reads = repo("reads.git");
    match family {
        READS => {
            let c = &ctx.client;
            match k % 4 {
                0 => {
                    let r = &s.refs[pick(s.refs.len())];
                    ctx.read(READS, r, || async {
                        let yes = c.ref_exists(&reads, r).await?;
                        Ok(if yes { Ok(()) } else { Err("false".into()) })
                    })
                    .await
                }
                1 => {
                    let id = &s.commits[pick(s.commits.len())];
                    ctx.read(READS, id, || async {
                        let got = c.find_commit(&reads, id.as_bytes()).await?.map(|c| c.id);
                        Ok(if got.as_ref() == Some(id) {
                            Ok(())
                        } else {
                            Err(format!("{got:?}"))
                        })
                    })
                    .await
                }
                2 => {
                    let (commit, path, oid, _) = &s.entries[pick(s.entries.len())];
                    ctx.read(READS, path, || async {
                        let got = c
                            .tree_entry(&reads, commit.as_bytes(), path.as_bytes(), 0)
                            .await?;
                        let got = got.map(|e| e.oid);
                        Ok(if got.as_ref() == Some(oid) {
                            Ok(())
                        } else {
                            Err(format!("{got:?}"))
                        })
                    })
                    .await
                }
                _ => {
                    let (_, _, oid, size) = &s.entries[pick(s.entries.len())];
                    ctx.read(READS, oid, || async {
                        let got = c.get_blob(&reads, oid, -1).await?;
                        let got = got.map(|b| (b.oid, b.data.len() as i64));
                        let want = Some((oid.clone(), *size));
                        Ok(if got == want {
                            Ok(())
                        } else {
                            Err(format!("{got:?}"))
                        })
                    })
                    .await
                }
            }
        }
        LISTINGS => {
            let c = &ctx.client;
            let (want_branches, want_refs) = (
                s.refs
                    .iter()
                    .filter(|r| r.starts_with("refs/heads/"))
                    .count(),
                s.refs.len(),
            );
            match k % 3 {
                0 => {
                    ctx.read(LISTINGS, "FindLocalBranches", || async {
                        let n = c.branches(&reads).await?.len();
                        Ok(if n == want_branches {
                            Ok(())
                        } else {
                            Err(format!("{n} branches"))
                        })
                    })
                    .await
                }
                1 => {
                    ctx.read(LISTINGS, "ListRefs", || async {
                        let mut rs = c.ref_service();
                        let mut st = rs
                            .list_refs(ListRefsRequest {
                                repository: Some(reads.clone()),
                                patterns: vec![b"refs/".to_vec()],
                                ..Default::default()
                            })
                            .await?
                            .into_inner();
                        let mut n = 0;
                        while let Some(m) = st.next().await {
                            n += m?.references.len();
                        }
                        Ok(if n == want_refs {
                            Ok(())
                        } else {
                            Err(format!("{n} refs"))
                        })
                    })
                    .await
                }
                _ => {
                    ctx.read(LISTINGS, "ListCommits", || async {
                        let mut cs = c.commit_service();
                        let mut st = cs
                            .list_commits(ListCommitsRequest {
                                repository: Some(reads.clone()),
                                revisions: vec!["main".into()],
                                pagination_params: Some(PaginationParameter {
                                    page_token: String::new(),
                                    limit: 100,
                                }),
                                ..Default::default()
                            })
                            .await?
                            .into_inner();
                        let mut n = 0;
                        while let Some(m) = st.next().await {
                            n += m?.commits.len();
                        }
                        Ok(if n == 100 {
                            Ok(())
                        } else {
                            Err(format!("{n} commits"))
                        })
                    })
                    .await
                }
            }
        }
        OPERATIONS => {
            let t = Instant::now();
            let target = &s.clone_head;
            let mut rs = ctx.client.repository_service();
            let res = rs
                .write_ref(WriteRefRequest {
                    repository: Some(repo("push.git")),
                    r#ref: format!("refs/heads/op-{:02}", k % 50).into_bytes(),
                    revision: target.clone().into_bytes(),
                    old_revision: Vec::new(),
                })
                .await;
            if let (Err(e), false) = (&res, ctx.faults) {
                ctx.wrong(format!("WriteRef: {e:?}"));
            }
            ctx.record(OPERATIONS, t, res.is_ok());
        }
        CANCELLED => {
            let t = Instant::now();
            let mut cs = ctx.client.commit_service();
            if k.is_multiple_of(2) {
                // The whole history, dropped after the first page.
                if let Ok(r) = cs
                    .list_commits(ListCommitsRequest {
                        repository: Some(reads.clone()),
                        revisions: vec!["main".into()],
                        ..Default::default()
                    })
                    .await
                {
                    let mut st = r.into_inner();
                    let _ = st.next().await;
                }
            } else {
                let mut req = tonic::Request::new(CountCommitsRequest {
                    repository: Some(reads.clone()),
                    revisions: vec![b"--all".to_vec()],
                    ..Default::default()
                });
                req.set_timeout(Duration::from_millis(2));
                let _ = cs.count_commits(req).await;
            }
            ctx.record(CANCELLED, t, true);
        }
        CLONES => {
            let c = ctx.clone();
            let _ = tokio::task::spawn_blocking(move || clone(&c)).await;
        }
        PUSHES => {
            let c = ctx.clone();
            let _ = tokio::task::spawn_blocking(move || push(&c, k)).await;
        }
        _ => {
            let t = Instant::now();
            let mut rs = ctx.client.repository_service();
            let res = rs
                .optimize_repository(OptimizeRepositoryRequest {
                    repository: Some(repo("push.git")),
                    strategy: 1,
                })
                .await;
            let ok = match &res {
                Ok(_) => true,
                // The scheduler was optimizing it (pushes count as writes).
                Err(e) if e.code() == Code::AlreadyExists => true,
                Err(e) => {
                    if !ctx.faults {
                        ctx.wrong(format!("OptimizeRepository: {e:?}"));
                    }
                    false
                }
            };
            ctx.record(MAINTENANCE, t, ok);
        }
    }
}

fn clone(ctx: &Ctx) {
    let t = Instant::now();
    let mut attempts = 0;
    loop {
        let dir = tempfile::Builder::new()
            .prefix("clone-")
            .tempdir_in(&ctx.scratch)
            .unwrap();
        let out = client_git(
            &ctx.ssh,
            dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                "ssh://gitrpc/default/clone.git",
                "c.git",
            ],
        );
        if out.status.success() {
            let head = Command::new("git")
                .args(["rev-parse", "main"])
                .current_dir(dir.path().join("c.git"))
                .output()
                .unwrap();
            let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
            if head != ctx.samples.clone_head {
                ctx.wrong(format!("clone: main is {head}"));
                return ctx.record(CLONES, t, false);
            }
            if attempts > 0 {
                let ms = t.elapsed().as_millis() as u64;
                ctx.max_recovery_ms.fetch_max(ms, Ordering::Relaxed);
                ctx.recovered.fetch_add(1, Ordering::Relaxed);
            }
            return ctx.record(CLONES, t, true);
        }
        attempts += 1;
        if !ctx.faults || t.elapsed() > Duration::from_secs(60) {
            ctx.wrong(format!(
                "clone: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            return ctx.record(CLONES, t, false);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn push(ctx: &Ctx, k: u64) {
    let slot = (k as usize) % ctx.pushers.len();
    let Ok(w) = ctx.pushers[slot].try_lock() else {
        ctx.skipped[PUSHES].fetch_add(1, Ordering::Relaxed);
        return;
    };
    let t = Instant::now();
    let branch = format!("refs/heads/pusher-{slot}");
    std::fs::write(w.join("soak.txt"), format!("push {k}\n")).unwrap();
    let add = client_git(&ctx.ssh, &w, &["add", "."]);
    let commit = client_git(&ctx.ssh, &w, &["commit", "-qm", &format!("push {k}")]);
    assert!(add.status.success() && commit.status.success());
    let sha = client_git(&ctx.ssh, &w, &["rev-parse", "HEAD"]);
    let sha = String::from_utf8_lossy(&sha.stdout).trim().to_string();
    let out = client_git(
        &ctx.ssh,
        &w,
        &["push", "-q", "origin", &format!("HEAD:{branch}")],
    );
    if out.status.success() {
        ctx.pushed.lock().unwrap().push((branch, sha));
    } else if !ctx.faults {
        ctx.wrong(format!(
            "push: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    ctx.record(PUSHES, t, out.status.success());
}

/// Returns once `ctx.stop` is set.
async fn stopped(ctx: &Ctx) {
    while !ctx.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Start every family at its rate (calls per second). Returns when `ctx.stop` is set and
/// every call in flight has ended (or 60 s after).
pub async fn run(ctx: Arc<Ctx>, rates: [f64; 7], caps: [u64; 7]) {
    let mut tickers = Vec::new();
    for family in 0..FAMILIES.len() {
        if rates[family] <= 0.0 {
            continue;
        }
        let ctx = ctx.clone();
        let period = Duration::from_secs_f64(1.0 / rates[family]);
        let cap = caps[family];
        tickers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut rng = crate::Rng(0x9E37_79B9 + family as u64);
            loop {
                // A slow family's next tick may be a minute away: don't wait for it to stop.
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped(&ctx) => break,
                }
                if ctx.in_flight[family].load(Ordering::Relaxed) >= cap {
                    ctx.skipped[family].fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                ctx.in_flight[family].fetch_add(1, Ordering::Relaxed);
                let (c, k) = (ctx.clone(), rng.next_u64());
                tokio::spawn(async move {
                    call(c.clone(), family, k).await;
                    c.in_flight[family].fetch_sub(1, Ordering::Relaxed);
                });
            }
        }));
    }
    for t in tickers {
        let _ = t.await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ctx.in_flight.iter().any(|n| n.load(Ordering::Relaxed) > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! Shared dependencies of every service (config, git executor, locator, cat-file pool,
//! limiters, metrics), made once per server from a valid config; and [`Repo`], a located
//! repository with the call's git.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gitrpc_git::objects::Commit;
use gitrpc_git::refs::RefStore;
use gitrpc_git::spool::SpoolConfig;
use gitrpc_git::{
    CatFilePool, CatFilePoolConfig, Command, Git, Lease, ObjectType, Output, Process,
    RefTransaction, Subcommand,
};
use gitrpc_proto::gitaly::Repository;

use crate::accounting::{Call, Rpcs};
use crate::config::{ConfigError, Valid};
use crate::error::Result;
use crate::hooks::{Executables, Hooks, HooksDir};
use crate::limits::Limits;
use crate::locator::Locator;
use crate::metrics::{Families, Sources};
use crate::packcache::PackCache;
use crate::startup::StartError;

pub struct Deps {
    pub config: Valid,
    /// Reports every git it starts to the server's metrics; a call's `Repo` has a clone that
    /// also records them for the call.
    pub git: Git,
    pub locator: Locator,
    pub catfile: CatFilePool,
    pub spool: SpoolConfig,
    /// `core.hooksPath` of every git we start: holds only the hooks we configure.
    pub hooks_dir: HooksDir,
    /// Hooks supplied in code by an embedder.
    pub hooks: Hooks,
    /// The `[hooks]` executables, checked at start-up.
    pub hook_executables: Executables,
    /// Where per-push hook bridges live (`<first storage>/+gitrpc/hooks-run`).
    pub bridge_dir: PathBuf,
    /// Admission control: `[[concurrency]]` and `[pack_objects_limiting]`.
    pub limits: Arc<Limits>,
    /// Calls in flight (diagnostics, log lines); finished ones go to the metrics.
    pub rpcs: Arc<Rpcs>,
    /// This server's metrics (`/metrics`), its own: another server in the process has its
    /// own registry.
    pub metrics: prometheus_client::registry::Registry,
    /// `[auth]`: the v2 token secret, if calls over listeners must carry one.
    pub auth: Option<Arc<crate::auth::Auth>>,
    /// `[connections]`: the cap and counters of connections over listeners.
    pub connections: Arc<crate::conn::Connections>,
    /// Background housekeeping of the storages (stops with these dependencies).
    pub housekeeping: crate::housekeeping::Task,
    /// `[pack_objects_cache]`, when enabled.
    pub packcache: Option<Arc<PackCache>>,
    /// Repository optimization: the RPCs' optimizer and the background scheduler (stops
    /// with these dependencies).
    pub scheduler: Arc<crate::optimize::Scheduler>,
}

impl Deps {
    /// Resolve git, create storage roots, start the cat-file pool. Needs a tokio runtime.
    pub async fn new(config: Valid) -> Result<Arc<Deps>, StartError> {
        Deps::with_hooks(config, Hooks::default()).await
    }

    /// [`Deps::new`] with hooks given in code.
    pub async fn with_hooks(config: Valid, hooks: Hooks) -> Result<Arc<Deps>, StartError> {
        let hook_executables = Executables::from_config(&config.hooks, &hooks)
            .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        let auth = crate::auth::Auth::from_config(&config.auth)?;
        let families = Families::default();
        let git =
            Git::discover_observed(config.git.bin_path.as_deref(), families.git_observer()).await?;
        let locator = Locator::new(&config.storage)?;
        // What a crashed server left (its git, its private files) goes before we serve.
        let roots: Vec<PathBuf> = locator.storages().map(|(_, p)| p.to_path_buf()).collect();
        crate::housekeeping::at_start(roots.clone(), &config.housekeeping).await;
        // A valid config has at least one storage.
        let first_root = roots.first().cloned().unwrap_or_default();
        let internal = first_root.join(crate::tempdir::INTERNAL_DIR);
        let hooks_dir =
            HooksDir::create(&internal, &hook_executables, &hooks).map_err(|source| {
                StartError::Io {
                    what: "hooks directory",
                    source,
                }
            })?;
        let git = git.with_hooks_path(hooks_dir.path());
        let catfile = CatFilePool::new(
            git.clone(),
            CatFilePoolConfig {
                max_idle: config.catfile.max_idle,
                idle_ttl: config.catfile.idle_ttl,
            },
        );
        let spool_dir = config
            .spool
            .dir
            .clone()
            .unwrap_or_else(|| internal.join("spool"));
        if config.spool.enabled {
            if let Err(e) = std::fs::create_dir_all(&spool_dir) {
                tracing::warn!(dir = %spool_dir.display(), error = %e, "spool dir unusable; responses will stream directly");
            }
        }
        let spool = SpoolConfig {
            enabled: config.spool.enabled,
            threshold: config.spool.threshold,
            dir: spool_dir,
            budget: gitrpc_git::spool::Budget::new(config.spool.max_bytes),
        };
        let limits = Arc::new(Limits::from_config(&config));
        let packcache = match config.pack_objects_cache.enabled {
            false => None,
            true => Some(Arc::new(
                PackCache::start(
                    &config.pack_objects_cache,
                    &internal,
                    &internal.join("hooks-run"),
                    limits.clone(),
                    families.packcache.clone(),
                )
                .map_err(|source| StartError::Io {
                    what: "pack-objects cache",
                    source,
                })?,
            )),
        };
        let connections = crate::conn::Connections::new(&config.connections);
        let housekeeping =
            crate::housekeeping::start(roots, config.housekeeping.clone(), git.processes().clone());
        let optimizer = crate::optimize::Optimizer::new(
            catfile.clone(),
            families.housekeeping.clone(),
            config.housekeeping.grace(),
        );
        let scheduler = Arc::new(crate::optimize::Scheduler::start(
            optimizer,
            git.clone(),
            locator.clone(),
            &config.housekeeping,
            config.daily_maintenance.as_ref(),
        ));
        let metrics = families.registry(Sources {
            limits: limits.clone(),
            connections: connections.clone(),
            catfile: catfile.clone(),
            spool: spool.budget.clone(),
            processes: git.processes().clone(),
        });
        Ok(Arc::new(Deps {
            connections,
            housekeeping,
            scheduler,
            auth,
            limits,
            rpcs: Arc::new(Rpcs::new(families.rpc.clone())),
            metrics,
            config,
            git,
            locator,
            catfile,
            spool,
            hooks_dir,
            hooks,
            hook_executables,
            bridge_dir: internal.join("hooks-run"),
            packcache,
        }))
    }

    /// An existing repository (`NOT_FOUND` otherwise), with the git of the call being
    /// served ([`Call::git`]: its commands are recorded for the call's log line), reading
    /// the object directories the request names (only the repository's own quarantines: see
    /// [`crate::quarantine`]).
    pub fn repo(&self, r: Option<&Repository>) -> Result<Repo<'_>> {
        let path = self.locator.repo(r)?;
        let objects = match r {
            Some(r) => crate::quarantine::object_dirs(&path, r)?,
            None => None,
        };
        let git = match Call::current() {
            Some(call) => call.git(&self.git),
            None => self.git.clone(),
        };
        Ok(Repo {
            path,
            repository: r.cloned().unwrap_or_default(),
            deps: self,
            objects,
            git,
        })
    }

    /// An existing repository for an RPC that writes: object directories are refused
    /// (`quarantine configured on a mutator request`).
    pub fn repo_for_write(&self, r: Option<&Repository>) -> Result<Repo<'_>> {
        crate::quarantine::refuse_on_mutator(r)?;
        self.repo(r)
    }
}

/// A located, existing repository and the ways to ask git about it.
pub struct Repo<'a> {
    pub path: PathBuf,
    /// The request's `Repository` message.
    pub repository: Repository,
    pub deps: &'a Deps,
    /// Object directories its git uses instead of its own (a quarantine).
    pub objects: Option<crate::quarantine::ObjectDirs>,
    /// The server's git, observed for the call.
    pub git: Git,
}

impl<'a> Repo<'a> {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A git command that runs in this repository (with its object directories).
    pub fn cmd(&self, sub: Subcommand) -> Command {
        let mut cmd = Command::in_repo(&self.path, sub);
        for (k, v) in self.objects.iter().flat_map(|o| o.env()) {
            cmd = cmd.env(k, v);
        }
        cmd
    }

    /// This repository seen through quarantine `q`: its git commands write there and read
    /// there and from the repository.
    pub fn quarantined(&self, q: &crate::quarantine::Quarantine) -> Repo<'a> {
        Repo {
            path: self.path.clone(),
            repository: self.repository.clone(),
            deps: self.deps,
            objects: Some(q.object_dirs()),
            git: self.git.clone(),
        }
    }

    /// Start `cmd` (see [`Git::spawn`]) with the call's git.
    pub fn spawn(&self, cmd: &Command) -> gitrpc_git::Result<Process> {
        self.git.spawn(cmd)
    }

    /// Run `cmd` to completion and collect its (small) stdout.
    pub async fn output(&self, cmd: &Command) -> gitrpc_git::Result<Output> {
        self.git.output(cmd).await
    }

    /// Run `cmd` to completion with `input` on stdin and collect its (small) stdout.
    pub async fn output_with_input(
        &self,
        cmd: &Command,
        input: &[u8],
    ) -> gitrpc_git::Result<Output> {
        self.git.output_with_input(cmd, input).await
    }

    /// A cat-file process: from the pool, or one of its own (dropped after use) when the
    /// repository is read through other object directories.
    pub fn catfile(&self) -> Result<Lease> {
        match &self.objects {
            None => Ok(self.deps.catfile.get_with(&self.git, &self.path)?),
            Some(o) => Ok(self
                .deps
                .catfile
                .dedicated(&self.git, &self.path, o.env())?),
        }
    }

    /// Run a git that writes refs (`run` builds and runs it). If it fails because a lock
    /// file exists ([`gitrpc_git::Error::is_locked`]), and locks of this repository are stale (older than `[housekeeping]
    /// lock_grace`, no git of ours working here: a git killed mid-update left them), they
    /// are removed and `run` goes once more.
    pub async fn writing_refs<T, F, Fut>(&self, run: F) -> gitrpc_git::Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = gitrpc_git::Result<T>>,
    {
        let result = self.writing_refs_once(run).await;
        // Cached packs of this repository may be stale now (a new tag, say).
        if let Some(cache) = &self.deps.packcache {
            cache.invalidate(&self.path);
        }
        result
    }

    async fn writing_refs_once<T, F, Fut>(&self, run: F) -> gitrpc_git::Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = gitrpc_git::Result<T>>,
    {
        let err = match run().await {
            Err(e) if e.is_locked() => e,
            other => return other,
        };
        let (path, grace) = (self.path.clone(), self.deps.config.housekeeping.lock_grace);
        let processes = self.git.processes().clone();
        let removed = tokio::task::spawn_blocking(move || {
            gitrpc_git::housekeeping::remove_stale_locks(&processes, &path, grace)
        })
        .await;
        match removed {
            Ok(Ok(locks)) if !locks.is_empty() => {
                tracing::warn!(repo = %self.path.display(), ?locks, "removed stale ref locks; retrying");
                run().await
            }
            _ => Err(err),
        }
    }

    /// Start a reference transaction in this repository.
    pub async fn ref_transaction(&self) -> gitrpc_git::Result<RefTransaction> {
        RefTransaction::start_with(&self.git, self.cmd(Subcommand::UpdateRef)).await
    }

    /// Native ref reader, or `None` for non-`files` backends.
    pub fn refs(&self) -> Option<RefStore> {
        RefStore::open(&self.path)
    }

    /// SHA-1 or SHA-256, from the repository's config.
    pub fn object_format(&self) -> gitrpc_git::objects::ObjectFormat {
        gitrpc_git::objects::ObjectFormat::of_repository(&self.path)
    }

    /// The all-zero object id of this repository's hash.
    pub fn zero_oid(&self) -> String {
        self.object_format().zero_oid()
    }

    /// Does a ref exist? Natively for `files` repositories, else via git.
    pub async fn ref_exists(&self, name: &str) -> Result<bool> {
        if let Some(store) = self.refs() {
            return Ok(store.exists(name)?);
        }
        let out = self
            .spawn(
                &self
                    .cmd(Subcommand::ShowRef)
                    .flag("--verify")
                    .flag("--quiet")
                    .arg(name),
            )?
            .wait_status()
            .await?;
        Ok(out.0.success())
    }

    /// Resolve a revision to an object id peeled to `kind` (e.g. a commit); `None` if it
    /// doesn't resolve. Revisions are validated (no leading `-`, NUL, whitespace).
    pub async fn resolve(&self, rev: &[u8], kind: Option<ObjectType>) -> Result<Option<String>> {
        let rev = gitrpc_git::validate::revision(rev)?;
        let object = match kind {
            Some(k) => format!("{rev}^{{{}}}", k.as_str()),
            None => rev.to_string(),
        };
        Ok(self.catfile()?.info(&object).await?.map(|i| i.oid))
    }

    /// Read and parse the commit a revision points at; `None` if there is none.
    pub async fn commit(&self, rev: &[u8]) -> Result<Option<Commit>> {
        let rev = gitrpc_git::validate::revision(rev)?;
        Ok(self
            .catfile()?
            .read_commit(&format!("{rev}^{{commit}}"))
            .await?)
    }
}

//! Configuration: the same TOML for `gitrpcd`, the C API and the Ruby gem. Key names follow
//! Gitaly's `config.toml` where Gitaly has them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod duration;
mod error;
mod housekeeping;
mod limits;
mod packcache;
mod reads;
mod resources;
mod types;
mod validate;
pub use error::ConfigError;
pub use housekeeping::{DailyMaintenance, HousekeepingConfig};
pub use limits::{
    AdaptiveLimiting, ConcurrencyConfig, LimitKey, PackObjectsLimiting, RateLimitingConfig,
};
pub use packcache::PackObjectsCacheConfig;
pub use reads::ReadsConfig;
pub use resources::{open_file_limit, raise_open_file_limit, ConnectionsConfig, TransportConfig};
pub use types::{LogFormat, SocketMode};
pub use validate::Valid;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Unix socket to listen on.
    #[serde(default)]
    pub socket_path: Option<PathBuf>,
    /// TCP `host:port` to listen on (plaintext).
    #[serde(default)]
    pub listen_addr: Option<String>,
    /// TCP `host:port` to listen on with TLS (needs `[tls]`).
    #[serde(default)]
    pub tls_listen_addr: Option<String>,
    /// TCP `host:port` for Prometheus metrics and diagnostics.
    #[serde(default)]
    pub prometheus_listen_addr: Option<String>,
    /// Permissions of the unix socket, an octal string like `"0660"` (default `"0600"`:
    /// only this user).
    #[serde(default)]
    pub socket_mode: SocketMode,
    /// `[auth]`: the token calls over listeners must carry.
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[tls]`: certificate and key for `tls_listen_addr`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub storage: Vec<Storage>,
    #[serde(default)]
    pub git: GitConfig,
    #[serde(default)]
    pub logging: Logging,
    #[serde(default)]
    pub catfile: CatfileConfig,
    #[serde(default)]
    pub spool: SpoolConfig,
    #[serde(default)]
    pub hooks: HooksConfig,
    /// `[housekeeping]`: leftovers of crashes (see `housekeeping.rs`).
    #[serde(default)]
    pub housekeeping: HousekeepingConfig,
    /// `[daily_maintenance]`: a daily window in which every repository is optimized.
    #[serde(default)]
    pub daily_maintenance: Option<DailyMaintenance>,
    /// `[[concurrency]]`: per-RPC limits, keyed per repository.
    #[serde(default)]
    pub concurrency: Vec<ConcurrencyConfig>,
    /// `[pack_objects_limiting]`: git processes generating packs at once (all repositories).
    #[serde(default)]
    pub pack_objects_limiting: Option<PackObjectsLimiting>,
    /// `[pack_objects_cache]`: one `pack-objects` per distinct fetch, shared by identical
    /// ones (see `packcache`).
    #[serde(default)]
    pub pack_objects_cache: PackObjectsCacheConfig,
    /// `[adaptive_limiting]`: how adaptive `[[concurrency]]` limits read pressure.
    #[serde(default)]
    pub adaptive_limiting: AdaptiveLimiting,
    /// `[[rate_limiting]]`: calls per RPC and user smoothed to a rate, then refused.
    #[serde(default)]
    pub rate_limiting: Vec<RateLimitingConfig>,
    /// How long in-flight calls get to finish after a shutdown signal (bare numbers are
    /// seconds).
    #[serde(default = "default_graceful_timeout", with = "duration")]
    pub graceful_restart_timeout: Duration,
    /// The largest request message accepted; a larger one is refused from its length
    /// prefix with `RESOURCE_EXHAUSTED`, without reading it.
    #[serde(default = "resources::default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// `[connections]`: connection cap, handshake and idle timeouts, HTTP/2 keepalive.
    #[serde(default)]
    pub connections: ConnectionsConfig,
    /// `[transport]`: SSH and smart-HTTP sessions.
    #[serde(default)]
    pub transport: TransportConfig,
    /// `[reads]`: bounds on reads that evaluate a client's pattern.
    #[serde(default)]
    pub reads: ReadsConfig,
}

fn default_graceful_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[auth]`, as Gitaly's: a shared secret for v2 tokens.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The secret itself.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the secret (read at start; a trailing newline is ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Log refusals but let the calls through (while clients learn the secret).
    #[serde(default)]
    pub transitioning: bool,
}

/// `[tls]`, as Gitaly's: PEM files for the TLS listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM), leaf first.
    pub certificate_path: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket_path: None,
            listen_addr: None,
            tls_listen_addr: None,
            prometheus_listen_addr: None,
            socket_mode: SocketMode::default(),
            auth: AuthConfig::default(),
            tls: None,
            storage: Vec::new(),
            git: GitConfig::default(),
            logging: Logging::default(),
            catfile: CatfileConfig::default(),
            spool: SpoolConfig::default(),
            hooks: HooksConfig::default(),
            housekeeping: Default::default(),
            daily_maintenance: None,
            concurrency: Vec::new(),
            pack_objects_limiting: None,
            pack_objects_cache: Default::default(),
            adaptive_limiting: AdaptiveLimiting::default(),
            rate_limiting: Vec::new(),
            graceful_restart_timeout: default_graceful_timeout(),
            max_message_bytes: resources::default_max_message_bytes(),
            connections: ConnectionsConfig::default(),
            transport: TransportConfig::default(),
            reads: ReadsConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitConfig {
    /// Absolute path of git; default: the first `git` on PATH at start-up.
    #[serde(default)]
    pub bin_path: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// `error`, `warn`, `info`, `debug`, `trace` (or `tracing` env-filter directives, read by
    /// `gitrpcd`; `GITRPC_LOG` overrides it).
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            format: LogFormat::default(),
            level: default_log_level(),
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatfileConfig {
    /// Idle `git cat-file` processes kept (all repositories together).
    #[serde(default = "default_catfile_max_idle")]
    pub max_idle: usize,
    /// How long an idle `git cat-file` process lives (bare numbers are seconds).
    #[serde(default = "default_catfile_ttl", with = "duration")]
    pub idle_ttl: Duration,
}

impl Default for CatfileConfig {
    fn default() -> Self {
        CatfileConfig {
            max_idle: default_catfile_max_idle(),
            idle_ttl: default_catfile_ttl(),
        }
    }
}

fn default_catfile_max_idle() -> usize {
    64
}
fn default_catfile_ttl() -> Duration {
    Duration::from_secs(60)
}

/// `[spool]`: decouple `git pack-objects` from slow clients.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Bytes of a response kept in memory before spilling to a temp file.
    #[serde(default = "default_spool_threshold")]
    pub threshold: usize,
    /// Directory for spill files; default `<first storage>/+gitrpc/spool` (same filesystem
    /// as the repositories).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Bytes spooled (memory and disk) by all responses together; past it a response
    /// streams directly (git waits for its client).
    #[serde(default = "default_spool_max_bytes")]
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            enabled: true,
            threshold: default_spool_threshold(),
            dir: None,
            max_bytes: default_spool_max_bytes(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_spool_threshold() -> usize {
    4 * 1024 * 1024
}
fn default_spool_max_bytes() -> u64 {
    1024 * 1024 * 1024
}

/// `[hooks]`: executables deciding ref updates, for pushes and operations alike (see
/// `hooks/`). With nothing set every change is accepted (repositories' own hooks never run).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Run before any ref moves: gets `<old> <new> <ref>` lines on stdin; a non-zero exit
    /// rejects the whole change, its output is the message.
    #[serde(default)]
    pub pre_receive: Option<PathBuf>,
    /// Run per ref with `<ref> <old> <new>` as arguments; a non-zero exit rejects that ref.
    #[serde(default)]
    pub update: Option<PathBuf>,
    /// Run after the refs moved (stdin as pre-receive); can't reject.
    #[serde(default)]
    pub post_receive: Option<PathBuf>,
    /// How long the server waits for a hook it runs (an operation's executable, any
    /// callback); past it the hook is killed and the change rejected.
    #[serde(default = "default_hook_timeout", with = "duration")]
    pub timeout: std::time::Duration,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            pre_receive: None,
            update: None,
            post_receive: None,
            timeout: default_hook_timeout(),
        }
    }
}

fn default_hook_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

impl Config {
    /// Read, parse and check a TOML file: what `gitrpcd --config` serves from.
    pub fn load(path: &Path) -> Result<Valid, ConfigError> {
        Config::read(path)?.validate()
    }

    /// Parse and check TOML text (the C API's config).
    pub fn from_toml(text: &str) -> Result<Valid, ConfigError> {
        Config::parse(text)?.validate()
    }

    /// Read and parse a TOML file without checking it, for callers that change it before
    /// [`Config::validate`] (`gitrpcd`'s flags override the file).
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Parse TOML text without checking it. An unknown key or a value of the wrong type is
    /// an error naming the key (`spool.bogus`) and its line.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| ConfigError::from_toml(e, text))
    }
}

#[cfg(test)]
mod tests;

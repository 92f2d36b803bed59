//! Configuration: the same TOML for `gitrpcd`, the C API and the Ruby gem. Key names follow
//! Gitaly's `config.toml` where Gitaly has them.

use std::path::PathBuf;

use serde::Deserialize;

mod duration;
mod limits;
mod packcache;
mod resources;
pub use duration::parse_duration;
pub(crate) use duration::{de_duration, de_duration_req};
pub use limits::{AdaptiveLimiting, ConcurrencyConfig, LimitKey, PackObjectsLimiting};
pub use packcache::PackObjectsCacheConfig;
pub use resources::{open_file_limit, raise_open_file_limit, ConnectionsConfig, TransportConfig};

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
    /// Permissions of the unix socket, as an octal string (default `"0600"`: only this user).
    #[serde(default = "default_socket_mode")]
    pub socket_mode: String,
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
    pub housekeeping: crate::housekeeping::HousekeepingConfig,
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
    /// Seconds in-flight calls get to finish after a shutdown signal.
    #[serde(default = "default_graceful_timeout")]
    pub graceful_restart_timeout: u64,
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
}

fn default_graceful_timeout() -> u64 {
    10
}

fn default_socket_mode() -> String {
    "0600".to_string()
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
            socket_mode: default_socket_mode(),
            auth: AuthConfig::default(),
            tls: None,
            storage: Vec::new(),
            git: GitConfig::default(),
            logging: Logging::default(),
            catfile: CatfileConfig::default(),
            spool: SpoolConfig::default(),
            hooks: HooksConfig::default(),
            housekeeping: Default::default(),
            concurrency: Vec::new(),
            pack_objects_limiting: None,
            pack_objects_cache: Default::default(),
            adaptive_limiting: AdaptiveLimiting::default(),
            graceful_restart_timeout: default_graceful_timeout(),
            max_message_bytes: resources::default_max_message_bytes(),
            connections: ConnectionsConfig::default(),
            transport: TransportConfig::default(),
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
    #[serde(default = "default_log_format")]
    pub format: String,
    /// `error`, `warn`, `info`, `debug`, `trace`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_log_format() -> String {
    "text".into()
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
    /// Seconds an idle `git cat-file` process lives.
    #[serde(default = "default_catfile_ttl")]
    pub idle_ttl: u64,
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
fn default_catfile_ttl() -> u64 {
    60
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

/// `[hooks]`: the push hook point. With nothing set every push is accepted (repositories'
/// own hooks never run).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// An executable run as git's pre-receive hook: gets `<old> <new> <ref>` lines on stdin;
    /// a non-zero exit rejects the whole push, its output is shown to the pusher.
    #[serde(default)]
    pub pre_receive: Option<PathBuf>,
}

impl Config {
    pub fn from_toml(s: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(s).map_err(|e| format!("config: {e}"))?;
        Ok(c)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Config, String> {
        let s = std::fs::read_to_string(path)
            .map_err(|e| format!("read config {}: {e}", path.display()))?;
        Config::from_toml(&s)
    }

    /// `socket_mode` as permission bits.
    pub fn socket_mode(&self) -> Result<u32, String> {
        let m = self.socket_mode.trim_start_matches("0o");
        match u32::from_str_radix(m, 8) {
            Ok(bits) if bits <= 0o777 => Ok(bits),
            _ => Err(format!(
                "config: socket_mode {:?} is not an octal mode like \"0660\"",
                self.socket_mode
            )),
        }
    }

    /// Checks that need no I/O: at least one storage, unique names.
    pub fn validate(&self) -> Result<(), String> {
        if self.storage.is_empty() {
            return Err("config: no [[storage]] configured".into());
        }
        let mut names: Vec<&str> = self.storage.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err("config: duplicate storage name".into());
        }
        if self.storage.iter().any(|s| s.name.is_empty()) {
            return Err("config: empty storage name".into());
        }
        let mut rpcs: Vec<&str> = self.concurrency.iter().map(|c| c.rpc.as_str()).collect();
        rpcs.sort();
        if let Some(w) = rpcs.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("config: [[concurrency]] for {} given twice", w[0]));
        }
        for c in &self.concurrency {
            if !c.rpc.starts_with('/') || c.rpc.matches('/').count() != 2 {
                return Err(format!(
                    "config: [[concurrency]] rpc {:?} is not a full method name like \"/gitaly.RefService/RefExists\"",
                    c.rpc
                ));
            }
            if c.max_concurrency == 0 {
                return Err(format!(
                    "config: [[concurrency]] {}: max_concurrency must be at least 1",
                    c.rpc
                ));
            }
            let (lo, hi) = (
                c.min_limit.unwrap_or(1),
                c.max_limit.unwrap_or(c.max_concurrency),
            );
            if c.adaptive && !(1 <= lo && lo <= c.max_concurrency && c.max_concurrency <= hi) {
                return Err(format!(
                    "config: [[concurrency]] {}: adaptive needs 1 <= min_limit <= max_concurrency <= max_limit",
                    c.rpc
                ));
            }
        }
        self.socket_mode()?;
        if self.tls_listen_addr.is_some() && self.tls.is_none() {
            return Err("config: tls_listen_addr needs [tls] certificate_path and key_path".into());
        }
        if self.auth.token.is_some() && self.auth.token_file.is_some() {
            return Err("config: [auth] set token or token_file, not both".into());
        }
        let a = &self.adaptive_limiting;
        if !(a.backoff > 0.0 && a.backoff < 1.0) {
            return Err("config: [adaptive_limiting] backoff must be between 0 and 1".into());
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > u32::MAX as usize {
            return Err("config: max_message_bytes must be between 1 and 4294967295".into());
        }
        if self.connections.max == Some(0) {
            return Err("config: [connections] max must be at least 1".into());
        }
        let c = &self.connections;
        for (name, d) in [
            ("[connections] handshake_timeout", c.handshake_timeout),
            ("[connections] idle_timeout", c.idle_timeout),
            ("[connections] keepalive_interval", c.keepalive_interval),
            ("[connections] keepalive_timeout", c.keepalive_timeout),
            ("[transport] idle_timeout", self.transport.idle_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("config: {name} must be more than zero"));
            }
        }
        if let Some(p) = &self.pack_objects_limiting {
            if p.max_concurrency == 0 {
                return Err(
                    "config: [pack_objects_limiting] max_concurrency must be at least 1".into(),
                );
            }
        }
        self.pack_objects_cache.validate(&self.storage)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn parses_gitaly_keys() {
        let c = Config::from_toml(
            r#"
socket_path = "/tmp/g.sock"
listen_addr = "127.0.0.1:9999"
[[storage]]
name = "default"
path = "/srv/repos"
[logging]
format = "json"
"#,
        )
        .unwrap();
        assert_eq!(c.storage[0].name, "default");
        assert_eq!(c.logging.format, "json");
        assert_eq!(c.logging.level, "info");
        assert_eq!(
            c.graceful_restart_timeout,
            Config::default().graceful_restart_timeout
        );
        c.validate().unwrap();
        assert!(Config::from_toml("bogus = 1").is_err());

        let c = Config::from_toml(
            r#"
[[storage]]
name = "default"
path = "/srv"
[[concurrency]]
rpc = "/gitaly.RefService/FindAllBranches"
max_per_repo = 2
max_queue_size = 5
max_queue_wait = "1m30s"
[pack_objects_limiting]
max_concurrency = 3
max_queue_length = 10
max_queue_wait = 2
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.concurrency[0].max_concurrency, 2);
        assert_eq!(
            c.concurrency[0].max_queue_wait,
            Some(std::time::Duration::from_secs(90))
        );
        let p = c.pack_objects_limiting.unwrap();
        assert_eq!((p.max_concurrency, p.max_queue_length), (3, 10));
        assert_eq!(p.max_queue_wait, Some(std::time::Duration::from_secs(2)));
        let adaptive = Config::from_toml(
            "[[storage]]\nname = \"d\"\npath = \"/srv\"\n[[concurrency]]\nrpc = \"/gitaly.A/B\"\nmax_concurrency = 4\nadaptive = true\nmin_limit = 5\n",
        )
        .unwrap();
        assert!(adaptive.validate().unwrap_err().contains("min_limit"));
        let adaptive = Config::from_toml(
            "[[storage]]\nname = \"d\"\npath = \"/srv\"\n[[concurrency]]\nrpc = \"/gitaly.A/B\"\nmax_concurrency = 4\nadaptive = true\nmax_limit = 8\n[adaptive_limiting]\ninterval = \"250ms\"\n",
        )
        .unwrap();
        adaptive.validate().unwrap();
        assert_eq!(
            adaptive.adaptive_limiting.interval,
            std::time::Duration::from_millis(250)
        );
        assert!(Config::default().validate().is_err());
    }
}

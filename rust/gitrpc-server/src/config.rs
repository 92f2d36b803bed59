//! Configuration: the same TOML for `gitrpcd`, the C API and the Ruby gem. Key names follow
//! Gitaly's `config.toml` where Gitaly has them.

use std::path::PathBuf;

use serde::Deserialize;

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
    /// `[adaptive_limiting]`: how adaptive `[[concurrency]]` limits read pressure.
    #[serde(default)]
    pub adaptive_limiting: AdaptiveLimiting,
    /// Seconds in-flight calls get to finish after a shutdown signal.
    #[serde(default = "default_graceful_timeout")]
    pub graceful_restart_timeout: u64,
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
            adaptive_limiting: AdaptiveLimiting::default(),
            graceful_restart_timeout: default_graceful_timeout(),
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
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            enabled: true,
            threshold: default_spool_threshold(),
            dir: None,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_spool_threshold() -> usize {
    4 * 1024 * 1024
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

/// One `[[concurrency]]` entry (Gitaly's keys; `max_per_repo` is accepted for
/// `max_concurrency`, as older Gitaly configs spell it).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Full method name, e.g. `/gitaly.SmartHTTPService/PostUploadPackWithSidechannel`.
    pub rpc: String,
    /// Calls of this RPC running at once per repository (the starting limit if adaptive).
    #[serde(alias = "max_per_repo")]
    pub max_concurrency: usize,
    /// Calls waiting per repository; more are refused at once. 0: no bound (as in Gitaly).
    #[serde(default)]
    pub max_queue_size: usize,
    /// Longest wait in the queue, a Go-style duration ("500ms", "1s", "1m30s"). Unset: no limit.
    #[serde(default, deserialize_with = "de_duration")]
    pub max_queue_wait: Option<std::time::Duration>,
    /// Adjust the limit between `min_limit` and `max_limit` from measured pressure (AIMD).
    #[serde(default)]
    pub adaptive: bool,
    #[serde(default)]
    pub min_limit: Option<usize>,
    #[serde(default)]
    pub max_limit: Option<usize>,
}

/// `[adaptive_limiting]`: the AIMD loop of adaptive `[[concurrency]]` limits (see
/// `adaptive.rs`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveLimiting {
    /// How often limits are adjusted.
    #[serde(
        default = "default_adaptive_interval",
        deserialize_with = "de_duration_req"
    )]
    pub interval: std::time::Duration,
    /// CPU pressure (PSI `some avg10`, percent) at or over which limits back off.
    #[serde(default = "default_cpu_threshold")]
    pub cpu_threshold: f64,
    /// Memory pressure (PSI `some avg10`, percent) at or over which limits back off.
    #[serde(default = "default_memory_threshold")]
    pub memory_threshold: f64,
    /// Factor applied to a limit under pressure.
    #[serde(default = "default_backoff")]
    pub backoff: f64,
    /// Directory with PSI files (`cpu`/`memory` or `cpu.pressure`/`memory.pressure`);
    /// default: this process's cgroup v2 directory, else `/proc/pressure`.
    #[serde(default)]
    pub pressure_dir: Option<PathBuf>,
}

impl Default for AdaptiveLimiting {
    fn default() -> Self {
        AdaptiveLimiting {
            interval: default_adaptive_interval(),
            cpu_threshold: default_cpu_threshold(),
            memory_threshold: default_memory_threshold(),
            backoff: default_backoff(),
            pressure_dir: None,
        }
    }
}

fn default_adaptive_interval() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}
fn default_cpu_threshold() -> f64 {
    50.0
}
fn default_memory_threshold() -> f64 {
    20.0
}
fn default_backoff() -> f64 {
    0.5
}

pub(crate) fn de_duration_req<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::time::Duration, D::Error> {
    de_duration(d)?.ok_or_else(|| serde::de::Error::custom("a duration is required"))
}

/// `[pack_objects_limiting]` (Gitaly's keys).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackObjectsLimiting {
    pub max_concurrency: usize,
    /// Waiting pack requests; more are refused at once. 0: no bound.
    #[serde(default, alias = "max_queue_size")]
    pub max_queue_length: usize,
    #[serde(default, deserialize_with = "de_duration")]
    pub max_queue_wait: Option<std::time::Duration>,
}

/// Go's `time.ParseDuration` subset Gitaly configs use: numbers with `h`, `m`, `s`, `ms`,
/// `us`, `ns` units, concatenated ("1m30s"), or a bare integer of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let bad = || format!("invalid duration {s:?} (use e.g. \"500ms\", \"10s\", \"1m30s\")");
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += std::time::Duration::from_secs_f64(value * scale);
    }
    Ok(total)
}

fn de_duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Secs(n)) => Ok(Some(std::time::Duration::from_secs(n))),
        Some(Raw::Text(t)) => parse_duration(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
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
        if let Some(p) = &self.pack_objects_limiting {
            if p.max_concurrency == 0 {
                return Err(
                    "config: [pack_objects_limiting] max_concurrency must be at least 1".into(),
                );
            }
        }
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

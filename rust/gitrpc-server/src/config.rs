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
    /// TCP `host:port` for Prometheus metrics and diagnostics.
    #[serde(default)]
    pub prometheus_listen_addr: Option<String>,
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
    /// Seconds in-flight calls get to finish after a shutdown signal.
    #[serde(default = "default_graceful_timeout")]
    pub graceful_restart_timeout: u64,
}

fn default_graceful_timeout() -> u64 {
    10
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket_path: None,
            listen_addr: None,
            prometheus_listen_addr: None,
            storage: Vec::new(),
            git: GitConfig::default(),
            logging: Logging::default(),
            catfile: CatfileConfig::default(),
            spool: SpoolConfig::default(),
            hooks: HooksConfig::default(),
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(Config::default().validate().is_err());
    }
}

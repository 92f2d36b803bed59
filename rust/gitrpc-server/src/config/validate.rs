//! The checks a config passes once, before anything is started: [`Config::validate`] turns
//! it into a [`Valid`] config, the only kind a server starts from.

use std::ops::Deref;

use super::{Config, ConfigError};

/// A config that passed [`Config::validate`]. Servers start from it (`Serving::start`
/// takes a `Config` and validates it, or a `Valid` one as it is), so nothing downstream
/// checks it again.
#[derive(Clone, Debug)]
pub struct Valid(Config);

impl Deref for Valid {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.0
    }
}

impl Valid {
    /// The config, to change and validate again.
    pub fn into_inner(self) -> Config {
        self.0
    }
}

impl TryFrom<Config> for Valid {
    type Error = ConfigError;
    fn try_from(c: Config) -> Result<Valid, ConfigError> {
        c.validate()
    }
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(key, message)
}

/// `host:port` with a numeric port (the host is resolved when binding).
fn check_address(key: &str, value: &Option<String>) -> Result<(), ConfigError> {
    let Some(v) = value else { return Ok(()) };
    match v.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(invalid(
            key,
            format!("{v:?} is not host:port (e.g. \"127.0.0.1:9999\")"),
        )),
    }
}

impl Config {
    /// Every check that needs no I/O. Errors name the key.
    pub fn validate(self) -> Result<Valid, ConfigError> {
        self.check_storages()?;
        self.check_limits()?;
        self.pack_objects_cache.validate(&self.storage)?;
        self.check_housekeeping()?;
        for (key, value) in [
            ("listen_addr", &self.listen_addr),
            ("tls_listen_addr", &self.tls_listen_addr),
            ("prometheus_listen_addr", &self.prometheus_listen_addr),
        ] {
            check_address(key, value)?;
        }
        if self.tls_listen_addr.is_some() && self.tls.is_none() {
            return Err(invalid(
                "tls_listen_addr",
                "needs [tls] certificate_path and key_path",
            ));
        }
        if self.auth.token.is_some() && self.auth.token_file.is_some() {
            return Err(invalid("auth", "set token or token_file, not both"));
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > u32::MAX as usize {
            return Err(invalid(
                "max_message_bytes",
                "must be between 1 and 4294967295",
            ));
        }
        if self.connections.max == Some(0) {
            return Err(invalid("connections.max", "must be at least 1"));
        }
        let c = &self.connections;
        for (key, d) in [
            ("connections.handshake_timeout", c.handshake_timeout),
            ("connections.idle_timeout", c.idle_timeout),
            ("connections.keepalive_interval", c.keepalive_interval),
            ("connections.keepalive_timeout", c.keepalive_timeout),
            ("transport.idle_timeout", self.transport.idle_timeout),
            ("hooks.timeout", self.hooks.timeout),
        ] {
            if d.is_zero() {
                return Err(invalid(key, "must be more than zero"));
            }
        }
        Ok(Valid(self))
    }

    /// At least one storage, with unique, non-empty names.
    fn check_storages(&self) -> Result<(), ConfigError> {
        if self.storage.is_empty() {
            return Err(invalid("storage", "no [[storage]] configured"));
        }
        if self.storage.iter().any(|s| s.name.is_empty()) {
            return Err(invalid("storage.name", "empty storage name"));
        }
        let mut names: Vec<&str> = self.storage.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(
                "storage.name",
                format!("duplicate storage name {:?}", w[0]),
            ));
        }
        Ok(())
    }

    /// `[housekeeping]` and `[daily_maintenance]` (Gitaly's ranges).
    fn check_housekeeping(&self) -> Result<(), ConfigError> {
        if self.housekeeping.max_concurrency == 0 {
            return Err(invalid(
                "housekeeping.max_concurrency",
                "must be at least 1",
            ));
        }
        let Some(d) = &self.daily_maintenance else {
            return Ok(());
        };
        if d.disabled {
            return Ok(());
        }
        if d.start_hour > 23 {
            return Err(invalid(
                "daily_maintenance.start_hour",
                format!("{} is not between 0 and 23", d.start_hour),
            ));
        }
        if d.start_minute > 59 {
            return Err(invalid(
                "daily_maintenance.start_minute",
                format!("{} is not between 0 and 59", d.start_minute),
            ));
        }
        if d.duration > std::time::Duration::from_secs(24 * 3600) {
            return Err(invalid("daily_maintenance.duration", "must be at most 24h"));
        }
        for name in d.storages.iter().flatten() {
            if !self.storage.iter().any(|s| &s.name == name) {
                return Err(invalid(
                    "daily_maintenance.storages",
                    format!("no storage named {name:?}"),
                ));
            }
        }
        Ok(())
    }

    /// `[[concurrency]]`, `[adaptive_limiting]`, `[pack_objects_limiting]`.
    fn check_limits(&self) -> Result<(), ConfigError> {
        let mut rpcs: Vec<&str> = self.concurrency.iter().map(|c| c.rpc.as_str()).collect();
        rpcs.sort();
        if let Some(w) = rpcs.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid("concurrency.rpc", format!("{} given twice", w[0])));
        }
        for c in &self.concurrency {
            if !c.rpc.starts_with('/') || c.rpc.matches('/').count() != 2 {
                return Err(invalid(
                    "concurrency.rpc",
                    format!(
                        "{:?} is not a full method name like \"/gitaly.RefService/RefExists\"",
                        c.rpc
                    ),
                ));
            }
            if c.max_concurrency == 0 {
                return Err(invalid(
                    "concurrency.max_concurrency",
                    format!("{}: must be at least 1", c.rpc),
                ));
            }
            let (lo, hi) = (
                c.min_limit.unwrap_or(1),
                c.max_limit.unwrap_or(c.max_concurrency),
            );
            if c.adaptive && !(1 <= lo && lo <= c.max_concurrency && c.max_concurrency <= hi) {
                return Err(invalid(
                    "concurrency.min_limit",
                    format!(
                        "{}: adaptive needs 1 <= min_limit <= max_concurrency <= max_limit",
                        c.rpc
                    ),
                ));
            }
        }
        let a = &self.adaptive_limiting;
        if !(a.backoff > 0.0 && a.backoff < 1.0) {
            return Err(invalid(
                "adaptive_limiting.backoff",
                "must be between 0 and 1",
            ));
        }
        if let Some(p) = &self.pack_objects_limiting {
            if p.max_concurrency == 0 {
                return Err(invalid(
                    "pack_objects_limiting.max_concurrency",
                    "must be at least 1",
                ));
            }
        }
        self.check_rate_limits()
    }

    /// `[[rate_limiting]]`: one entry per RPC, a positive rate and bucket.
    fn check_rate_limits(&self) -> Result<(), ConfigError> {
        let mut rpcs: Vec<&str> = self.rate_limiting.iter().map(|c| c.rpc.as_str()).collect();
        rpcs.sort();
        if let Some(w) = rpcs.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(
                "rate_limiting.rpc",
                format!("{} given twice", w[0]),
            ));
        }
        for r in &self.rate_limiting {
            if !r.rpc.starts_with('/') || r.rpc.matches('/').count() != 2 {
                return Err(invalid(
                    "rate_limiting.rpc",
                    format!(
                        "{:?} is not a full method name like \"/gitaly.SSHService/SSHUploadPackWithSidechannel\"",
                        r.rpc
                    ),
                ));
            }
            if r.interval.is_zero() {
                return Err(invalid(
                    "rate_limiting.interval",
                    format!("{}: must be more than zero", r.rpc),
                ));
            }
            if r.burst == 0 {
                return Err(invalid(
                    "rate_limiting.burst",
                    format!("{}: must be at least 1", r.rpc),
                ));
            }
        }
        Ok(())
    }
}

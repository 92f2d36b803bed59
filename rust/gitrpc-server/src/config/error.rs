//! [`ConfigError`]: why a config can't be served, naming the key.

use std::path::PathBuf;

/// A config that can't be read, parsed or served. Every variant names where the problem is;
/// a server refuses it before it starts anything (`INVALID_ARGUMENT` in C and Ruby).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file can't be read.
    #[error("config: read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type. `key` is its path
    /// (`spool.bogus`, `storage[1].path`), empty for a syntax error; `line` is 1-based.
    #[error("config: {}{message}{}", key_prefix(key), line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Parse {
        key: String,
        line: Option<usize>,
        message: String,
    },
    /// A value that parsed but can't be served (no storage, a zero timeout, ...).
    #[error("config: {key}: {message}")]
    Invalid { key: String, message: String },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The key the error is about (`None` for an unreadable file or a syntax error).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { key, .. } | ConfigError::Invalid { key, .. } => {
                (!key.is_empty()).then_some(key.as_str())
            }
        }
    }

    pub(crate) fn from_toml(e: serde_path_to_error::Error<toml::de::Error>, text: &str) -> Self {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = match inner.message() {
            "" => inner
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string(),
            m => m.to_string(),
        };
        ConfigError::Parse {
            key: if path == "." { String::new() } else { path },
            line,
            message,
        }
    }
}

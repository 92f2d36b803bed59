//! Small typed values of the config: the unix socket's mode, the log format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use super::ConfigError;

/// Permission bits of the unix socket (at most `0o777`). Written as an octal string
/// (`"0660"`, `"0o660"`) or a TOML octal integer (`0o660`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketMode(u32);

impl SocketMode {
    /// `None` past `0o777`.
    pub const fn new(bits: u32) -> Option<SocketMode> {
        if bits <= 0o777 {
            Some(SocketMode(bits))
        } else {
            None
        }
    }

    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl Default for SocketMode {
    /// Only this user.
    fn default() -> Self {
        SocketMode(0o600)
    }
}

impl fmt::Display for SocketMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl FromStr for SocketMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        u32::from_str_radix(digits, 8)
            .ok()
            .and_then(SocketMode::new)
            .ok_or_else(|| {
                ConfigError::invalid(
                    "socket_mode",
                    format!("{s:?} is not an octal mode like \"0660\""),
                )
            })
    }
}

impl<'de> Deserialize<'de> for SocketMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bits(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bits(b) => SocketMode::new(b)
                .ok_or_else(|| serde::de::Error::custom(format!("{b:#o} is over 0o777"))),
            Raw::Text(t) => t.parse::<SocketMode>().map_err(|e| match e {
                ConfigError::Invalid { message, .. } => serde::de::Error::custom(message),
                e => serde::de::Error::custom(e),
            }),
        }
    }
}

/// `[logging] format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

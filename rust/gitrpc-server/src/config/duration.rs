//! Durations in the config, parsed by `humantime`: Go's `time.ParseDuration` spelling that
//! Gitaly's configs use ("500ms", "1m30s", "1.5s", "72h") and humantime's own ("1m 30s",
//! "2days"), or whole seconds (`10`, or `"10"`), as the keys were first documented.
//!
//! Used as `#[serde(with = "duration")]` (required, usually with a default) or
//! `#[serde(with = "duration::option")]`. `humantime-serde` alone takes strings only, so
//! the bare seconds existing configs use need this small wrapper around `humantime`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration as written in a config file: a number of seconds or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Secs(u64),
    Text(String),
}

/// A duration that doesn't parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?} ({reason}; use e.g. \"500ms\", \"10s\", \"1m30s\" or seconds)")]
pub struct DurationError {
    text: String,
    reason: String,
}

/// Parse a config duration: whole seconds, or a humantime / Go duration.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let bad = |reason: &dyn std::fmt::Display| DurationError {
        text: s.to_string(),
        reason: reason.to_string(),
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| bad(&"too large"));
    }
    humantime::parse_duration(s).map_err(|e| bad(&e))
}

fn from_raw<E: serde::de::Error>(raw: Raw) -> Result<Duration, E> {
    match raw {
        Raw::Secs(n) => Ok(Duration::from_secs(n)),
        Raw::Text(t) => parse(&t).map_err(E::custom),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_raw(Raw::deserialize(d)?)
}

/// For `Option<Duration>` keys (unset: no limit).
pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<Raw>::deserialize(d)?.map(from_raw).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_and_humantime_durations() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("3us"), Ok(Duration::from_micros(3)));
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert!(parse("").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("s").is_err());
    }
}

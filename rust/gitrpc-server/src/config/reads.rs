//! `[reads]`: bounds on the read RPCs that evaluate a client's pattern.

use std::time::Duration;

use serde::Deserialize;

/// `[reads]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadsConfig {
    /// Longest a git evaluating a client's regular expression may run (SearchFilesByContent,
    /// FindCommits with `author`/`message_regex`, CommitsByMessage): past it git is killed and
    /// the call ends with `DEADLINE_EXCEEDED`, so a pathological pattern can't hold a core.
    #[serde(default = "default_regex_timeout", deserialize_with = "positive")]
    pub regex_timeout: Duration,
}

impl Default for ReadsConfig {
    fn default() -> Self {
        ReadsConfig {
            regex_timeout: default_regex_timeout(),
        }
    }
}

fn default_regex_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A duration ([`super::duration`]) that is not zero.
fn positive<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let t = super::duration::deserialize(d)?;
    if t.is_zero() {
        return Err(serde::de::Error::custom("must be more than zero"));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn parse(toml: &str) -> Result<Config, String> {
        Config::parse(toml).map_err(|e| e.to_string())
    }

    #[test]
    fn regex_timeout() {
        assert_eq!(
            parse("").unwrap().reads.regex_timeout,
            std::time::Duration::from_secs(30)
        );
        let c = parse("[reads]\nregex_timeout = \"1m30s\"").unwrap();
        assert_eq!(c.reads.regex_timeout.as_secs(), 90);
        let err = parse("[reads]\nregex_timeout = \"0s\"").unwrap_err();
        assert!(err.contains("must be more than zero"), "{err}");
        assert!(parse("[reads]\nbogus = 1").is_err());
    }
}

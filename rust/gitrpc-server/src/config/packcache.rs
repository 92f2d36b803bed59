//! `[pack_objects_cache]`: Gitaly's keys (`enabled`, `dir`, `max_age`, `min_occurrences`)
//! and ours (`max_bytes`, `min_free_disk`). See `crate::packcache`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{duration, ConfigError};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackObjectsCacheConfig {
    /// Install the pack-objects hook and cache packs (off: git runs pack-objects itself).
    #[serde(default)]
    pub enabled: bool,
    /// Where packs are stored; default `<first storage>/+gitrpc/pack-objects-cache`. Must be
    /// absolute, and neither a storage nor a directory holding one.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Entries older than this are dropped (files removed once nobody reads them).
    #[serde(default = "default_max_age", with = "duration")]
    pub max_age: Duration,
    /// A finished pack is kept only if its request was seen more than this many times within
    /// about `max_age` (0: keep every pack). Identical requests in flight share one
    /// generation whatever this says.
    #[serde(default = "default_min_occurrences")]
    pub min_occurrences: u32,
    /// Bound on the bytes of cached packs: past it, the least recently used entries nobody
    /// is reading are evicted. None: no bound (as Gitaly).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Bytes that must stay free on `dir`'s filesystem: below it packs are streamed to their
    /// readers without being stored.
    #[serde(default)]
    pub min_free_disk: u64,
    /// Serve protocol-v2 fetches whose pack is cached without upload-pack relaying it (the
    /// fast path, `crate::packcache::direct`).
    #[serde(default = "default_true")]
    pub direct: bool,
    /// Gitaly's `backpressure`: refused with the reason (see `validate`).
    #[serde(default)]
    pub backpressure: Option<serde::de::IgnoredAny>,
}

impl Default for PackObjectsCacheConfig {
    fn default() -> Self {
        PackObjectsCacheConfig {
            enabled: false,
            direct: true,
            dir: None,
            max_age: default_max_age(),
            min_occurrences: default_min_occurrences(),
            max_bytes: None,
            min_free_disk: 0,
            backpressure: None,
        }
    }
}

/// A storage's private directory (`tempdir::INTERNAL_DIR`, a layer above the config).
const PRIVATE_DIR: &str = "+gitrpc";

fn default_max_age() -> Duration {
    Duration::from_secs(300)
}

fn default_min_occurrences() -> u32 {
    1
}

impl PackObjectsCacheConfig {
    /// Checks that need no I/O. Errors name the key.
    pub fn validate(&self, storages: &[super::Storage]) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            ConfigError::invalid(format!("pack_objects_cache.{key}"), message)
        };
        if self.backpressure.is_some() {
            return Err(invalid(
                "backpressure",
                "not supported: a slow reader never slows the generation of a pack here \
                 (packs are written at git's speed and read from the file)"
                    .into(),
            ));
        }
        if self.max_age.is_zero() {
            return Err(invalid("max_age", "must be more than zero".into()));
        }
        if self.max_bytes == Some(0) {
            return Err(invalid("max_bytes", "must be more than zero".into()));
        }
        if let Some(dir) = &self.dir {
            if !dir.is_absolute() {
                return Err(invalid("dir", "must be an absolute path".into()));
            }
            let dir = normal(dir);
            for s in storages {
                let root = normal(&s.path);
                if root.starts_with(&dir) {
                    return Err(invalid("dir", "must not be a storage or hold one".into()));
                }
                let private = root.join(PRIVATE_DIR);
                if dir.starts_with(&root) && !dir.starts_with(&private) {
                    return Err(invalid(
                        "dir",
                        format!(
                            "must not be inside a storage (other than its {PRIVATE_DIR} directory)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `p` without `.` components and trailing slashes (no I/O).
fn normal(p: &std::path::Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Storage};

    fn config(table: &str) -> Result<Config, String> {
        Config::from_toml(&format!(
            "[[storage]]\nname = \"default\"\npath = \"/srv/repos\"\n[pack_objects_cache]\n{table}"
        ))
        .map(|v| v.into_inner())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_keys() {
        let c = config("enabled = true").unwrap().pack_objects_cache;
        assert!(c.enabled);
        assert_eq!(c.max_age, Duration::from_secs(300));
        assert_eq!(
            (c.min_occurrences, c.max_bytes, c.min_free_disk),
            (1, None, 0)
        );
        let c = config(
            "enabled = true\ndir = \"/var/cache/packs\"\nmax_age = \"90s\"\nmin_occurrences = 0\nmax_bytes = 1000\nmin_free_disk = 5",
        )
        .unwrap()
        .pack_objects_cache;
        assert_eq!(c.max_age, Duration::from_secs(90));
        assert_eq!(
            (c.min_occurrences, c.max_bytes, c.min_free_disk),
            (0, Some(1000), 5)
        );
        assert!(!Config::default().pack_objects_cache.enabled);
    }

    #[test]
    fn refusals_name_the_key() {
        for (table, words) in [
            (
                "backpressure = true",
                "pack_objects_cache.backpressure: not supported",
            ),
            (
                "max_age = \"0s\"",
                "pack_objects_cache.max_age: must be more than zero",
            ),
            (
                "max_bytes = 0",
                "pack_objects_cache.max_bytes: must be more than zero",
            ),
            (
                "dir = \"cache\"",
                "pack_objects_cache.dir: must be an absolute path",
            ),
            (
                "dir = \"/srv\"",
                "pack_objects_cache.dir: must not be a storage or hold one",
            ),
            (
                "dir = \"/srv/repos/\"",
                "pack_objects_cache.dir: must not be a storage or hold one",
            ),
            (
                "dir = \"/srv/repos/cache\"",
                "pack_objects_cache.dir: must not be inside a storage",
            ),
            (
                "max_age = \"soon\"",
                "pack_objects_cache.max_age: invalid duration",
            ),
            ("bogus = 1", "pack_objects_cache.bogus: unknown field"),
        ] {
            let err = config(table).unwrap_err();
            assert!(err.contains(words), "{table}: {err}");
        }
        let storages = [Storage {
            name: "d".into(),
            path: "/srv/repos".into(),
        }];
        let ok = PackObjectsCacheConfig {
            dir: Some("/srv/repos-cache".into()),
            ..Default::default()
        };
        ok.validate(&storages).unwrap();
        let inside = PackObjectsCacheConfig {
            dir: Some("/srv/repos/+gitrpc/packs".into()),
            ..Default::default()
        };
        inside.validate(&storages).unwrap();
    }

    #[test]
    fn limiting_keys() {
        use crate::config::LimitKey;
        let parse = |key: &str| {
            Config::from_toml(&format!(
                "[[storage]]\nname = \"d\"\npath = \"/srv\"\n[pack_objects_limiting]\nmax_concurrency = 1\n{key}"
            ))
            .map(|c| c.pack_objects_limiting.clone().unwrap().key)
            .map_err(|e| e.to_string())
        };
        assert_eq!(parse("").unwrap(), LimitKey::Global);
        assert_eq!(parse("key = \"global\"").unwrap(), LimitKey::Global);
        assert_eq!(parse("key = \"remote_ip\"").unwrap(), LimitKey::RemoteIp);
        assert_eq!(parse("key = \"user\"").unwrap(), LimitKey::User);
        assert!(parse("key = \"repository\"")
            .unwrap_err()
            .contains("unknown variant"));
    }
}

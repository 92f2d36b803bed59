//! `git_config_options` from a client (the transport RPCs): an explicit allowlist of keys,
//! each with the shape its value must have.
//!
//! A config key can make git read a file (`receive.fsck.skipList`, `core.excludesFile`),
//! run a program (`uploadpack.packObjectsHook`, `core.sshCommand`) or point it elsewhere
//! (`core.hooksPath`), so nothing is passed on unless it is listed here. The list is what
//! Gitaly's clients send (GitLab Shell and Workhorse: partial clone, hidden refs, push
//! options, input size limits) plus the switches of the same kind next to them; no key
//! names a path or a program. Keys compare as git compares them: case-insensitively (they
//! have no subsection).

use crate::validate;
use crate::{Error, Result};

/// What a value must look like.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `true`/`false`/`yes`/`no`/`on`/`off`/`1`/`0`, any case.
    Bool,
    /// A non-negative integer with git's optional `k`/`m`/`g` suffix, at most `max`.
    Int { max: u64 },
    /// A `hideRefs` entry: optional `!` (un-hide) and `^` (full name), then a ref name or
    /// prefix (`refs/tags`, `refs/keep-around/`); never starting with `-`.
    RefPattern,
}

const SECONDS: Shape = Shape::Int { max: 3600 };
const COUNT: Shape = Shape::Int {
    max: i32::MAX as u64,
};
const BYTES: Shape = Shape::Int {
    max: i64::MAX as u64,
};

/// The keys a client may set, in git's spelling (compared case-insensitively).
const ALLOWED: &[(&str, Shape)] = &[
    ("uploadpack.allowFilter", Shape::Bool),
    ("uploadpack.allowAnySHA1InWant", Shape::Bool),
    ("uploadpack.allowTipSHA1InWant", Shape::Bool),
    ("uploadpack.allowReachableSHA1InWant", Shape::Bool),
    ("uploadpack.allowRefInWant", Shape::Bool),
    ("uploadpack.hideRefs", Shape::RefPattern),
    ("uploadpack.keepAlive", SECONDS),
    ("transfer.hideRefs", Shape::RefPattern),
    ("transfer.bundleURI", Shape::Bool),
    ("transfer.fsckObjects", Shape::Bool),
    ("transfer.unpackLimit", COUNT),
    ("receive.hideRefs", Shape::RefPattern),
    ("receive.advertisePushOptions", Shape::Bool),
    ("receive.advertiseAtomic", Shape::Bool),
    ("receive.maxInputSize", BYTES),
    ("receive.unpackLimit", COUNT),
    ("receive.fsckObjects", Shape::Bool),
    ("receive.denyDeletes", Shape::Bool),
    ("receive.denyNonFastForwards", Shape::Bool),
    ("receive.keepAlive", SECONDS),
];

/// Most options in one request.
pub const MAX_OPTIONS: usize = 32;
/// Longest `key=value` entry.
pub const MAX_OPTION: usize = 256 + validate::MAX_REF_NAME;

/// Client config options that passed [`check`]: `key=value` in git's spelling of the key.
/// Only `check` makes one, so a command can't be given unchecked client config.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    pairs: Vec<String>,
}

impl ClientConfig {
    pub(crate) fn pairs(&self) -> &[String] {
        &self.pairs
    }
}

/// Check `options` (`key=value` each) against the allowlist. Errors name the field and the
/// offending key; nothing is started for a refused request.
pub fn check(options: &[String]) -> Result<ClientConfig> {
    if options.len() > MAX_OPTIONS {
        return Err(Error::invalid(format!(
            "too many git_config_options: {} (max {MAX_OPTIONS})",
            options.len()
        )));
    }
    let mut pairs = Vec::with_capacity(options.len());
    for opt in options {
        validate::size("git_config_options entry", opt.as_bytes(), MAX_OPTION)?;
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("git_config_options: not key=value: {opt:?}")))?;
        let (name, shape) = ALLOWED
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .ok_or_else(|| {
                Error::invalid(format!("git_config_options: key not allowed: {key:?}"))
            })?;
        if !fits(*shape, value) {
            return Err(Error::invalid(format!(
                "git_config_options: invalid value for {name}: {value:?} ({})",
                describe(*shape)
            )));
        }
        pairs.push(format!("{name}={value}"));
    }
    Ok(ClientConfig { pairs })
}

fn fits(shape: Shape, value: &str) -> bool {
    match shape {
        Shape::Bool => ["true", "false", "yes", "no", "on", "off", "1", "0"]
            .iter()
            .any(|b| b.eq_ignore_ascii_case(value)),
        Shape::Int { max } => int(value).is_some_and(|n| n <= max),
        Shape::RefPattern => ref_pattern(value),
    }
}

fn describe(shape: Shape) -> String {
    match shape {
        Shape::Bool => "want a boolean".into(),
        Shape::Int { max } => format!("want an integer from 0 to {max}"),
        Shape::RefPattern => "want a reference name or prefix".into(),
    }
}

/// git's integer syntax without a sign: digits and an optional unit (`k`, `m`, `g`).
fn int(value: &str) -> Option<u64> {
    let (digits, unit) = match value.as_bytes().last()?.to_ascii_lowercase() {
        b'k' => (&value[..value.len() - 1], 1u64 << 10),
        b'm' => (&value[..value.len() - 1], 1 << 20),
        b'g' => (&value[..value.len() - 1], 1 << 30),
        _ => (value, 1),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// A `hideRefs` value: `[!][^]<refname or prefix, optionally ending in '/'>`.
fn ref_pattern(value: &str) -> bool {
    let rest = value.strip_prefix('!').unwrap_or(value);
    let rest = rest.strip_prefix('^').unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !rest.starts_with('-') && !rest.starts_with('/') && validate::is_valid_ref_name(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(opt: &str) -> Result<ClientConfig> {
        check(&[opt.to_string()])
    }

    #[test]
    fn allowed_keys_and_shapes() {
        for ok in [
            "uploadpack.allowFilter=true",
            "UPLOADPACK.ALLOWANYSHA1INWANT=Yes",
            "uploadpack.hideRefs=refs/hidden",
            "transfer.hideRefs=refs",
            "transfer.hideRefs=!refs/tags/",
            "receive.hideRefs=^refs/keep-around/",
            "receive.advertisePushOptions=true",
            "receive.maxInputSize=100m",
            "receive.MaxInputSize=1",
            "receive.unpackLimit=0",
            "transfer.bundleURI=true",
        ] {
            assert!(one(ok).is_ok(), "{ok}");
        }
        // Given in git's spelling of the key.
        assert_eq!(
            one("RECEIVE.UNPACKLIMIT=0").unwrap().pairs(),
            ["receive.unpackLimit=0"]
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "receive.fsck.skipList=/etc/passwd",
            "receive.fsck.skiplist=/dev/zero",
            "receive.procReceiveRefs=refs",
            "core.sshCommand=touch /tmp/x",
            "core.hooksPath=/tmp",
            "uploadpack.packObjectsHook=evil",
            "alias.x=!sh",
            "include.path=/etc/gitconfig",
            "pack.threads=1",
            "receive.certNonceSeed=x",
            "noequals",
            "-c=x",
            " receive.unpackLimit=0",
            "receive.unpackLimit=-1",
            "receive.unpackLimit=99999999999",
            "receive.maxInputSize=1t",
            "receive.maxInputSize=",
            "receive.denyDeletes=maybe",
            "transfer.hideRefs=--upload-pack=x",
            "transfer.hideRefs=-refs",
            "transfer.hideRefs=/etc/passwd",
            "transfer.hideRefs=refs/a b",
            "transfer.hideRefs=refs/../x",
            "transfer.hideRefs=",
            "transfer.hideRefs=!",
            "uploadpack.keepAlive=86400",
        ] {
            let e = one(bad).unwrap_err();
            assert!(
                matches!(e, Error::InvalidArgument(_))
                    && e.to_string().contains("git_config_options"),
                "{bad}: {e}"
            );
        }
        let many = vec!["receive.unpackLimit=0".to_string(); MAX_OPTIONS + 1];
        assert!(check(&many).is_err());
        assert!(one(&format!(
            "transfer.hideRefs=refs/{}",
            "a".repeat(MAX_OPTION)
        ))
        .is_err());
    }
}

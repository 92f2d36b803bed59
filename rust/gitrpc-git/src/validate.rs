//! Checks on user input before it becomes a git argument.

use crate::{Error, Result};

/// A revision as given by a client: a ref name, object id, or revision expression.
/// Rejected: empty, leading `-` (option injection), NUL, and any whitespace or control
/// character (they cannot occur in a ref name and would split batch protocol lines).
pub fn revision(rev: &[u8]) -> Result<&str> {
    if rev.is_empty() {
        return Err(Error::invalid("empty revision"));
    }
    if rev[0] == b'-' {
        return Err(Error::invalid(format!(
            "revision can't start with '-': {}",
            String::from_utf8_lossy(rev)
        )));
    }
    if rev.contains(&0) {
        return Err(Error::invalid("revision can't contain NUL"));
    }
    if rev
        .iter()
        .any(|&b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(Error::invalid(format!(
            "revision can't contain whitespace: {:?}",
            String::from_utf8_lossy(rev)
        )));
    }
    std::str::from_utf8(rev).map_err(|_| Error::invalid("revision is not valid UTF-8"))
}

/// A path inside a tree as given by a client. NUL and newline would break git's
/// line protocols; everything else is passed after `--` or inside `rev:path`.
pub fn tree_path(path: &[u8]) -> Result<&str> {
    if path.iter().any(|&b| b == 0 || b == b'\n') {
        return Err(Error::invalid("path can't contain NUL or newline"));
    }
    std::str::from_utf8(path).map_err(|_| Error::invalid("path is not valid UTF-8"))
}

/// A full reference name, checked with git's `check-ref-format` rules (full names only).
pub fn ref_name(name: &[u8]) -> Result<&str> {
    let s =
        std::str::from_utf8(name).map_err(|_| Error::invalid("reference is not valid UTF-8"))?;
    if !is_valid_ref_name(s) {
        return Err(Error::invalid(format!("invalid reference name: {s:?}")));
    }
    Ok(s)
}

/// git's `check_refname_format` for full names (`refs/...`, `HEAD`, and pseudo-refs are
/// handled by callers): no `..`, no control chars, none of ` ~^:?*[\`, no component
/// starting with `.` or ending with `.lock`, no `@{`, not `@`, no `//`, no trailing `/` or `.`.
pub fn is_valid_ref_name(s: &str) -> bool {
    if s.is_empty() || s == "@" || s.starts_with('-') || s.ends_with('/') || s.ends_with('.') {
        return false;
    }
    if s.contains("..") || s.contains("@{") || s.contains("//") {
        return false;
    }
    if s.bytes()
        .any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b))
    {
        return false;
    }
    s.split('/')
        .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"))
}

/// A `key=value` git config option from a client (used by later transports).
pub fn config_pair(pair: &str) -> Result<(&str, &str)> {
    let (k, v) = pair
        .split_once('=')
        .ok_or_else(|| Error::invalid(format!("config option must be key=value: {pair:?}")))?;
    if k.is_empty() || k.starts_with('-') || k.bytes().any(|b| b.is_ascii_whitespace() || b == 0) {
        return Err(Error::invalid(format!("invalid config key: {k:?}")));
    }
    if v.bytes().any(|b| b == 0 || b == b'\n') {
        return Err(Error::invalid(format!("invalid config value for {k}")));
    }
    Ok((k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions() {
        assert!(revision(b"main").is_ok());
        assert!(revision(b"HEAD~2^{tree}").is_ok());
        for bad in [
            &b""[..],
            b"--upload-pack=x",
            b"-n",
            b"a\0b",
            b"a b",
            b"a\nb",
            b"a\tb",
        ] {
            assert!(revision(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ref_names() {
        for ok in [
            "refs/heads/main",
            "refs/tags/v1.0",
            "refs/heads/feature/x-y",
            "HEAD",
        ] {
            assert!(is_valid_ref_name(ok), "{ok}");
        }
        for bad in [
            "refs/heads/../x",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/a b",
            "refs/heads/a:b",
            "refs/heads//a",
            "refs/heads/",
            "refs/heads/a.",
            "refs/heads/a@{1}",
            "@",
            "refs/heads/a\\b",
            "-refs",
        ] {
            assert!(!is_valid_ref_name(bad), "{bad}");
        }
    }
}

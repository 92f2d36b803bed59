//! Checks on user input before it becomes a git argument.

use crate::{Error, Result};

/// Longest reference name a client may send. git keeps references as files (a loose ref's
/// path is limited by `PATH_MAX`, 4096), so a longer name can't exist.
pub const MAX_REF_NAME: usize = 4096;
/// Longest revision (a ref name or an expression around one, e.g. `main~2^{tree}`).
pub const MAX_REVISION: usize = 4096;
/// Longest path inside a tree, or pathspec (`PATH_MAX`: git can't check out a longer one).
pub const MAX_PATH: usize = 4096;

/// `field` is at most `max` bytes: checked before any other work on client input, so a
/// huge value never reaches the filesystem or an argument list (`ENAMETOOLONG`, `E2BIG`).
pub fn size(field: &str, value: &[u8], max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(format!(
            "{field} too long: {} bytes (max {max})",
            value.len()
        )));
    }
    Ok(())
}

/// A revision as given by a client: a ref name, object id, or revision expression.
/// Rejected: too long, empty, leading `-` (option injection), NUL, and any whitespace or
/// control character (they cannot occur in a ref name and would split batch protocol lines).
pub fn revision(rev: &[u8]) -> Result<&str> {
    size("revision", rev, MAX_REVISION)?;
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
    size("path", path, MAX_PATH)?;
    if path.iter().any(|&b| b == 0 || b == b'\n') {
        return Err(Error::invalid("path can't contain NUL or newline"));
    }
    std::str::from_utf8(path).map_err(|_| Error::invalid("path is not valid UTF-8"))
}

/// A ref name is at most [`MAX_REF_NAME`] bytes (for callers that treat other invalid
/// names as absent rather than refused).
pub fn ref_name_size(name: &[u8]) -> Result<()> {
    size("ref name", name, MAX_REF_NAME)
}

/// A full reference name, checked with git's `check-ref-format` rules (full names only).
pub fn ref_name(name: &[u8]) -> Result<&str> {
    ref_name_size(name)?;
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
    fn sizes_are_bounded_and_named() {
        let huge = vec![b'a'; 10 << 20];
        for (what, err) in [
            ("revision", revision(&huge).unwrap_err()),
            ("path", tree_path(&huge).unwrap_err()),
            ("ref name", ref_name(&huge).unwrap_err()),
        ] {
            assert_eq!(
                err.to_string(),
                format!("{what} too long: 10485760 bytes (max 4096)")
            );
        }
        assert!(revision(&[b'a'; MAX_REVISION]).is_ok());
        assert!(tree_path(&[b'a'; MAX_PATH]).is_ok());
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

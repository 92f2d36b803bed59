//! Checks on user input before it becomes a git argument. [`gitaly`]: Gitaly's own checks
//! of revisions and object ids, with its messages.

use crate::{Error, Result};

pub mod gitaly;

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

/// A path given as a command-line argument (a pathspec after `--`, the path of `rev:path`):
/// any bytes but NUL, at most [`MAX_PATH`]. Paths may be non-UTF-8 and hold newlines; only
/// line protocols ([`tree_path`], standard input) need more.
pub fn arg_path(path: &[u8]) -> Result<&[u8]> {
    size("path", path, MAX_PATH)?;
    if path.contains(&0) {
        return Err(Error::invalid("path can't contain NUL"));
    }
    Ok(path)
}

/// A revision that may be path-scoped, `<rev>:<path>` (a tree or blob inside a revision):
/// up to the first `:` a [`revision`], after it an [`arg_path`] (whitespace and non-UTF-8
/// allowed). Without `:` it is a plain [`revision`]. `line`: the path may not hold line ends
/// either (it goes on a line of standard input).
pub fn scoped_revision(rev: &[u8], line: bool) -> Result<&[u8]> {
    let Some(colon) = rev.iter().position(|&b| b == b':') else {
        return revision(rev).map(str::as_bytes);
    };
    revision(&rev[..colon])?;
    let path = arg_path(&rev[colon + 1..])?;
    if line && path.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(Error::invalid("path can't contain a line end"));
    }
    Ok(rev)
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
    fn paths_and_scoped_revisions() {
        assert!(arg_path(b"caf\xe9 a\nb.txt").is_ok());
        assert_eq!(
            arg_path(b"a\0b").unwrap_err().to_string(),
            "path can't contain NUL"
        );
        assert!(arg_path(&[b'a'; MAX_PATH + 1]).is_err());
        for ok in [
            &b"main"[..],
            b"main:",
            b"main:dir/a b.txt",
            b"HEAD~1:caf\xe9\n",
        ] {
            assert_eq!(scoped_revision(ok, false).unwrap(), ok);
        }
        for bad in [&b":a.txt"[..], b"-x:a", b"ma in:a", b"main:a\0", b""] {
            assert!(scoped_revision(bad, false).is_err(), "{bad:?}");
        }
        assert!(scoped_revision(b"main:a\nb", true).is_err());
        assert!(scoped_revision(b"main:a\rb", true).is_err());
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

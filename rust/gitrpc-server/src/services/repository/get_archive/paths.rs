//! GetArchive's paths, cleaned as Gitaly cleans them (Go's `filepath.Rel(root,
//! filepath.Join(root, p))`).

use crate::error::{Error, Result};

/// `""` → `"."`, `"subdir/"` → `"subdir"`, `"/x"` → `"x"`, `"a/../b"` → `"b"`; a path that
/// escapes the root (`"../x"`) is `INVALID_ARGUMENT "relative path escapes root directory"`.
pub(super) fn clean_relative(path: &[u8]) -> Result<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err(Error::invalid("relative path escapes root directory"));
                }
            }
            _ => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Ok(b".".to_vec());
    }
    Ok(parts.join(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::clean_relative;

    #[test]
    fn paths_are_cleaned_like_go() {
        for (p, want) in [
            ("", "."),
            (".", "."),
            ("subdir/", "subdir"),
            ("/x", "x"),
            ("a/../b", "b"),
            ("a//b/./c", "a/b/c"),
            ("a/..", "."),
        ] {
            assert_eq!(
                clean_relative(p.as_bytes()).unwrap(),
                want.as_bytes(),
                "{p}"
            );
        }
        for p in ["..", "../../foo", "a/../../b", "/.."] {
            let e = clean_relative(p.as_bytes()).unwrap_err();
            assert_eq!(e.to_string(), "relative path escapes root directory");
        }
    }
}

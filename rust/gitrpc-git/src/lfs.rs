//! Git LFS pointers: is a blob one, and what does it point to (Gitaly's
//! `git.IsLFSPointer`, `internal/git/lfs.go`, with its regular expressions written out).

/// Blobs larger than this can't be LFS pointers (Gitaly's `lfsPointerMaxSize`).
pub const POINTER_MAX_SIZE: u64 = 200;

/// What an LFS pointer points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    /// The sha256 of the file, 64 lowercase hex digits.
    pub oid: Vec<u8>,
    /// The file's size.
    pub size: i64,
}

/// `data` is an LFS pointer if it starts with `version https://git-lfs.github.com/spec`,
/// has a line `oid sha256:<64 lowercase hex>` and a line `size <digits>` (the first such
/// line; it must fit an i64). Lines end at `\n` only (a `\r\n` file is not a pointer), as
/// Go's `(?m)^...$`.
pub fn parse_pointer(data: &[u8]) -> Option<Pointer> {
    if !data.starts_with(b"version https://git-lfs.github.com/spec") {
        return None;
    }
    let lines = || data.split(|&b| b == b'\n');
    let oid = lines().find_map(|l| {
        let hex = l.strip_prefix(b"oid sha256:")?;
        (hex.len() == 64 && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| hex.to_vec())
    })?;
    let digits = lines().find_map(|l| {
        let d = l.strip_prefix(b"size ")?;
        (!d.is_empty() && d.iter().all(u8::is_ascii_digit)).then_some(d)
    })?;
    let size = std::str::from_utf8(digits).ok()?.parse::<i64>().ok()?;
    Some(Pointer { oid, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "91eff75a492a3ed0dfcb544d7f31326bc4014c8551849c192fd1e48d4dd2c897";

    #[test]
    fn pointers() {
        let p =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 1575078\n");
        assert_eq!(
            parse_pointer(p.as_bytes()),
            Some(Pointer {
                oid: OID.as_bytes().to_vec(),
                size: 1575078
            })
        );
        // No trailing newline: `$` matches at the end.
        let p = format!("version https://git-lfs.github.com/spec/v1\nsize 5\noid sha256:{OID}");
        assert_eq!(parse_pointer(p.as_bytes()).map(|p| p.size), Some(5));
        for bad in [
            format!("version https://git-lfs.github.com/spec/v1\r\noid sha256:{OID}\r\nsize 5\r\n"),
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 5\n", OID.to_uppercase()),
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}0\nsize 5\n"),
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 99999999999999999999\n"),
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\n"),
            format!("oid sha256:{OID}\nsize 5\n"),
            format!(" version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 5\n"),
        ] {
            assert_eq!(parse_pointer(bad.as_bytes()), None, "{bad:?}");
        }
    }
}

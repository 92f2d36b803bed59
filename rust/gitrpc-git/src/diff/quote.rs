//! The lines of `git diff --raw --patch` (without `-z`) that name files, read exactly as
//! Gitaly reads them (`internal/gitaly/diff/diff.go`): its raw-line and `diff --git` header
//! regular expressions, written out by hand with the same matches, and its `unescape` of
//! git's C-quoted paths.

use super::DiffError;

/// One line of `git diff --raw` (`:<old mode> <new mode> <old oid> <new oid> <status>\t<path>[\t<path>]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawLine {
    pub old_mode: i32,
    pub new_mode: i32,
    pub from_id: String,
    pub to_id: String,
    /// The status letter (`M`, `A`, `D`, `R`, `C`, `T`, ...); scores dropped.
    pub status: u8,
    pub from_path: Vec<u8>,
    pub to_path: Vec<u8>,
}

/// Gitaly's `helper.UnquoteBytes`: one pair of surrounding `"` removed.
pub fn unquote(s: &[u8]) -> &[u8] {
    if s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Gitaly's `unescape` of git's quoting: `\` + three digits (parsed octal, fitting a byte)
/// is that byte; `\"`, `\\`, `\/`, `\'` the character; `\a \b \f \n \r \t \v` control
/// characters; `\` before anything else is kept with it; a trailing `\` is kept.
pub fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            if i + 3 < s.len() && s[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
                let v = s[i + 1..i + 4].iter().try_fold(0u32, |acc, &d| {
                    (d <= b'7').then(|| acc * 8 + u32::from(d - b'0'))
                });
                if let Some(v) = v.filter(|&v| v <= 255) {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
            if i + 1 < s.len() {
                let c = s[i + 1];
                let b = match c {
                    b'"' | b'\\' | b'/' | b'\'' => c,
                    b'a' => 0x07,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 0x0b,
                    _ => {
                        out.push(b'\\');
                        c
                    }
                };
                out.push(b);
                i += 2;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn split_word(s: &[u8]) -> Result<(&[u8], &[u8]), DiffError> {
    let i = memchr::memchr(b' ', s).ok_or(DiffError::RawLine)?;
    Ok((&s[..i], &s[i + 1..]))
}

fn mode(digits: &[u8], side: &'static str) -> Result<i32, DiffError> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(DiffError::RawLine);
    }
    // Go's strconv.ParseInt(s, 8, 0): digits 8 and 9, or overflow, fail.
    let text = String::from_utf8_lossy(digits);
    i64::from_str_radix(&text, 8)
        .ok()
        .and_then(|m| i32::try_from(m).ok())
        .ok_or_else(|| DiffError::RawMode(side, text.into_owned()))
}

fn oid(s: &[u8], hash_len: usize) -> Result<String, DiffError> {
    if s.len() != hash_len || !s.iter().all(u8::is_ascii_hexdigit) {
        return Err(DiffError::RawLine);
    }
    Ok(String::from_utf8_lossy(s).into_owned())
}

/// Parse one raw line as Gitaly's regular expression
/// `^:(\d+) (\d+) ([[:xdigit:]]{N}) ([[:xdigit:]]{N}) ([ADTUXMRC]\d*)\t(.*?)(?:\t(.*?))?$`
/// (N = `hash_len`) matches it: the line ends at its first `\n`; the first path runs to the
/// first tab after the status, the second (renames and copies only) is the rest.
pub fn parse_raw_line(line: &[u8], hash_len: usize) -> Result<RawLine, DiffError> {
    let line = match memchr::memchr(b'\n', line) {
        Some(i) => &line[..i],
        None => line,
    };
    let rest = line.strip_prefix(b":").ok_or(DiffError::RawLine)?;
    let (old_mode, rest) = split_word(rest)?;
    let (new_mode, rest) = split_word(rest)?;
    let (from_id, rest) = split_word(rest)?;
    let (to_id, rest) = split_word(rest)?;
    let tab = memchr::memchr(b'\t', rest).ok_or(DiffError::RawLine)?;
    let (status, paths) = (&rest[..tab], &rest[tab + 1..]);
    let valid_status = !status.is_empty()
        && b"ADTUXMRC".contains(&status[0])
        && status[1..].iter().all(u8::is_ascii_digit);
    if !valid_status {
        return Err(DiffError::RawLine);
    }
    let from_id = oid(from_id, hash_len)?;
    let to_id = oid(to_id, hash_len)?;
    let old_mode = mode(old_mode, "old")?;
    let new_mode = mode(new_mode, "new")?;
    let (first, second) = match memchr::memchr(b'\t', paths) {
        Some(i) => (&paths[..i], Some(&paths[i + 1..])),
        None => (paths, None),
    };
    let from_path = unescape(unquote(first));
    let to_path = match status[0] {
        b'R' | b'C' => unescape(unquote(second.unwrap_or_default())),
        _ => from_path.clone(),
    };
    Ok(RawLine {
        old_mode,
        new_mode,
        from_id,
        to_id,
        status: status[0],
        from_path,
        to_path,
    })
}

/// The old path named by a `diff --git` header line, as Gitaly's
/// `^diff --git "?a/(.*?)"? "?b/(.*?)"?$` reads it: the shortest text after `a/` followed by
/// `" b/`, ` b/`, `" "b/` or ` "b/`, unescaped. (Like Gitaly, a path holding `" b/"` is cut
/// there.) `None` if the line is no header.
pub fn header_from_path(line: &[u8]) -> Option<Vec<u8>> {
    let line = match memchr::memchr(b'\n', line) {
        Some(i) => &line[..i],
        None => line,
    };
    let rest = line.strip_prefix(b"diff --git ")?;
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let rest = rest.strip_prefix(b"a/")?;
    for k in 0..rest.len() {
        let tail = &rest[k..];
        let tail = tail
            .strip_prefix(b"\"")
            .filter(|t| t.starts_with(b" "))
            .unwrap_or(tail);
        let Some(tail) = tail.strip_prefix(b" ") else {
            continue;
        };
        let tail = tail.strip_prefix(b"\"").unwrap_or(tail);
        if tail.starts_with(b"b/") {
            return Some(unescape(&rest[..k]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "de980441c3ab03a8c07dda1ad27b8a11f39deb1e";
    const B: &str = "7be73ce3c1b1cdaea86e8168dfee8575175953bf";

    #[test]
    fn unescape_is_gitalys() {
        assert_eq!(unescape(br"caf\303\251"), "café".as_bytes());
        assert_eq!(unescape(br#"a\"b\\c\/d\'e"#), br#"a"b\c/d'e"#);
        assert_eq!(unescape(br"\a\b\f\n\r\t\v"), b"\x07\x08\x0c\n\r\t\x0b");
        // Unknown escapes keep the backslash; a trailing one stays; octal out of range or
        // with 8/9 is not an octal escape.
        assert_eq!(unescape(br"\q\"), br"\q\");
        assert_eq!(unescape(br"\400x"), br"\400x");
        assert_eq!(unescape(br"\189x"), br"\189x");
        // An octal escape at the very end, and one cut short.
        assert_eq!(unescape(br"\351"), b"\xe9");
        assert_eq!(unescape(br"\35"), br"\35");
        assert_eq!(unquote(br#""a b""#), b"a b");
        assert_eq!(unquote(br#"""#), br#"""#);
    }

    #[test]
    fn raw_lines() {
        let l = format!(":100644 100755 {A} {B} M\tdir/a.txt\n");
        let r = parse_raw_line(l.as_bytes(), 40).unwrap();
        assert_eq!(
            (r.old_mode, r.new_mode, r.status),
            (0o100644, 0o100755, b'M')
        );
        assert_eq!((r.from_id.as_str(), r.to_id.as_str()), (A, B));
        assert_eq!(
            (&r.from_path[..], &r.to_path[..]),
            (&b"dir/a.txt"[..], &b"dir/a.txt"[..])
        );
        let l = format!(":100644 100644 {A} {A} R087\t\"caf\\351.txt\"\t\"caf\\3512.txt\"\n");
        let r = parse_raw_line(l.as_bytes(), 40).unwrap();
        assert_eq!(r.status, b'R');
        assert_eq!(
            (&r.from_path[..], &r.to_path[..]),
            (&b"caf\xe9.txt"[..], &b"caf\xe92.txt"[..])
        );
        // A path with a tab (re-queued unquoted by the type-change rule) splits at it, and
        // only renames and copies take the second part.
        let l = format!(":000000 100644 {A} {B} A\ta\tb\n");
        let r = parse_raw_line(l.as_bytes(), 40).unwrap();
        assert_eq!((&r.from_path[..], &r.to_path[..]), (&b"a"[..], &b"a"[..]));
        // A newline ends the line.
        let l = format!(":000000 100644 {A} {B} A\ta\nb\n");
        assert_eq!(parse_raw_line(l.as_bytes(), 40).unwrap().from_path, b"a");
        for bad in [
            format!("100644 100644 {A} {B} M\ta"),
            format!(":100644 100644 {A} {B} Z\ta"),
            format!(":100644 100644 {A} {B} M a"),
            format!(":100644 100644 {A}0 {B} M\ta"),
            format!(":1x0644 100644 {A} {B} M\ta"),
        ] {
            assert!(
                matches!(parse_raw_line(bad.as_bytes(), 40), Err(DiffError::RawLine)),
                "{bad}"
            );
        }
        let l = format!(":100648 100644 {A} {B} M\ta");
        assert!(matches!(
            parse_raw_line(l.as_bytes(), 40),
            Err(DiffError::RawMode("old", _))
        ));
        assert!(parse_raw_line(format!(":100644 100644 {A} {B} M\ta").as_bytes(), 64).is_err());
    }

    #[test]
    fn headers() {
        let h = |s: &str| header_from_path(s.as_bytes());
        assert_eq!(h("diff --git a/x.txt b/x.txt\n"), Some(b"x.txt".to_vec()));
        assert_eq!(
            h("diff --git \"a/caf\\351.txt\" \"b/caf\\3512.txt\"\n"),
            Some(b"caf\xe9.txt".to_vec())
        );
        assert_eq!(
            h("diff --git a/sp ace b/sp ace\n"),
            Some(b"sp ace".to_vec())
        );
        assert_eq!(h("diff --git a/x \"b/y\\tz\"\n"), Some(b"x".to_vec()));
        // Gitaly's quirk: a path holding " b/" is cut there.
        assert_eq!(h("diff --git a/p b/q b/p b/q\n"), Some(b"p".to_vec()));
        assert_eq!(h("index 123..456\n"), None);
        assert_eq!(h("diff --git x y\n"), None);
    }
}

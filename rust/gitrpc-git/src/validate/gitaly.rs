//! Gitaly's own checks of revisions and object ids, with its exact messages
//! (`internal/git/revision.go` `ValidateRevision`, `internal/git/object_id.go` `ValidateHex`),
//! for RPCs whose clients match on them. Use them where Gitaly calls them, before the
//! command builder's own checks ([`super::revision`]), which stay in force.

use crate::description::is_pseudo_revision;
use crate::{Error, Result};

/// What [`revision`] lets through besides a plain revision (Gitaly's `ValidateRevision`
/// options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevisionRules {
    /// An empty revision (`AllowEmptyRevision`).
    pub allow_empty: bool,
    /// `<rev>:<path>`: only the part before the first `:` is checked; the path may hold
    /// anything but NUL (`AllowPathScopedRevision`).
    pub path_scoped: bool,
    /// `--all`, `--not`, `--branches[=]`, `--tags[=]`, `--glob=`, `--alternate-refs`
    /// (`AllowPseudoRevision`).
    pub pseudo: bool,
}

impl RevisionRules {
    /// Nothing but a plain, non-empty revision.
    pub const PLAIN: RevisionRules = RevisionRules {
        allow_empty: false,
        path_scoped: false,
        pseudo: false,
    };
}

/// Gitaly's `ValidateRevision`: the same checks in the same order, the same messages
/// (`INVALID_ARGUMENT` with the message alone; callers add Gitaly's prefix, if any). Sizes are
/// bounded first, as everywhere in gitrpc.
pub fn revision(rev: &[u8], rules: RevisionRules) -> Result<()> {
    let max = super::MAX_REVISION
        + if rules.path_scoped {
            1 + super::MAX_PATH
        } else {
            0
        };
    super::size("revision", rev, max)?;
    if rules.pseudo && is_pseudo_revision(rev) {
        return Ok(());
    }
    if rev.starts_with(b"-") {
        return Err(Error::invalid("revision can't start with '-'"));
    }
    if rev.contains(&0) {
        return Err(Error::invalid("revision can't contain NUL"));
    }
    let rev = match rules.path_scoped {
        true => rev.split(|&b| b == b':').next().unwrap_or_default(),
        false => rev,
    };
    if !rules.allow_empty && rev.is_empty() {
        return Err(Error::invalid("empty revision"));
    }
    if rev.iter().any(|b| b" \t\n\r".contains(b)) {
        return Err(Error::invalid("revision can't contain whitespace"));
    }
    if rev.contains(&b':') {
        return Err(Error::invalid("revision can't contain ':'"));
    }
    if rev.contains(&b'\\') {
        return Err(Error::invalid("revision can't contain '\\'"));
    }
    Ok(())
}

/// Gitaly's `ObjectHash.ValidateHex`: a full object id of `hex_len` (40 for SHA-1, 64 for
/// SHA-256) lowercase hex digits. Messages: `invalid object ID: "<oid>", expected length 40,
/// got 7` and `invalid object ID: "<oid>", invalid character 'G'` (Go's `%q`).
pub fn object_id(oid: &str, hex_len: usize) -> Result<()> {
    if oid.len() != hex_len {
        return Err(Error::invalid(format!(
            "invalid object ID: {}, expected length {hex_len}, got {}",
            go_quote(oid.as_bytes()),
            oid.len()
        )));
    }
    if let Some(c) = oid.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(Error::invalid(format!(
            "invalid object ID: {}, invalid character {}",
            go_quote(oid.as_bytes()),
            go_quote_rune(c)
        )));
    }
    Ok(())
}

/// Go's `%q` of a string (`strconv.Quote`): `"..."` with `\"`, `\\`, `\n` & co., `\xNN` for
/// bytes that aren't UTF-8 and for ASCII control characters, `\u`/`\U` for other
/// non-printable characters. (Go's printability test is Unicode's; here every non-control
/// character outside ASCII counts as printable, which differs only for unassigned or
/// format characters.)
pub fn go_quote(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            quote_char(&mut out, c, '"');
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a rune (`strconv.QuoteRune`): `'x'`, `'\''`, `'\n'`...
pub fn go_quote_rune(c: char) -> String {
    let mut out = String::from("'");
    quote_char(&mut out, c, '\'');
    out.push('\'');
    out
}

fn quote_char(out: &mut String, c: char, quote: char) {
    match c {
        _ if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        ' '..='~' => out.push(c),
        _ if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        _ if c.is_control() => match c as u32 {
            n if n < 0x10000 => out.push_str(&format!("\\u{n:04x}")),
            n => out.push_str(&format!("\\U{n:08x}")),
        },
        _ => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(rev: &[u8], rules: RevisionRules) -> String {
        match revision(rev, rules) {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    /// The cases of Gitaly's `TestValidateRevision`, with its messages.
    #[test]
    fn revisions_as_gitaly() {
        let plain = RevisionRules::PLAIN;
        let scoped = RevisionRules {
            path_scoped: true,
            ..plain
        };
        let pseudo = RevisionRules {
            pseudo: true,
            ..plain
        };
        for (rev, rules, want) in [
            (&b"foo/bar"[..], plain, "ok"),
            (b"", plain, "empty revision"),
            (
                b"",
                RevisionRules {
                    allow_empty: true,
                    ..plain
                },
                "ok",
            ),
            (b"-foo", plain, "revision can't start with '-'"),
            (b"foo bar", plain, "revision can't contain whitespace"),
            (b"foo\tbar", plain, "revision can't contain whitespace"),
            (b"foo\nbar", plain, "revision can't contain whitespace"),
            (b"foo\rbar", plain, "revision can't contain whitespace"),
            (b"foo\0bar", plain, "revision can't contain NUL"),
            (b"foo:bar", plain, "revision can't contain ':'"),
            (b"foo\\bar", plain, "revision can't contain '\\'"),
            (b"foo:bar baz\n\\", scoped, "ok"),
            (b"foo bar:baz", scoped, "revision can't contain whitespace"),
            (b":path", scoped, "empty revision"),
            (b"foo:\0", scoped, "revision can't contain NUL"),
            (b"--all", plain, "revision can't start with '-'"),
            (b"--all", pseudo, "ok"),
            (b"--not", pseudo, "ok"),
            (b"--branches", pseudo, "ok"),
            (b"--branches=foo/*", pseudo, "ok"),
            (b"--tags", pseudo, "ok"),
            (b"--tags=v*", pseudo, "ok"),
            (b"--glob=refs/*", pseudo, "ok"),
            (b"--alternate-refs", pseudo, "ok"),
            (b"--remotes", pseudo, "revision can't start with '-'"),
            (b"--all=x", pseudo, "revision can't start with '-'"),
        ] {
            assert_eq!(
                msg(rev, rules),
                want,
                "{:?} {rules:?}",
                String::from_utf8_lossy(rev)
            );
        }
        let huge = vec![b'a'; 10 << 20];
        assert!(msg(&huge, plain).starts_with("revision too long"));
    }

    #[test]
    fn object_ids_as_gitaly() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        assert!(object_id(sha1, 40).is_ok());
        assert!(object_id(&"a".repeat(64), 64).is_ok());
        assert_eq!(
            object_id("abc", 40).unwrap_err().to_string(),
            r#"invalid object ID: "abc", expected length 40, got 3"#
        );
        assert_eq!(
            object_id(sha1, 64).unwrap_err().to_string(),
            format!("invalid object ID: \"{sha1}\", expected length 64, got 40")
        );
        let upper = "0123456789ABCDEF0123456789abcdef01234567";
        assert_eq!(
            object_id(upper, 40).unwrap_err().to_string(),
            format!("invalid object ID: \"{upper}\", invalid character 'A'")
        );
        let odd = "\"23456789abcdef0123456789abcdef0123456'\n";
        assert_eq!(
            object_id(odd, 40).unwrap_err().to_string(),
            r#"invalid object ID: "\"23456789abcdef0123456789abcdef0123456'\n", invalid character '"'"#
        );
        assert_eq!(go_quote_rune('\''), r"'\''");
        assert_eq!(
            go_quote(b"caf\xe9 \xc3\xa9\x01\x7f\\"),
            r#""caf\xe9 é\x01\x7f\\""#
        );
        assert_eq!(go_quote("\u{85}".as_bytes()), r#""\u0085""#);
    }
}

//! Page tokens of GetTreeEntries, as Gitaly makes them: standard base64 of the JSON object
//! `{"file_name":"<path>"}` written as Go's `encoding/json` writes it (`<`, `>`, `&`, U+2028
//! and U+2029 escaped as `\u....`). So a token of ours is Gitaly's, byte for byte, and the
//! same as the ones this server issued before (for UTF-8 paths; a non-UTF-8 path can't be
//! carried by a JSON string, and its token never matched an entry, here or in Gitaly). A
//! token that doesn't decode so is an old-style one: an object id.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub enum Token {
    Path(Vec<u8>),
    Oid(String),
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// Absent reads as empty, as Go's decoder leaves it.
    #[serde(default)]
    file_name: String,
}

pub fn encode(path: &[u8]) -> String {
    let cursor = Cursor {
        file_name: String::from_utf8_lossy(path).into_owned(),
    };
    let mut json = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut json, GoEscapes);
    cursor
        .serialize(&mut ser)
        .expect("a string member serializes into memory");
    STANDARD.encode(json)
}

pub fn decode(token: &str) -> Token {
    let cursor = STANDARD
        .decode(token)
        .ok()
        .and_then(|json| serde_json::from_slice::<Cursor>(&json).ok());
    match cursor {
        Some(c) => Token::Path(c.file_name.into_bytes()),
        None => Token::Oid(token.to_string()),
    }
}

/// serde_json's compact output plus the escapes Go adds for HTML safety.
struct GoEscapes;

impl serde_json::ser::Formatter for GoEscapes {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens this server issued before (checked against the hand-written encoder it had)
    /// and Gitaly issues: the same strings, so clients holding one across an upgrade (or a
    /// move from Gitaly) go on paginating.
    const ISSUED: &[(&[u8], &str)] = &[
        (b"foo", "eyJmaWxlX25hbWUiOiJmb28ifQ=="),
        (
            b"a b/c<d>",
            "eyJmaWxlX25hbWUiOiJhIGIvY1x1MDAzY2RcdTAwM2UifQ==",
        ),
        (
            "dir/é\"q\\\n".as_bytes(),
            "eyJmaWxlX25hbWUiOiJkaXIvw6lcInFcXFxuIn0=",
        ),
        (
            "x&y\u{2028}z".as_bytes(),
            "eyJmaWxlX25hbWUiOiJ4XHUwMDI2eVx1MjAyOHoifQ==",
        ),
        (
            b"tab\there\x01\x7f/",
            "eyJmaWxlX25hbWUiOiJ0YWJcdGhlcmVcdTAwMDF/LyJ9",
        ),
    ];

    #[test]
    fn tokens_are_unchanged_and_round_trip() {
        for (path, token) in ISSUED {
            assert_eq!(encode(path), *token, "{path:?}");
            match decode(token) {
                Token::Path(p) => assert_eq!(p, *path),
                Token::Oid(_) => panic!("{token} did not decode"),
            }
        }
        assert_eq!(
            STANDARD.decode(encode(b"a b/c<d>")).unwrap(),
            br#"{"file_name":"a b/c\u003cd\u003e"}"#
        );
    }

    #[test]
    fn other_tokens_are_object_ids() {
        for t in [
            "0123456789abcdef0123456789abcdef01234567",
            "non-existent",
            "",
            // base64 of JSON that isn't an object with a string file_name
            &STANDARD.encode(br#"{"file_name":1}"#),
            &STANDARD.encode(b"[1]"),
        ] {
            assert!(matches!(decode(t), Token::Oid(o) if o == t), "{t:?}");
        }
        // Members Go's decoder would ignore are ignored; a missing name is empty.
        let t = STANDARD.encode(br#"{"x":[1],"file_name":"a\/b \ud83d\ude00"}"#);
        assert!(matches!(decode(&t), Token::Path(p) if p == "a/b 😀".as_bytes()));
        assert!(matches!(decode(&STANDARD.encode(b"{}")), Token::Path(p) if p.is_empty()));
    }
}

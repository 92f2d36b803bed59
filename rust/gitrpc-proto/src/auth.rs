//! Gitaly's v2 authentication token, part of the wire contract: every call carries
//! `authorization: Bearer v2.<hex hmac-sha256(secret, ts)>.<ts>`, `ts` being Unix seconds as
//! decimal text. The server accepts a token issued within ±[`WINDOW`] of its clock. The
//! secret never travels; a token is good for a minute and for any call.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

/// How far a token's timestamp may be from the server's clock, either way.
pub const WINDOW: Duration = Duration::from_secs(30);

/// The secret held in a token file (the server's `[auth] token_file`, `gitrpc-ssh
/// --token-file`): its text, trailing line endings ignored, so server and clients agree.
pub fn read_secret_file(path: &std::path::Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?
        .trim_end_matches(['\n', '\r'])
        .to_string())
}

/// The `authorization` header value for a call made at `now`.
pub fn bearer(secret: &[u8], now: SystemTime) -> String {
    let ts = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string();
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, ts.as_bytes());
    format!("Bearer v2.{}.{ts}", hex::encode(tag.as_ref()))
}

/// Why a call's credentials were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `authorization` header, or not a bearer token in the v2 shape:
    /// `UNAUTHENTICATED` ("authentication required").
    Missing,
    /// A v2 token with a wrong signature or a timestamp outside the window:
    /// `PERMISSION_DENIED` ("permission denied").
    Denied,
}

/// Check an `authorization` header value (or its absence) against `secret` at `now`.
pub fn check(secret: &[u8], header: Option<&[u8]>, now: SystemTime) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Missing)?;
    let header = std::str::from_utf8(header).map_err(|_| Refusal::Missing)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(Refusal::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Missing);
    }
    let mut parts = token.trim().splitn(3, '.');
    let (version, signature, message) = match (parts.next(), parts.next(), parts.next()) {
        (Some(v), Some(s), Some(m)) => (v, s, m),
        _ => return Err(Refusal::Missing),
    };
    if version != "v2" {
        return Err(Refusal::Denied);
    }
    let issued: u64 = message.parse().map_err(|_| Refusal::Denied)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if issued.abs_diff(now) > WINDOW.as_secs() {
        return Err(Refusal::Denied);
    }
    let signature = hex::decode(signature).map_err(|_| Refusal::Denied)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    // Constant-time comparison.
    hmac::verify(&key, message.as_bytes(), &signature).map_err(|_| Refusal::Denied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn matches_gitaly_v2_format() {
        // Go: fmt.Sprintf("v2.%x.%s", hmacSign("secret", "1700000000"), "1700000000"),
        // the same as `printf 1700000000 | openssl dgst -sha256 -hmac secret`.
        let h = bearer(b"secret", at(1_700_000_000));
        let token = h.strip_prefix("Bearer v2.").unwrap();
        let (sig, ts) = token.split_once('.').unwrap();
        assert_eq!(ts, "1700000000");
        assert_eq!(
            sig,
            "4b227f8831b3763d066901751ad4c583ed08832bf1924a4ec50c2e871b1e8586"
        );
    }

    #[test]
    fn accepts_within_window_and_refuses_outside() {
        let now = 1_700_000_000;
        for skew in [0i64, -30, 30, 29, -29] {
            let h = bearer(b"s3cret", at((now as i64 + skew) as u64));
            assert_eq!(
                check(b"s3cret", Some(h.as_bytes()), at(now)),
                Ok(()),
                "{skew}"
            );
        }
        for skew in [-31i64, 31, 3600, -3600] {
            let h = bearer(b"s3cret", at((now as i64 + skew) as u64));
            assert_eq!(
                check(b"s3cret", Some(h.as_bytes()), at(now)),
                Err(Refusal::Denied),
                "{skew}"
            );
        }
    }

    #[test]
    fn refuses_bad_tokens() {
        let now = at(1_700_000_000);
        let good = bearer(b"right", now);
        assert_eq!(check(b"right", None, now), Err(Refusal::Missing));
        assert_eq!(
            check(b"right", Some(b"Basic abc"), now),
            Err(Refusal::Missing)
        );
        assert_eq!(check(b"right", Some(b"Bearer"), now), Err(Refusal::Missing));
        assert_eq!(
            check(b"right", Some(b"Bearer v2.abc"), now),
            Err(Refusal::Missing)
        );
        assert_eq!(
            check(b"wrong", Some(good.as_bytes()), now),
            Err(Refusal::Denied)
        );
        let v1 = good.replacen("v2.", "v1.", 1);
        assert_eq!(
            check(b"right", Some(v1.as_bytes()), now),
            Err(Refusal::Denied)
        );
        let tampered = good.replacen("v2.", "v2.00", 1);
        assert_eq!(
            check(b"right", Some(tampered.as_bytes()), now),
            Err(Refusal::Denied)
        );
        assert_eq!(
            check(b"right", Some(b"Bearer v2.zz.1700000000"), now),
            Err(Refusal::Denied)
        );
        // Header case and surrounding spaces don't matter (gRPC metadata is lowercase anyway).
        let lower = good.replacen("Bearer", "bearer", 1);
        assert_eq!(check(b"right", Some(lower.as_bytes()), now), Ok(()));
    }
}

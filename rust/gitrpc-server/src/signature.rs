//! Author and committer identities of the commits (and tags) operations write, from the
//! request's `User` and `timestamp` (Gitaly's `SignatureFromRequest`): the date is the
//! timestamp (seconds; now if unset), recorded with the offset of the user's IANA timezone
//! at that instant (UTC if none); name and email lose `\n`, `<` and `>`.

use std::ffi::OsString;

use gitrpc_git::objects::Signature as ParsedSignature;
use gitrpc_proto::gitaly::User;

use crate::error::{Error, Result};

/// An identity with a date, ready for git.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub name: Vec<u8>,
    pub email: Vec<u8>,
    /// Seconds since the epoch.
    pub seconds: i64,
    /// `+0800`, `-0130`.
    pub offset: String,
}

/// What git strips from names and emails ("crud"), at both ends.
fn is_crud(b: u8) -> bool {
    b".,:;<>\"'".contains(&b) || b.is_ascii_whitespace()
}

fn sanitize(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|b| !b"\n<>".contains(b)).collect()
}

/// The date of a request: `timestamp` (nanoseconds dropped) or now.
pub fn date(timestamp: Option<&prost_types::Timestamp>) -> Result<i64> {
    match timestamp {
        Some(t) if t.seconds < 0 => Err(Error::invalid("timestamp before 1970 is not supported")),
        Some(t) => Ok(t.seconds),
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)),
    }
}

/// `+hhmm` of IANA zone `zone` (`""`: UTC) at `seconds`; an unknown zone is
/// `INVALID_ARGUMENT "unknown time zone <zone>"`.
pub fn offset(zone: &str, seconds: i64) -> Result<String> {
    if zone.is_empty() {
        return Ok("+0000".to_string());
    }
    let unknown = || Error::invalid(format!("unknown time zone {zone}"));
    if zone.contains('\0') || zone.len() > 256 {
        return Err(unknown());
    }
    let tz = jiff::tz::TimeZone::get(zone).map_err(|_| unknown())?;
    let at = jiff::Timestamp::from_second(seconds).map_err(|_| unknown())?;
    Ok(format_offset(tz.to_offset(at).seconds()))
}

fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let m = secs.unsigned_abs() / 60;
    format!("{sign}{:02}{:02}", m / 60, m % 60)
}

impl Signature {
    /// The user's identity at the request's date in the user's timezone.
    pub fn from_user(user: &User, timestamp: Option<&prost_types::Timestamp>) -> Result<Signature> {
        let seconds = date(timestamp)?;
        Ok(Signature {
            name: sanitize(&user.name),
            email: sanitize(&user.email),
            seconds,
            offset: offset(&user.timezone, seconds)?,
        })
    }

    /// Another identity (name, email) at this one's date and zone.
    pub fn with_identity(&self, name: &[u8], email: &[u8]) -> Signature {
        Signature {
            name: sanitize(name),
            email: sanitize(email),
            ..self.clone()
        }
    }

    /// An identity as a commit records it (a picked commit's author).
    pub fn from_parsed(s: &ParsedSignature) -> Signature {
        Signature {
            name: sanitize(&s.name),
            email: sanitize(&s.email),
            seconds: s.time,
            offset: String::from_utf8_lossy(&s.timezone).into_owned(),
        }
    }

    /// Would git refuse it (nothing left of the name or email once trimmed)?
    pub fn is_empty(&self) -> bool {
        let blank = |s: &[u8]| s.iter().all(|b| is_crud(*b));
        blank(&self.name) || blank(&self.email)
    }

    /// `@<seconds> <offset>`, as `GIT_*_DATE` (git 2.47 reads it exactly).
    pub fn git_date(&self) -> String {
        format!("@{} {}", self.seconds, self.offset)
    }

    /// `<name> <<email>> <seconds> <offset>`, as a tag's `tagger` line holds it.
    pub fn line(&self) -> Vec<u8> {
        let mut l = self.name.clone();
        l.extend_from_slice(b" <");
        l.extend_from_slice(&self.email);
        l.extend_from_slice(format!("> {} {}", self.seconds, self.offset).as_bytes());
        l
    }

    fn os(b: &[u8]) -> OsString {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b).to_os_string()
    }

    /// `GIT_AUTHOR_*` variables.
    pub fn author_env(&self) -> [(&'static str, OsString); 3] {
        [
            ("GIT_AUTHOR_NAME", Self::os(&self.name)),
            ("GIT_AUTHOR_EMAIL", Self::os(&self.email)),
            ("GIT_AUTHOR_DATE", self.git_date().into()),
        ]
    }

    /// `GIT_COMMITTER_*` variables.
    pub fn committer_env(&self) -> [(&'static str, OsString); 3] {
        [
            ("GIT_COMMITTER_NAME", Self::os(&self.name)),
            ("GIT_COMMITTER_EMAIL", Self::os(&self.email)),
            ("GIT_COMMITTER_DATE", self.git_date().into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_dates() {
        // 2021-01-01: Shanghai +0800 always; New York -0500 in winter, -0400 in summer.
        assert_eq!(offset("Asia/Shanghai", 1_609_459_200).unwrap(), "+0800");
        assert_eq!(offset("America/New_York", 1_609_459_200).unwrap(), "-0500");
        assert_eq!(offset("America/New_York", 1_625_097_600).unwrap(), "-0400");
        assert_eq!(offset("Asia/Kolkata", 0).unwrap(), "+0530");
        assert_eq!(offset("", 12).unwrap(), "+0000");
        let e = offset("Mars/Olympus", 0).unwrap_err();
        assert_eq!(e.to_string(), "unknown time zone Mars/Olympus");
        assert!(date(Some(&prost_types::Timestamp {
            seconds: -1,
            nanos: 0
        }))
        .is_err());
        let user = User {
            name: b"Jane <\nDoe>".to_vec(),
            email: b"jane@example.com".to_vec(),
            timezone: "Asia/Shanghai".into(),
            ..Default::default()
        };
        let ts = prost_types::Timestamp {
            seconds: 12,
            nanos: 999,
        };
        let s = Signature::from_user(&user, Some(&ts)).unwrap();
        assert_eq!(s.name, b"Jane Doe");
        assert_eq!(s.git_date(), "@12 +0800");
        assert!(!s.is_empty());
        assert!(s.with_identity(b" .", b"x").is_empty());
    }
}

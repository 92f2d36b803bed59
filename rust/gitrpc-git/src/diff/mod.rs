//! git's diff output, parsed: what the diff RPCs (CommitDiff, FindChangedPaths, GetRawChanges)
//! read from `git diff` and `git diff-tree`, as Gitaly reads it. Pure parsing over any
//! [`tokio::io::AsyncRead`], testable without a server.
//!
//! - [`parser`]: `git diff --patch --raw` cut into files, with CommitDiff's limits
//!   ([`Parser`], [`Limits`], [`Diff`]); patches stored in a [`PatchBuf`].
//! - [`quote`]: git's C-quoted paths, raw lines and `diff --git` headers.
//! - [`changed`]: `git diff-tree -z` records ([`ChangedPath`]), also with `-c`/`-m` and
//!   commit ids (FindChangedPaths, CommitDiff's whitespace manifest).
//! - [`records`]: `git diff --raw -z` ([`RawRecord`]) and `git diff --numstat -z` ([`NumStat`]).
//! - [`reader`]: the buffered reader under all of them (lines as slices, long ones in pieces).

pub mod changed;
pub mod parser;
pub mod patch;
pub mod quote;
pub mod reader;
pub mod records;

pub use changed::{ChangeStatus, ChangedPath, ChangedPaths};
pub use parser::{Diff, Limits, Parser};
pub use patch::PatchBuf;
pub use reader::Reader;
pub use records::{NumStat, NumStats, RawRecord, RawRecords};

/// What went wrong reading diff output; the messages are Gitaly's (clients see them after
/// `parse failure: `).
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("raw line regexp mismatch")]
    RawLine,
    #[error("raw {0} mode: strconv.ParseInt: parsing {1:?}: invalid syntax")]
    RawMode(&'static str, String),
    #[error("diff header regexp mismatch")]
    Header,
    /// A record of `-z` output that does not have the expected shape.
    #[error("{0}")]
    Record(String),
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
}

/// Parse an octal file mode (`100644`) as Go's `strconv.ParseInt(s, 8, 32)`.
pub fn parse_mode(s: &[u8]) -> Option<i32> {
    if s.is_empty() || !s.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return None;
    }
    i64::from_str_radix(std::str::from_utf8(s).ok()?, 8)
        .ok()
        .and_then(|m| i32::try_from(m).ok())
}

/// How Go prints a failed process (`exec.ExitError`): `exit status 128`, or
/// `signal: killed` — the words Gitaly's messages carry (`eachDiff: exit status 128`).
pub fn exit_error(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(libc::SIGKILL)) => "signal: killed".into(),
        (None, Some(libc::SIGTERM)) => "signal: terminated".into(),
        (None, Some(sig)) => format!("signal: {sig}"),
        (None, None) => status.to_string(),
    }
}

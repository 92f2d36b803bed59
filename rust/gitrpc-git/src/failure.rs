//! What a failed git said, classified once, here, from its stderr (Gitaly's
//! `updateref.parseStderr`). Callers match on types; no service reads git's messages, so a
//! reworded message changes at most this file (and its tests, which pin git's wording).
//!
//! Only the first `fatal:`/`error:` line counts (git adds hints after it). Messages are
//! matched without their command prefix, so the same failure is classified alike whether it
//! came from `update-ref --stdin` (`fatal: prepare: cannot lock ref ...`), a one-shot
//! `update-ref` (`fatal: update_ref failed for ref ...: cannot lock ref ...`) or
//! `symbolic-ref` (`error: cannot lock ref 'HEAD': ...`).

/// Why git could not write references. The messages are Gitaly's (`updateref.*Error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// A lock file exists: another writer is at work, or one was killed and left it (see
    /// [`crate::housekeeping::remove_stale_locks`]). `reference` is empty when git named a
    /// lock of the whole store (`packed-refs.lock`, a reftable table).
    #[error("reference is already locked")]
    Locked { reference: String },
    /// The reference is not at the old value given (`actual` is `None` when it doesn't
    /// exist; git names neither value then).
    #[error("reference does not point to expected object")]
    Mismatch {
        reference: String,
        expected: Option<String>,
        actual: Option<String>,
    },
    /// The old value said "must not exist", and it does.
    #[error("reference already exists")]
    AlreadyExists { reference: String },
    /// The new value is not an object of the repository.
    #[error("target object missing")]
    MissingObject { reference: String, oid: String },
    /// A branch (`refs/heads/`) can only point at a commit.
    #[error("target object not a commit")]
    NonCommitObject { reference: String, oid: String },
    #[error("invalid reference format")]
    InvalidFormat { reference: String },
    /// `refs/a` exists, so `refs/a/b` can't (or the other way round).
    #[error("file directory conflict")]
    FileDirectoryConflict {
        existing: String,
        conflicting: String,
    },
    /// Two updates of one transaction conflict as file and directory.
    #[error("conflicting reference updates in the same transaction")]
    InTransactionConflict { first: String, second: String },
    #[error("reference has been updated multiple times within a transaction")]
    MultipleUpdates { reference: String },
}

/// A failure of a command that doesn't write references.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A pathspec names something outside the repository (`../x`, `/etc/passwd`).
    #[error("path outside the repository: {path:?}")]
    PathOutsideRepository { path: String },
}

/// The first `fatal:` or `error:` line of `stderr`, without that prefix.
fn first_error(stderr: &str) -> Option<&str> {
    stderr.lines().find_map(|l| {
        l.strip_prefix("fatal: ")
            .or_else(|| l.strip_prefix("error: "))
    })
}

/// The text between `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// The text after `start`, up to the end of the line.
fn after<'a>(s: &'a str, start: &str) -> Option<&'a str> {
    Some(&s[s.find(start)? + start.len()..])
}

fn owned(s: &str) -> String {
    s.to_string()
}

impl RefError {
    /// Classify the stderr of a git that writes references; `None` if it says something
    /// else (the caller keeps the plain failure then).
    pub fn classify(stderr: &str) -> Option<RefError> {
        let line = first_error(stderr)?;
        // "cannot lock ref '<r>': <why>" is how most refusals start.
        let locked_ref = between(line, "cannot lock ref '", "': ");
        let why = locked_ref.and_then(|r| after(line, &format!("cannot lock ref '{r}': ")));
        if line.ends_with("cannot lock references") {
            // reftable: the whole table is locked.
            return Some(RefError::Locked {
                reference: String::new(),
            });
        }
        if let (Some(r), Some(why)) = (locked_ref, why) {
            if why.starts_with("Unable to create '") && why.contains(".lock': File exists") {
                return Some(RefError::Locked {
                    reference: owned(r),
                });
            }
        }
        if line.contains("packed-refs.lock': File exists")
            || line.contains("packed-refs.new: File exists")
        {
            return Some(RefError::Locked {
                reference: String::new(),
            });
        }
        if let Some(r) = after(line, "invalid ref format: ") {
            return Some(RefError::InvalidFormat {
                reference: owned(r),
            });
        }
        if let Some(why) = why {
            if let (Some(existing), Some(conflicting)) = (
                between(why, "'", "' exists; cannot create '"),
                between(why, "' exists; cannot create '", "'"),
            ) {
                return Some(RefError::FileDirectoryConflict {
                    existing: owned(existing),
                    conflicting: owned(conflicting),
                });
            }
        }
        if let (Some(first), Some(second)) = (
            between(line, "cannot process '", "' and '"),
            between(line, "' and '", "' at the same time"),
        ) {
            return Some(RefError::InTransactionConflict {
                first: owned(first),
                second: owned(second),
            });
        }
        if let (Some(r), Some(oid)) = (
            between(line, "trying to write ref '", "' with nonexistent object "),
            after(line, "' with nonexistent object "),
        ) {
            return Some(RefError::MissingObject {
                reference: owned(r),
                oid: owned(oid.trim()),
            });
        }
        if let (Some(oid), Some(r)) = (
            between(line, "trying to write non-commit object ", " to branch '"),
            between(line, " to branch '", "'"),
        ) {
            return Some(RefError::NonCommitObject {
                reference: owned(r),
                oid: owned(oid),
            });
        }
        if let (Some(r), Some(why)) = (locked_ref, why) {
            if let (Some(actual), Some(expected)) = (
                between(why, "is at ", " but expected "),
                after(why, " but expected "),
            ) {
                return Some(RefError::Mismatch {
                    reference: owned(r),
                    expected: Some(owned(expected.trim())),
                    actual: Some(owned(actual)),
                });
            }
            if why.starts_with("unable to resolve reference") {
                return Some(RefError::Mismatch {
                    reference: owned(r),
                    expected: None,
                    actual: None,
                });
            }
            if why == "reference already exists" {
                return Some(RefError::AlreadyExists {
                    reference: owned(r),
                });
            }
        }
        if let Some(r) = between(line, "multiple updates for ref '", "' not allowed") {
            return Some(RefError::MultipleUpdates {
                reference: owned(r),
            });
        }
        None
    }

    /// The reference the failure is about (empty for a lock of the whole store).
    pub fn reference(&self) -> &str {
        match self {
            RefError::Locked { reference }
            | RefError::Mismatch { reference, .. }
            | RefError::AlreadyExists { reference }
            | RefError::MissingObject { reference, .. }
            | RefError::NonCommitObject { reference, .. }
            | RefError::InvalidFormat { reference }
            | RefError::MultipleUpdates { reference } => reference,
            RefError::FileDirectoryConflict { conflicting, .. } => conflicting,
            RefError::InTransactionConflict { first, .. } => first,
        }
    }
}

impl ReadError {
    /// Classify the stderr of a git that reads.
    pub fn classify(stderr: &str) -> Option<ReadError> {
        let line = first_error(stderr)?;
        let (path, rest) = line.split_once(": '")?;
        rest.contains("' is outside repository at '")
            .then(|| ReadError::PathOutsideRepository { path: owned(path) })
    }
}

/// Did `git log` fail because a revision it was given doesn't resolve? (FindCommits answers
/// `NOT_FOUND` then; Gitaly's four patterns: an unknown revision or path, a bad object, a
/// bad revision, an invalid range.) `stderr` as captured ([`crate::Process::stderr`]:
/// trimmed) or whole.
pub fn log_revision_missing(stderr: &str) -> bool {
    let stderr = stderr.trim_end_matches('\n');
    let unknown = stderr.lines().any(|l| {
        l.find("fatal: ambiguous argument '").is_some_and(|i| {
            l[i..].contains("': unknown revision or path not in the working tree.")
        })
    });
    let hex_after = |start: &str| {
        stderr.match_indices(start).any(|(i, _)| {
            stderr[i + start.len()..]
                .bytes()
                .next()
                .is_some_and(|b| matches!(b, b'0'..=b'9' | b'a'..=b'g'))
        })
    };
    let bad_revision = stderr
        .strip_prefix("fatal: bad revision '")
        .and_then(|r| r.strip_suffix('\''))
        .is_some_and(|r| !r.contains('\n'));
    let range = stderr
        .match_indices("fatal: Invalid revision range ")
        .any(|(i, m)| {
            let r = &stderr[i + m.len()..];
            let hex = |s: &str| {
                s.bytes()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'g'))
                    .count()
            };
            let a = hex(r);
            a > 0 && r[a..].starts_with("..") && hex(&r[a + 2..]) > 0
        });
    unknown || hex_after("fatal: bad object ") || bad_revision || range
}

/// Why `git blame` failed, where RawBlame tells the reasons apart (Gitaly's tests of its
/// stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlameError {
    /// `fatal: no such path <p> in <rev>`.
    NoSuchPath,
    /// `fatal: invalid object name: <what>`: a line of the ignore-revs file that isn't a
    /// revision; the rest of stderr after that prefix, with its line end (as Gitaly has it).
    InvalidObjectName { rest: String },
    /// `fatal: file <p> has only <n> lines`: the range starts past the end.
    OutOfRange { lines: u64 },
}

impl BlameError {
    /// `stderr` as captured ([`crate::Process::stderr`]: trimmed) or whole.
    pub fn classify(stderr: &str) -> Option<BlameError> {
        let stderr = stderr.trim_end_matches('\n');
        if stderr.starts_with("fatal: no such path ") {
            return Some(BlameError::NoSuchPath);
        }
        if let Some(rest) = stderr.strip_prefix("fatal: invalid object name: ") {
            return Some(BlameError::InvalidObjectName {
                rest: format!("{rest}\n"),
            });
        }
        let line = stderr.strip_prefix("fatal: file ")?;
        if line.contains('\n') {
            return None;
        }
        let words = line
            .strip_suffix(" lines")
            .or_else(|| line.strip_suffix(" line"))?;
        let (_, n) = words.rsplit_once(" has only ")?;
        n.parse().ok().map(|lines| BlameError::OutOfRange { lines })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK_HINT: &str = "\n\nAnother git process seems to be running in this repository, e.g.\nan editor opened by 'git commit'. Please make sure all processes\nare terminated then try again. If it still fails, a git process\nmay have crashed in this repository earlier:\nremove the file manually to continue.\n";

    fn c(stderr: &str) -> Option<RefError> {
        RefError::classify(stderr)
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    /// git 2.47's words, as printed (each line checked against real git when written; the
    /// tests in tests/ run real git for the common ones).
    #[test]
    fn update_ref_failures() {
        let a = "1ac3cc9e16165d5ab48612c842b823d1aa3364ab";
        let b = "a54275e7340a66b73e5a58d517c0e488cdbc8542";
        let main = || s("refs/heads/main");
        assert_eq!(
            c(&format!(
                "fatal: prepare: cannot lock ref 'refs/heads/main': is at {a} but expected {b}\n"
            )),
            Some(RefError::Mismatch {
                reference: main(),
                expected: Some(s(b)),
                actual: Some(s(a))
            })
        );
        assert_eq!(
            c("fatal: prepare: cannot lock ref 'refs/heads/x': unable to resolve reference 'refs/heads/x'\n"),
            Some(RefError::Mismatch { reference: s("refs/heads/x"), expected: None, actual: None })
        );
        assert_eq!(
            c("fatal: update_ref failed for ref 'refs/heads/zz': cannot lock ref 'refs/heads/zz': unable to resolve reference 'refs/heads/zz'\n"),
            Some(RefError::Mismatch { reference: s("refs/heads/zz"), expected: None, actual: None })
        );
        assert_eq!(
            c("fatal: prepare: cannot lock ref 'refs/heads/main': reference already exists\n"),
            Some(RefError::AlreadyExists { reference: main() })
        );
        assert_eq!(
            c(&format!("fatal: prepare: cannot update ref 'refs/heads/y': trying to write ref 'refs/heads/y' with nonexistent object {a}\n")),
            Some(RefError::MissingObject { reference: s("refs/heads/y"), oid: s(a) })
        );
        assert_eq!(
            c(&format!("fatal: update_ref failed for ref 'refs/heads/main': cannot update ref 'refs/heads/main': trying to write ref 'refs/heads/main' with nonexistent object {a}\n")),
            Some(RefError::MissingObject { reference: main(), oid: s(a) })
        );
        assert_eq!(
            c(&format!("fatal: prepare: cannot update ref 'refs/heads/y': trying to write non-commit object {a} to branch 'refs/heads/y'\n")),
            Some(RefError::NonCommitObject { reference: s("refs/heads/y"), oid: s(a) })
        );
        assert_eq!(
            c("fatal: prepare: cannot lock ref 'refs/heads/main/sub': 'refs/heads/main' exists; cannot create 'refs/heads/main/sub'\n"),
            Some(RefError::FileDirectoryConflict { existing: main(), conflicting: s("refs/heads/main/sub") })
        );
        assert_eq!(
            c("fatal: prepare: cannot lock ref 'refs/heads/q': cannot process 'refs/heads/q' and 'refs/heads/q/r' at the same time\n"),
            Some(RefError::InTransactionConflict { first: s("refs/heads/q"), second: s("refs/heads/q/r") })
        );
        assert_eq!(
            c("fatal: prepare: multiple updates for ref 'refs/heads/q' not allowed\n"),
            Some(RefError::MultipleUpdates {
                reference: s("refs/heads/q")
            })
        );
        assert_eq!(
            c("fatal: invalid ref format: refs/heads/a..b\n"),
            Some(RefError::InvalidFormat {
                reference: s("refs/heads/a..b")
            })
        );
        assert_eq!(c("fatal: something new\n"), None);
        assert_eq!(c(""), None);
    }

    #[test]
    fn locks() {
        let main = RefError::Locked {
            reference: s("refs/heads/main"),
        };
        for stderr in [
            format!("fatal: prepare: cannot lock ref 'refs/heads/main': Unable to create '/r/./refs/heads/main.lock': File exists.{LOCK_HINT}"),
            format!("fatal: commit: cannot lock ref 'refs/heads/main': Unable to create '/r/refs/heads/main.lock': File exists.{LOCK_HINT}"),
            format!("fatal: update_ref failed for ref 'refs/heads/main': cannot lock ref 'refs/heads/main': Unable to create '/r/refs/heads/main.lock': File exists.{LOCK_HINT}"),
        ] {
            assert_eq!(c(&stderr), Some(main.clone()), "{stderr}");
        }
        assert_eq!(
            c(&format!("error: cannot lock ref 'HEAD': Unable to create '/r/HEAD.lock': File exists.{LOCK_HINT}")),
            Some(RefError::Locked { reference: s("HEAD") })
        );
        let store = Some(RefError::Locked {
            reference: String::new(),
        });
        assert_eq!(
            c(&format!(
                "fatal: prepare: Unable to create '/r/./packed-refs.lock': File exists.{LOCK_HINT}"
            )),
            store
        );
        assert_eq!(c("fatal: prepare: cannot lock references\n"), store);
    }

    #[test]
    fn paths_outside_the_repository() {
        assert_eq!(
            ReadError::classify("fatal: ../x: '../x' is outside repository at '/tmp/r'\n"),
            Some(ReadError::PathOutsideRepository { path: s("../x") })
        );
        assert_eq!(ReadError::classify("fatal: bad revision 'x'\n"), None);
    }

    #[test]
    fn log_missing_revisions() {
        for yes in [
            "fatal: ambiguous argument 'nope': unknown revision or path not in the working tree.\nUse '--' to separate paths from revisions, like this:\n",
            "fatal: bad object 1234567890123456789012345678901234567890\n",
            "fatal: bad revision 'x..y'\n",
            "fatal: bad revision 'nope'",
            "fatal: Invalid revision range 37811987837aacbd3b1d8ceb8de669b33f7c7c0a..37811987837aacbd3b1d8ceb8de669b33f7c7c0b\n",
        ] {
            assert!(log_revision_missing(yes), "{yes}");
        }
        for no in [
            "fatal: bad revision 'x'\nand more\n",
            "fatal: bad revision 'x'\nand more",
            "fatal: bad object HEAD\n",
            "fatal: your current branch appears to be broken\n",
            "",
        ] {
            assert!(!log_revision_missing(no), "{no}");
        }
    }

    #[test]
    fn blame_failures() {
        assert_eq!(
            BlameError::classify("fatal: no such path 'x' in HEAD\n"),
            Some(BlameError::NoSuchPath)
        );
        assert_eq!(
            BlameError::classify("fatal: invalid object name: foo\n"),
            Some(BlameError::InvalidObjectName { rest: s("foo\n") })
        );
        assert_eq!(
            BlameError::classify("fatal: file a.txt has only 2 lines\n"),
            Some(BlameError::OutOfRange { lines: 2 })
        );
        assert_eq!(
            BlameError::classify("fatal: file a b.txt has only 1 line"),
            Some(BlameError::OutOfRange { lines: 1 })
        );
        assert_eq!(
            BlameError::classify("fatal: invalid object name: foo"),
            Some(BlameError::InvalidObjectName { rest: s("foo\n") })
        );
        assert_eq!(BlameError::classify("fatal: bad revision 'x'\n"), None);
    }
}

//! `git diff-tree -z -r` records (`--stdin` with commit ids, `-m` and `-c` included), read as
//! Gitaly's `parsePaths` reads them (`internal/gitaly/service/diff/find_changed_paths.go`):
//! FindChangedPaths, and CommitDiff's whitespace manifest.

use std::collections::VecDeque;

use tokio::io::AsyncRead;

use super::reader::Reader;
use super::{parse_mode, DiffError};

/// Longest header or path record read.
const MAX_RECORD: usize = 1024 * 1024;

/// The kind of a change, as FindChangedPaths reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeStatus {
    Added,
    Modified,
    Deleted,
    TypeChange,
    Copied,
    Renamed,
}

impl ChangeStatus {
    /// git's status letter (scores aside).
    pub fn from_letter(b: u8) -> Option<ChangeStatus> {
        Some(match b {
            b'A' => ChangeStatus::Added,
            b'M' => ChangeStatus::Modified,
            b'D' => ChangeStatus::Deleted,
            b'T' => ChangeStatus::TypeChange,
            b'C' => ChangeStatus::Copied,
            b'R' => ChangeStatus::Renamed,
            _ => return None,
        })
    }

    pub fn letter(self) -> u8 {
        match self {
            ChangeStatus::Added => b'A',
            ChangeStatus::Modified => b'M',
            ChangeStatus::Deleted => b'D',
            ChangeStatus::TypeChange => b'T',
            ChangeStatus::Copied => b'C',
            ChangeStatus::Renamed => b'R',
        }
    }
}

/// One changed path (one per parent for combined diffs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedPath {
    pub status: ChangeStatus,
    pub path: Vec<u8>,
    /// The old path of a rename or copy (empty otherwise, and in combined diffs).
    pub old_path: Vec<u8>,
    pub old_mode: i32,
    pub new_mode: i32,
    pub old_blob_id: String,
    pub new_blob_id: String,
    /// The commit the change belongs to (only when commit ids are read).
    pub commit_id: String,
}

/// Reads `git diff-tree -z` output record by record.
pub struct ChangedPaths<R> {
    reader: Reader<R>,
    include_commit_id: bool,
    commit: String,
    pending: VecDeque<ChangedPath>,
    done: bool,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl<R: AsyncRead + Unpin> ChangedPaths<R> {
    /// `include_commit_id`: the output has commit ids (`--stdin` without `--no-commit-id`)
    /// and each change carries the one before it.
    pub fn new(src: R, include_commit_id: bool) -> Self {
        ChangedPaths {
            reader: Reader::new(src),
            include_commit_id,
            commit: String::new(),
            pending: VecDeque::new(),
            done: false,
        }
    }

    /// The next change; `None` at the end (a record cut short by the end counts as the end,
    /// as in Gitaly).
    pub async fn next(&mut self) -> Result<Option<ChangedPath>, DiffError> {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Ok(Some(c));
            }
            if self.done {
                return Ok(None);
            }
            self.read_record().await?;
        }
    }

    async fn field(&mut self, delim: u8) -> Result<Option<Vec<u8>>, DiffError> {
        let mut v = Vec::new();
        self.reader
            .read_until(delim, &mut v, MAX_RECORD)
            .await
            .map_err(|e| DiffError::Io("read diff-tree output", e))?;
        if v.last() != Some(&delim) {
            return Ok(None); // the end (Go's ReadBytes: io.EOF)
        }
        v.pop();
        Ok(Some(v))
    }

    async fn read_record(&mut self) -> Result<(), DiffError> {
        let mut before = Vec::new();
        self.reader
            .read_until(b':', &mut before, MAX_RECORD)
            .await
            .map_err(|e| DiffError::Io("read diff-tree output", e))?;
        if self.include_commit_id && !before.is_empty() {
            let id = &before[..before.len() - 1];
            let id = String::from_utf8_lossy(id);
            let id = id.trim().trim_matches('\0');
            if id.len() == 40 || id.len() == 64 {
                self.commit = id.to_string();
            }
        }
        let Some(header) = self.field(0).await? else {
            self.done = true;
            return Ok(());
        };
        let mut split: Vec<&[u8]> = header.split(|&b| b == b' ').collect();
        let sources = split[0]
            .iter()
            .rposition(|&b| b == b':')
            .map_or(0, |i| i + 1)
            + 1;
        split[0] = &split[0][sources - 1..];
        let status: Vec<u8> = split[split.len() - 1]
            .iter()
            .copied()
            .filter(|&b| ChangeStatus::from_letter(b).is_some())
            .collect();
        if split.len() != 2 * sources + 3 || status.len() != sources {
            return Err(DiffError::Record(format!(
                "git diff-tree parsing failed on: {:?}",
                String::from_utf8_lossy(&header)
            )));
        }
        let new_blob_id = text(split[split.len() - 2]);
        let mut old_path = Vec::new();
        if sources == 1 && matches!(status[0], b'R' | b'C') {
            match self.field(0).await? {
                Some(p) => old_path = p,
                None => {
                    self.done = true;
                    return Ok(());
                }
            }
        }
        let Some(path) = self.field(0).await? else {
            self.done = true;
            return Ok(());
        };
        let new_mode = parse_mode(split[sources]).ok_or_else(|| {
            DiffError::Record(format!("parsing new mode: {:?}", text(split[sources])))
        })?;
        for (i, &letter) in status.iter().enumerate() {
            let old_mode = parse_mode(split[i]).ok_or_else(|| {
                DiffError::Record(format!("parsing old mode: {:?}", text(split[i])))
            })?;
            let status = ChangeStatus::from_letter(letter).ok_or_else(|| {
                DiffError::Record(format!("unknown changed paths returned: {}", text(&status)))
            })?;
            self.pending.push_back(ChangedPath {
                status,
                path: path.clone(),
                old_path: old_path.clone(),
                old_mode,
                new_mode,
                old_blob_id: text(split[sources + 1 + i]),
                new_blob_id: new_blob_id.clone(),
                commit_id: self.commit.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "de980441c3ab03a8c07dda1ad27b8a11f39deb1e";
    const B: &str = "7be73ce3c1b1cdaea86e8168dfee8575175953bf";
    const C: &str = "587be6b4c3f93f93c489c0111bba5596147a26cb";
    const Z: &str = "0000000000000000000000000000000000000000";

    async fn all(input: &[u8], ids: bool) -> Result<Vec<ChangedPath>, DiffError> {
        let mut r = ChangedPaths::new(input, ids);
        let mut out = Vec::new();
        while let Some(c) = r.next().await? {
            out.push(c);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn commits_parents_renames_and_combined() {
        let commit = "e727dd355677bf110616690d763e1438ebfd586a";
        let input = format!(
            "{commit}\0:000000 100644 {Z} {A} A\0caf\u{e9} x.txt\0{commit}\0:100644 100644 {A} {A} R100\0old:wq\0new\0\
             {commit}\0::100644 100644 100755 {A} {B} {C} MT\0both\0"
        );
        let got = all(input.as_bytes(), true).await.unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].status, ChangeStatus::Added);
        assert_eq!(got[0].path, "caf\u{e9} x.txt".as_bytes());
        assert_eq!((got[0].old_mode, got[0].new_mode), (0, 0o100644));
        assert_eq!(
            (got[0].old_blob_id.as_str(), got[0].new_blob_id.as_str()),
            (Z, A)
        );
        assert_eq!(got[0].commit_id, commit);
        assert_eq!(got[1].status, ChangeStatus::Renamed);
        assert_eq!(
            (&got[1].old_path[..], &got[1].path[..]),
            (&b"old:wq"[..], &b"new"[..])
        );
        // A combined diff: one change per parent, no old path.
        assert_eq!(got[2].status, ChangeStatus::Modified);
        assert_eq!(got[3].status, ChangeStatus::TypeChange);
        assert_eq!(
            (got[2].old_blob_id.as_str(), got[3].old_blob_id.as_str()),
            (A, B)
        );
        assert_eq!(
            (got[2].new_blob_id.as_str(), got[3].new_blob_id.as_str()),
            (C, C)
        );
        assert_eq!(got[3].new_mode, 0o100755);
        // Without commit ids: none carried.
        let got = all(input.as_bytes(), false).await.unwrap();
        assert!(got.iter().all(|c| c.commit_id.is_empty()));
        // A clean merge with -c prints only its id; a cut-off record ends the output.
        assert!(all(format!("{commit}\0").as_bytes(), true)
            .await
            .unwrap()
            .is_empty());
        let cut = format!(":100644 100644 {A} {B} M\0pa");
        assert!(all(cut.as_bytes(), false).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn malformed_records_fail() {
        let bad = format!(":100644 {A} {B} M\0a\0");
        let e = all(bad.as_bytes(), false).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("git diff-tree parsing failed on: "),
            "{e}"
        );
        let bad = format!(":100944 100644 {A} {B} M\0a\0");
        assert!(all(bad.as_bytes(), false).await.is_err());
    }
}

//! CommitDiff's parser: the output of `git diff --patch --raw` (no `-z`) cut into one
//! [`Diff`] per file, with Gitaly's limiter (`internal/gitaly/diff/diff.go`) reimplemented
//! step for step: the same counters, the same order of checks, the same quirks. What differs
//! is memory: a patch is only stored while it can still be sent ([`PatchBuf`]), and a line
//! is never copied whole (see [`super::reader`]).

use std::collections::{HashMap, VecDeque};

use tokio::io::AsyncRead;

use super::patch::PatchBuf;
use super::quote::{header_from_path, parse_raw_line};
use super::reader::Reader;
use super::DiffError;

/// Longest raw line or `diff --git` header read (two quoted paths of at most 4096 bytes
/// each fit many times over).
const MAX_HEADER: usize = 1024 * 1024;

/// Gitaly's upper bounds (`enforceUpperBound`; plain `min`, so negative values stay).
pub const MAX_FILES_UPPER_BOUND: i64 = 5000;
pub const MAX_LINES_UPPER_BOUND: i64 = 250_000;
pub const MAX_BYTES_UPPER_BOUND: i64 = 5000 * 5120;
pub const SAFE_MAX_FILES_UPPER_BOUND: i64 = 500;
pub const SAFE_MAX_LINES_UPPER_BOUND: i64 = 25_000;
pub const SAFE_MAX_BYTES_UPPER_BOUND: i64 = 500 * 5120;
pub const MAX_PATCH_BYTES_UPPER_BOUND: i64 = 512_000;

/// When parsing stops (`enforce_limits`) or patches are left out (`collapse_diffs`). The
/// `max_*` values and the extension map only count with `enforce_limits` (Gitaly zeroes
/// them otherwise); the `safe_*` values always do.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub enforce_limits: bool,
    pub collapse_diffs: bool,
    pub collect_all_paths: bool,
    pub max_files: i64,
    pub max_lines: i64,
    pub max_bytes: i64,
    pub max_patch_bytes: i64,
    /// `max_patch_bytes` by file extension (`.md`) or, for names without one, by file name.
    /// Not bounded above (as in Gitaly).
    pub max_patch_bytes_for_extension: HashMap<Vec<u8>, i64>,
    pub safe_max_files: i64,
    pub safe_max_lines: i64,
    pub safe_max_bytes: i64,
}

impl Limits {
    /// Gitaly's `enforceUpperBound`, and the enforced limits zeroed without `enforce_limits`.
    fn normalised(mut self) -> Limits {
        if !self.enforce_limits {
            self.max_files = 0;
            self.max_lines = 0;
            self.max_bytes = 0;
            self.max_patch_bytes = 0;
            self.max_patch_bytes_for_extension.clear();
        }
        self.max_files = self.max_files.min(MAX_FILES_UPPER_BOUND);
        self.max_lines = self.max_lines.min(MAX_LINES_UPPER_BOUND);
        self.max_bytes = self.max_bytes.min(MAX_BYTES_UPPER_BOUND);
        self.safe_max_files = self.safe_max_files.min(SAFE_MAX_FILES_UPPER_BOUND);
        self.safe_max_lines = self.safe_max_lines.min(SAFE_MAX_LINES_UPPER_BOUND);
        self.safe_max_bytes = self.safe_max_bytes.min(SAFE_MAX_BYTES_UPPER_BOUND);
        self.max_patch_bytes = self.max_patch_bytes.min(MAX_PATCH_BYTES_UPPER_BOUND);
        self
    }

    /// The largest patch of the file at `to_path` that is sent (Gitaly's `maxPatchBytesFor`:
    /// the extension of Go's `filepath.Base`, or the whole name if it has none).
    pub fn max_patch_bytes_for(&self, to_path: &[u8]) -> i64 {
        if !self.max_patch_bytes_for_extension.is_empty() {
            let name = go_base(to_path);
            let ext = go_ext(name);
            let key = if ext.is_empty() { name } else { ext };
            if let Some(v) = self.max_patch_bytes_for_extension.get(key) {
                return *v;
            }
        }
        self.max_patch_bytes
    }
}

/// Go's `filepath.Base`.
fn go_base(path: &[u8]) -> &[u8] {
    if path.is_empty() {
        return b".";
    }
    let trimmed = match path.iter().rposition(|&b| b != b'/') {
        Some(i) => &path[..=i],
        None => return b"/",
    };
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// Go's `filepath.Ext`: from the last `.` of the last element, or empty.
fn go_ext(name: &[u8]) -> &[u8] {
    for i in (0..name.len()).rev() {
        match name[i] {
            b'/' => break,
            b'.' => return &name[i..],
            _ => {}
        }
    }
    b""
}

/// One file of a CommitDiff; its patch is [`Parser::patch`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub from_path: Vec<u8>,
    pub to_path: Vec<u8>,
    pub from_id: String,
    pub to_id: String,
    pub old_mode: i32,
    pub new_mode: i32,
    /// The raw status letter; 0 on an overflow marker.
    pub status: u8,
    pub binary: bool,
    pub overflow_marker: bool,
    pub collapsed: bool,
    pub too_large: bool,
    pub lines_added: i32,
    pub lines_removed: i32,
    line_count: i64,
    byte_count: i64,
}

/// Reads `git diff --patch --raw` output one file at a time.
pub struct Parser<R> {
    reader: Reader<R>,
    hash_len: usize,
    zero_oid: String,
    limits: Limits,
    raw: VecDeque<Vec<u8>>,
    files: i64,
    lines: i64,
    bytes: i64,
    finished: bool,
    stop_patch: bool,
    /// The old path of the next patch section, read ahead (`None`: none read, or the end).
    next_from: Option<Vec<u8>>,
    patch: PatchBuf,
}

impl<R: AsyncRead + Unpin> Parser<R> {
    /// Read the raw lines (everything up to the blank line before the patches).
    pub async fn new(
        src: R,
        hash_len: usize,
        limits: Limits,
        patch: PatchBuf,
    ) -> Result<Parser<R>, DiffError> {
        let mut p = Parser {
            reader: Reader::new(src),
            hash_len,
            zero_oid: "0".repeat(hash_len),
            limits: limits.normalised(),
            raw: VecDeque::new(),
            files: 0,
            lines: 0,
            bytes: 0,
            finished: false,
            stop_patch: false,
            next_from: None,
            patch,
        };
        loop {
            let mut line = Vec::new();
            p.reader
                .read_until(b'\n', &mut line, MAX_HEADER)
                .await
                .map_err(|e| DiffError::Io("read raw line", e))?;
            // A last line without '\n' is dropped, as Gitaly's `ReadBytes` loop does.
            if line.last() != Some(&b'\n') || !line.starts_with(b":") {
                break;
            }
            p.raw.push_back(line);
        }
        Ok(p)
    }

    /// Did the limits stop the parse (an overflow without `collect_all_paths`)? Then the rest
    /// of git's output is of no use: stop git rather than read it.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The patch of the last [`Diff`] returned (stored only if it is sent: see
    /// [`PatchBuf::is_complete`]).
    pub fn patch(&self) -> &PatchBuf {
        &self.patch
    }

    /// Read and drop what git printed after the last file.
    pub async fn drain(&mut self) -> Result<(), DiffError> {
        self.reader
            .drain()
            .await
            .map_err(|e| DiffError::Io("read", e))
    }

    /// The source, to stop it.
    pub fn into_inner(self) -> R {
        self.reader.into_inner()
    }

    /// The next file, or `None` when all are done (or the limits finished the parse).
    pub async fn next(&mut self) -> Result<Option<Diff>, DiffError> {
        if self.finished {
            return Ok(None);
        }
        let Some(line) = self.raw.pop_front() else {
            return Ok(None);
        };
        self.patch.reset(u64::MAX);
        let raw = parse_raw_line(&line, self.hash_len)?;
        let mut d = Diff {
            from_path: raw.from_path,
            to_path: raw.to_path,
            from_id: raw.from_id,
            to_id: raw.to_id,
            old_mode: raw.old_mode,
            new_mode: raw.new_mode,
            status: raw.status,
            ..Default::default()
        };
        if d.status == b'T' {
            // Shown as a deletion followed by an addition: the addition is queued as a raw
            // line (re-parsed as is, unquoted path included, as Gitaly does).
            let mut added =
                format!(":0 {:o} {} {} A\t", d.new_mode, self.zero_oid, d.to_id).into_bytes();
            added.extend_from_slice(&d.from_path);
            added.push(b'\n');
            self.raw.push_front(added);
            d.new_mode = 0;
            d.to_id = self.zero_oid.clone();
        }
        self.files += 1;

        if self.next_from.is_none() {
            let mut header = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut header, MAX_HEADER)
                .await
                .map_err(|e| DiffError::Io("read diff header line", e))?;
            // A last header without '\n' is at EOF for Go's `ReadBytes`: no header.
            if n > 0 && header.last() == Some(&b'\n') {
                self.next_from = Some(header_from_path(&header).ok_or(DiffError::Header)?);
            }
        }
        // Go's bytes.Equal(nil, x) is true for an empty x.
        if self.next_from.as_deref().unwrap_or_default() != d.from_path.as_slice() {
            return Ok(Some(d)); // no patch section: nothing counted, no limit checked
        }
        self.next_from = None;

        let max_for = match self.limits.enforce_limits {
            true => self.limits.max_patch_bytes_for(&d.to_path),
            false => i64::MAX,
        };
        self.patch.reset(u64::try_from(max_for).unwrap_or(0));
        self.read_patch(&mut d).await?;

        self.lines += d.line_count;
        self.bytes += d.byte_count;
        let l = &self.limits;
        let over_safe = self.files > l.safe_max_files
            || self.lines > l.safe_max_lines
            || self.bytes > l.safe_max_bytes;
        if l.collapse_diffs && over_safe && d.line_count > 0 {
            self.prune(&d);
            d.collapsed = true;
        }
        if self.limits.enforce_limits {
            if self.patch.len() as i64 >= max_for {
                self.prune(&d);
                d.too_large = true;
            }
            let l = &self.limits;
            let over = self.lines - l.max_lines >= 0
                || self.bytes - l.max_bytes >= 0
                || self.files - l.max_files > 0;
            if over {
                if self.limits.collect_all_paths {
                    self.patch.clear();
                    self.stop_patch = true;
                } else {
                    self.finished = true;
                    self.patch.clear();
                    d = Diff::default();
                }
                d.overflow_marker = true;
            }
        }
        Ok(Some(d))
    }

    /// Gitaly's `prunePatch`: the patch emptied, its lines and bytes no longer counted.
    fn prune(&mut self, d: &Diff) {
        self.lines -= d.line_count;
        self.bytes -= self.patch.len() as i64;
        self.patch.clear();
    }

    /// Gitaly's `readNextDiff`: the lines up to the next `diff --git` (or the end).
    async fn read_patch(&mut self, d: &mut Diff) -> Result<(), DiffError> {
        let io = |e| DiffError::Io("read chunk line", e);
        loop {
            let head = self
                .reader
                .peek(10)
                .await
                .map_err(|e| DiffError::Io("peek diff line", e))?;
            if head.is_empty() || head.starts_with(b"diff --git") {
                return Ok(());
            }
            let starts = |p: &[u8]| head.starts_with(p);
            if (starts(b"---") || starts(b"+++")) && self.patch.is_empty() {
                self.reader.skip_until(b'\n').await.map_err(io)?;
                continue;
            }
            if starts(b"@@") {
                // Hunk headers are kept but not counted.
                let (patch, stop) = (&mut self.patch, self.stop_patch);
                let mut err = None;
                self.reader
                    .for_each_piece(b'\n', |p| {
                        if !stop {
                            if let Err(e) = patch.push(p) {
                                err.get_or_insert(e);
                            }
                        }
                    })
                    .await
                    .map_err(io)?;
                if let Some(e) = err {
                    return Err(DiffError::Io("store patch", e));
                }
                continue;
            }
            let binary = starts(b"Binary");
            let content = binary
                || starts(b"-")
                || starts(b"+")
                || starts(b" ")
                || starts(b"\\")
                || starts(b"~\n");
            if !content {
                self.reader.skip_until(b'\n').await.map_err(io)?;
                continue;
            }
            if binary {
                d.binary = true;
            }
            match head[0] {
                b'+' => d.lines_added += 1,
                b'-' => d.lines_removed += 1,
                _ => {}
            }
            let (patch, stop) = (&mut self.patch, self.stop_patch);
            let mut err = None;
            let n = self
                .reader
                .for_each_piece(b'\n', |p| {
                    if !stop {
                        if let Err(e) = patch.push(p) {
                            err.get_or_insert(e);
                        }
                    }
                })
                .await
                .map_err(io)?;
            if let Some(e) = err {
                return Err(DiffError::Io("store patch", e));
            }
            d.line_count += 1;
            d.byte_count += n as i64;
            // Will this patch be collapsed? Then its bytes can go now (the totals only grow).
            let l = &self.limits;
            if l.collapse_diffs
                && (self.files > l.safe_max_files
                    || self.lines + d.line_count > l.safe_max_lines
                    || self.bytes + d.byte_count > l.safe_max_bytes)
            {
                self.patch.give_up();
            }
        }
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;

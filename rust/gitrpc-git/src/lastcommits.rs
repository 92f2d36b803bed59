//! The last commit of every entry of a directory (ListLastCommitsForTree): one
//! `git log --full-history --sparse --raw -z` walk over the directory, and for each entry the
//! first commit of its TREESAME-parent chain that changed it (design note §3.1). Pure parsing
//! and state here, testable without a server; [`last_commits`] drives git and cat-file.
//!
//! What `git log -1 <rev> -- <path>` does: from `<rev>`, a commit that is TREESAME for the
//! path to some parent (same mode and object, or absent in both) is hidden and replaced by
//! the *first* such parent; the first commit that is TREESAME to none of its parents (a root
//! commit, where the path exists) is the answer. That is a single chain, so commit dates
//! don't matter. All entries of one directory share their chains until they part at a merge
//! or are answered, so one walk over the directory's history serves all of them:
//!
//! - the walk prints every reachable commit once, with its *true* parents and, for
//!   non-merges, the paths it changed below the directory ([`LogParser`]);
//! - [`Walk`] keeps, per commit, the entries whose chain reaches it; a non-merge answers the
//!   entries it changed and hands the others to its parent; a merge is resolved from the
//!   directory's trees in it and its parents ([`Walk::resolve_merge`]);
//! - the walk stops once every entry is answered. A commit can be printed before its last
//!   child under clock skew; entries handed to a commit already printed are still waiting
//!   at the end of the walk and are answered by `git log -1 <that commit> -- <path>` (the
//!   rest of the same chain).
//!
//! Parent rewriting (`--parents`) would be wrong here: in a walk that isn't limited it gives
//! wrong parents under clock skew.

mod run;

use std::collections::HashMap;

pub use run::{last_commit_of, last_commits};

use crate::{Error, Result};

fn protocol(detail: impl Into<String>) -> Error {
    Error::Protocol {
        subcommand: "log",
        detail: detail.into(),
    }
}

/// One commit of the walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub commit: String,
    /// True parents, in order.
    pub parents: Vec<String>,
    /// Names (first path component below the directory) of the entries this commit changed
    /// against its parent; empty for merges (`--diff-merges=off`). Each name once.
    pub changed: Vec<Vec<u8>>,
}

/// Incremental parser of `git log --raw -z --format=%x01%H%x20%P -- <dir>/`:
/// `\x01<commit> <parents>\0`, then for a commit with changes `\n:<raw line>\0<path>\0` and
/// `:<raw line>\0<path>\0`... (no renames: one path per line). A path follows every raw line,
/// so a path that starts with `:` or `\x01` is never mistaken for a record.
pub struct LogParser {
    /// `<dir>/`, or empty for the root.
    prefix: Vec<u8>,
    /// An unfinished field from the last chunk.
    partial: Vec<u8>,
    current: Option<Record>,
    expect_path: bool,
}

impl LogParser {
    /// A parser for the walk over `dir` (`""` for the root; no trailing slash).
    pub fn new(dir: &[u8]) -> LogParser {
        let mut prefix = dir.to_vec();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        LogParser {
            prefix,
            partial: Vec::new(),
            current: None,
            expect_path: false,
        }
    }

    /// Parse the next chunk of git's output; finished records go to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Record>) -> Result<()> {
        while let Some(nul) = data.iter().position(|&b| b == 0) {
            if self.partial.is_empty() {
                self.field(&data[..nul], out)?;
            } else {
                let mut f = std::mem::take(&mut self.partial);
                f.extend_from_slice(&data[..nul]);
                self.field(&f, out)?;
            }
            data = &data[nul + 1..];
        }
        self.partial.extend_from_slice(data);
        Ok(())
    }

    /// The end of git's output: the last record goes to `out`.
    pub fn finish(&mut self, out: &mut Vec<Record>) -> Result<()> {
        if !self.partial.is_empty() {
            let f = std::mem::take(&mut self.partial);
            self.field(&f, out)?;
        }
        if self.expect_path {
            return Err(protocol("raw line without a path at the end"));
        }
        out.extend(self.current.take());
        Ok(())
    }

    fn field(&mut self, f: &[u8], out: &mut Vec<Record>) -> Result<()> {
        if self.expect_path {
            self.expect_path = false;
            let rec = self
                .current
                .as_mut()
                .ok_or_else(|| protocol("a path before any commit"))?;
            if let Some(rest) = f.strip_prefix(self.prefix.as_slice()) {
                let name = rest.split(|&b| b == b'/').next().unwrap_or(rest);
                // Raw lines come in tree order: one entry's paths are adjacent.
                if !name.is_empty() && rec.changed.last().map(Vec::as_slice) != Some(name) {
                    rec.changed.push(name.to_vec());
                }
            }
            return Ok(());
        }
        let f = f.strip_prefix(b"\n").unwrap_or(f);
        match f.first() {
            Some(1) => {
                out.extend(self.current.take());
                self.current = Some(header(&f[1..])?);
            }
            Some(b':') => self.expect_path = true,
            None => {}
            Some(_) => {
                return Err(protocol(format!(
                    "unexpected field {:?}",
                    String::from_utf8_lossy(&f[..f.len().min(80)])
                )))
            }
        }
        Ok(())
    }
}

/// `<commit> <parent>...` (a root commit has a trailing space and no parents).
fn header(h: &[u8]) -> Result<Record> {
    let text = std::str::from_utf8(h).map_err(|_| protocol("non-UTF-8 commit header"))?;
    let mut ids = text.split(' ').filter(|s| !s.is_empty());
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let commit = ids
        .next()
        .filter(|s| hex(s))
        .ok_or_else(|| protocol(format!("bad commit header {text:?}")))?;
    let parents: Vec<String> = ids.map(str::to_string).collect();
    if !parents.iter().all(|p| hex(p)) {
        return Err(protocol(format!("bad commit header {text:?}")));
    }
    Ok(Record {
        commit: commit.to_string(),
        parents,
        changed: Vec::new(),
    })
}

/// One commit's directory: its tree's id and its entries by name (mode, object id); no id
/// and no entries if the commit has no such directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dir {
    pub oid: Option<String>,
    pub entries: HashMap<Vec<u8>, (u32, String)>,
}

/// A merge that holds waiting entries: [`Walk::resolve_merge`] needs the directory in it and
/// in each parent.
#[derive(Debug)]
pub struct Merge {
    pub commit: String,
    pub parents: Vec<String>,
    entries: Vec<usize>,
}

/// Which entry waits at which commit, and the answers so far.
pub struct Walk {
    names: Vec<Vec<u8>>,
    waiting: HashMap<String, Vec<usize>>,
    answers: Vec<Option<String>>,
    open: usize,
}

impl Walk {
    /// Entries `names` (names in the directory) of commit `start`, all waiting there.
    pub fn new(start: &str, names: Vec<Vec<u8>>) -> Walk {
        let open = names.len();
        let mut waiting = HashMap::new();
        if open > 0 {
            waiting.insert(start.to_string(), (0..open).collect());
        }
        Walk {
            answers: vec![None; open],
            names,
            waiting,
            open,
        }
    }

    pub fn names(&self) -> &[Vec<u8>] {
        &self.names
    }

    /// Every entry has its answer.
    pub fn is_done(&self) -> bool {
        self.open == 0
    }

    /// Entry `i` changed in `commit`.
    pub fn answer(&mut self, i: usize, commit: &str) {
        if self.answers[i].is_none() {
            self.answers[i] = Some(commit.to_string());
            self.open -= 1;
        }
    }

    fn hand(&mut self, commit: &str, i: usize) {
        match self.waiting.get_mut(commit) {
            Some(v) => v.push(i),
            None => {
                self.waiting.insert(commit.to_string(), vec![i]);
            }
        }
    }

    /// The next commit of the walk. A merge holding waiting entries is handed back, to be
    /// resolved from its trees.
    pub fn step(&mut self, rec: Record) -> Option<Merge> {
        let entries = self.waiting.remove(&rec.commit)?;
        match rec.parents.len() {
            // A root commit: the entries exist in it (each chain only follows parents in
            // which its entry is the same), so it added them.
            0 => entries.iter().for_each(|&i| self.answer(i, &rec.commit)),
            1 => {
                for i in entries {
                    if rec.changed.contains(&self.names[i]) {
                        self.answer(i, &rec.commit);
                    } else {
                        self.hand(&rec.parents[0], i);
                    }
                }
            }
            _ => {
                return Some(Merge {
                    commit: rec.commit,
                    parents: rec.parents,
                    entries,
                })
            }
        }
        None
    }

    /// Every entry of `m` follows its first parent (the directory is the same there).
    pub fn merge_to_first(&mut self, m: Merge) {
        for i in m.entries {
            self.hand(&m.parents[0], i);
        }
    }

    /// Each entry of `m` follows the first parent whose directory has it the same as
    /// `mine` (absent in both counts as the same); with none, the merge changed it.
    /// `parents[k]` is the directory in `m.parents[k]`.
    pub fn resolve_merge(&mut self, m: Merge, mine: &Dir, parents: &[&Dir]) {
        for i in m.entries {
            let name = &self.names[i];
            let here = mine.entries.get(name);
            match parents.iter().position(|p| p.entries.get(name) == here) {
                Some(k) => {
                    let p = m.parents[k].clone();
                    self.hand(&p, i);
                }
                None => self.answer(i, &m.commit),
            }
        }
    }

    /// Entries still waiting (at commits printed before their chain reached them), with
    /// the commit each waits at; they are no longer waiting afterwards.
    pub fn leftovers(&mut self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = self
            .waiting
            .drain()
            .flat_map(|(c, v)| v.into_iter().map(move |i| (c.clone(), i)))
            .collect();
        out.sort_by_key(|(_, i)| *i);
        out
    }

    /// The answers, in the order of the names (`None` for entries never answered).
    pub fn into_answers(self) -> Vec<Option<String>> {
        self.answers
    }
}

#[cfg(test)]
mod tests;

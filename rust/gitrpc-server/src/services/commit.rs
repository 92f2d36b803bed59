//! CommitService: reading commits (FindCommit, ListCommitsByOid), walking history
//! (ListCommits, CountCommits, CommitIsAncestor, LastCommitForPath) and reading trees
//! (TreeEntry, GetTreeEntries).
//!
//! Commits and trees are read through the cat-file pool; `git` itself is only spawned to walk
//! history (`rev-list`, `log`, `merge-base`) and for recursive tree listings (`ls-tree`).

use std::sync::Arc;

use gitrpc_git::objects::{self, EntryKind, TreeWalker};
use gitrpc_git::{validate, Command, ObjectInfo, ObjectType, ReadError, Subcommand};
use gitrpc_proto::gitaly::commit_service_server::CommitService;
use gitrpc_proto::gitaly::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::deps::{Deps, Repo};
use crate::error::{Error, Result};
use crate::stream::{spawn_stream, RpcStream};

/// Encoded bytes of items per streamed message (well below gRPC's 4 MiB default).
const MESSAGE_BYTES: usize = 1024 * 1024;
/// Items per streamed message at most.
const MESSAGE_ITEMS: usize = 1000;
/// Blob bytes per TreeEntry message.
const BLOB_CHUNK: usize = 64 * 1024;
/// How deep a flat path may reach (as Gitaly: at most 9 levels below the entry).
const FLAT_PATH_DEPTH: usize = 10;

pub struct CommitServiceImpl {
    deps: Arc<Deps>,
}

impl CommitServiceImpl {
    pub fn new(deps: Arc<Deps>) -> Self {
        CommitServiceImpl { deps }
    }
}

/// Collects items into messages of at most [`MESSAGE_BYTES`] / [`MESSAGE_ITEMS`].
struct Chunker<T> {
    items: Vec<T>,
    bytes: usize,
}

impl<T: prost::Message> Chunker<T> {
    fn new() -> Self {
        Chunker {
            items: Vec::new(),
            bytes: 0,
        }
    }

    /// Add an item; returns a full batch when one is ready to send.
    fn push(&mut self, item: T) -> Option<Vec<T>> {
        self.bytes += item.encoded_len();
        self.items.push(item);
        (self.bytes >= MESSAGE_BYTES || self.items.len() >= MESSAGE_ITEMS).then(|| self.take())
    }

    fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }
}

/// Input for `git rev-list --stdin`: the revisions checked by rev-list's rule in
/// gitrpc-git (validated revisions plus the pseudo revisions `--not` and `--all`, in order).
fn rev_list_input<R: AsRef<[u8]>>(revisions: &[R]) -> Result<Vec<u8>> {
    let rule = Subcommand::RevList.description().revisions;
    Ok(rule.stdin(revisions)?)
}

/// `--before=@<seconds>` / `--after=...` take git's raw epoch format.
fn date(ts: &prost_types::Timestamp) -> String {
    format!("@{}", ts.seconds)
}

fn utf8<'a>(b: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// Treat pathspecs literally (no globs, no `:(magic)`), like git's `--literal-pathspecs`.
fn literal_pathspecs(cmd: Command, on: bool) -> Command {
    if on {
        cmd.env("GIT_LITERAL_PATHSPECS", "1")
    } else {
        cmd
    }
}

/// The `EntryType` of a tree entry.
fn entry_type(kind: EntryKind) -> tree_entry::EntryType {
    match kind {
        EntryKind::Tree => tree_entry::EntryType::Tree,
        EntryKind::Submodule => tree_entry::EntryType::Commit,
        EntryKind::Blob => tree_entry::EntryType::Blob,
    }
}

/// A `TreeEntry` below `prefix` (no trailing slash); `commit_oid` is the revision as asked,
/// as Gitaly does.
fn tree_entry(e: &objects::TreeEntry, prefix: &str, rev: &str) -> TreeEntry {
    let mut path = Vec::with_capacity(prefix.len() + 1 + e.name.len());
    if !prefix.is_empty() {
        path.extend_from_slice(prefix.as_bytes());
        path.push(b'/');
    }
    path.extend_from_slice(&e.name);
    TreeEntry {
        oid: e.oid.clone(),
        path,
        r#type: entry_type(e.kind) as i32,
        mode: e.mode as i32,
        commit_oid: rev.to_string(),
        flat_path: Vec::new(),
    }
}

/// `git ls-tree -z -r -t <tree>`: every entry below the tree, trees before their contents.
async fn ls_tree_recursive(
    repo: &Repo<'_>,
    tree: &str,
    prefix: &str,
    rev: &str,
) -> Result<Vec<TreeEntry>> {
    let cmd = repo
        .cmd(Subcommand::LsTree)
        .flag("-z")
        .flag("-r")
        .flag("-t")
        .rev(tree);
    let out = repo.output(&cmd).await?;
    Ok(objects::parse_ls_tree(&out.stdout)?
        .iter()
        .map(|e| tree_entry(e, prefix, rev))
        .collect())
}

/// Page tokens of GetTreeEntries, compatible with Gitaly's: base64 of the JSON object
/// `{"file_name":"<path>"}`. A token that doesn't decode so is an (old-style) object id.
mod page_token {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub enum Token {
        Path(Vec<u8>),
        Oid(String),
    }

    pub fn encode(path: &[u8]) -> String {
        base64_encode(&json(path))
    }

    pub fn decode(token: &str) -> Token {
        match base64_decode(token).and_then(|j| file_name(&j)) {
            Some(p) => Token::Path(p),
            None => Token::Oid(token.to_string()),
        }
    }

    /// `{"file_name":"..."}` escaped as Go's encoding/json does.
    fn json(path: &[u8]) -> Vec<u8> {
        let mut out = br#"{"file_name":""#.to_vec();
        for chunk in path.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => out.extend_from_slice(b"\\\""),
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '\n' => out.extend_from_slice(b"\\n"),
                    '\r' => out.extend_from_slice(b"\\r"),
                    '\t' => out.extend_from_slice(b"\\t"),
                    '\u{8}' => out.extend_from_slice(b"\\b"),
                    '\u{c}' => out.extend_from_slice(b"\\f"),
                    '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                        out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                    }
                    c if (c as u32) < 0x20 => {
                        out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                    }
                    c => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            for _ in chunk.invalid() {
                out.extend_from_slice(b"\\ufffd");
            }
        }
        out.extend_from_slice(b"\"}");
        out
    }

    fn base64_encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn base64_decode(s: &str) -> Option<Vec<u8>> {
        let s = s.as_bytes();
        if s.is_empty() || !s.chunks_exact(4).remainder().is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(s.len() / 4 * 3);
        for (i, quad) in s.chunks(4).enumerate() {
            let last = i == s.len() / 4 - 1;
            let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 || (pad > 0 && !last) {
                return None;
            }
            let mut n = 0u32;
            for &c in &quad[..4 - pad] {
                let v = ALPHABET.iter().position(|&a| a == c)? as u32;
                n = (n << 6) | v;
            }
            n <<= 6 * pad as u32;
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..3 - pad]);
        }
        Some(out)
    }

    /// The `file_name` member of a JSON object whose members are all strings ("" if absent,
    /// as Go's decoder leaves it); `None` if it isn't such an object.
    fn file_name(json: &[u8]) -> Option<Vec<u8>> {
        let mut p = Parser { s: json, i: 0 };
        p.ws();
        p.eat(b'{')?;
        let mut name = Vec::new();
        p.ws();
        if p.peek() == Some(b'}') {
            p.i += 1;
        } else {
            loop {
                p.ws();
                let key = p.string()?;
                p.ws();
                p.eat(b':')?;
                p.ws();
                let value = p.string()?;
                if key == b"file_name" {
                    name = value;
                }
                p.ws();
                match p.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        p.ws();
        (p.i == json.len()).then_some(name)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }
        fn next(&mut self) -> Option<u8> {
            let c = self.peek()?;
            self.i += 1;
            Some(c)
        }
        fn eat(&mut self, c: u8) -> Option<()> {
            (self.next()? == c).then_some(())
        }
        fn ws(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.i += 1;
            }
        }
        fn hex4(&mut self) -> Option<u32> {
            let h = self.s.get(self.i..self.i + 4)?;
            self.i += 4;
            u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
        }
        fn string(&mut self) -> Option<Vec<u8>> {
            self.eat(b'"')?;
            let mut out = Vec::new();
            loop {
                match self.next()? {
                    b'"' => return Some(out),
                    b'\\' => {
                        let c = match self.next()? {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                let code = if (0xd800..0xdc00).contains(&hi)
                                    && self.s[self.i..].starts_with(b"\\u")
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xdc00..0xe000).contains(&lo) {
                                        return None;
                                    }
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    hi
                                };
                                char::from_u32(code).unwrap_or('\u{fffd}')
                            }
                            _ => return None,
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    c if c < 0x20 => return None,
                    c => out.push(c),
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_and_matches_go() {
            // base64(`{"file_name":"a b/c<d>"}`) as Go's json + base64 produce it.
            let t = encode(b"a b/c<d>");
            assert_eq!(
                base64_decode(&t).unwrap(),
                br#"{"file_name":"a b/c\u003cd\u003e"}"#
            );
            assert_eq!(encode(b"foo"), "eyJmaWxlX25hbWUiOiJmb28ifQ==");
            for p in [&b"foo"[..], b"x", b"ab", b"dir/\xc3\xa9\"q\\\n"] {
                match decode(&encode(p)) {
                    Token::Path(d) => assert_eq!(d, p),
                    Token::Oid(_) => panic!("{p:?}"),
                }
            }
            assert!(matches!(
                decode("0123456789abcdef0123456789abcdef01234567"),
                Token::Oid(_)
            ));
            assert!(matches!(decode("non-existent"), Token::Oid(_)));
        }
    }
}

/// Gitaly's pagination of tree entries: start after the entry named by the token (an error if
/// none matches), return at most `limit` (negative: all; zero: none), and a cursor if more
/// entries follow.
fn paginate_entries(
    entries: Vec<TreeEntry>,
    p: &PaginationParameter,
) -> Result<(Vec<TreeEntry>, String)> {
    let start = if p.page_token.is_empty() {
        0
    } else {
        let (pos, start) = match page_token::decode(&p.page_token) {
            page_token::Token::Path(path) => (
                entries.iter().position(|e| e.path == path),
                String::from_utf8_lossy(&path).into_owned(),
            ),
            page_token::Token::Oid(oid) => (entries.iter().position(|e| e.oid == oid), oid),
        };
        pos.ok_or_else(|| Error::internal(format!("could not find starting OID: {start}")))? + 1
    };
    let limit = p.limit;
    if limit == 0 {
        return Ok((Vec::new(), String::new()));
    }
    let mut entries = entries;
    let rest: Vec<TreeEntry> = entries.drain(start.min(entries.len())..).collect();
    if limit < 0 || limit as usize >= rest.len() {
        return Ok((rest, String::new()));
    }
    let page: Vec<TreeEntry> = rest.into_iter().take(limit as usize).collect();
    let cursor = page_token::encode(&page[page.len() - 1].path);
    Ok((page, cursor))
}

/// A tree entry's blob is a blob, and not over `max_size` (when that is set).
fn check_blob(info: &ObjectInfo, max_size: i64) -> Result<()> {
    if info.kind != ObjectType::Blob {
        return Err(Error::internal(format!(
            "mismatched object type: object-oid={} entry-type=blob object-type={}",
            info.oid,
            info.kind.as_str()
        )));
    }
    let size = info.size as i64;
    if max_size > 0 && size > max_size {
        return Err(Error::FailedPrecondition(format!(
            "object size ({size}) is bigger than the maximum allowed size ({max_size})"
        )));
    }
    Ok(())
}

impl CommitServiceImpl {
    async fn list_commits(
        &self,
        req: ListCommitsRequest,
    ) -> Result<Response<RpcStream<ListCommitsResponse>>> {
        use list_commits_request::Order;
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.revisions.is_empty() {
            return Err(Error::invalid("missing revisions"));
        }
        let input = rev_list_input(&req.revisions)?;
        let mut cmd = repo.cmd(Subcommand::RevList).flag("--stdin");
        match Order::try_from(req.order).map_err(|_| Error::invalid("unknown order"))? {
            Order::None => {}
            Order::Topo => cmd = cmd.flag("--topo-order"),
            Order::Date => cmd = cmd.flag("--date-order"),
        }
        if req.reverse {
            cmd = cmd.flag("--reverse");
        }
        if req.max_parents > 0 {
            cmd = cmd.flag_value("--max-parents", req.max_parents);
        }
        if req.disable_walk {
            cmd = cmd.flag("--no-walk");
        }
        if req.first_parent {
            cmd = cmd.flag("--first-parent");
        }
        if let Some(t) = &req.before {
            cmd = cmd.flag_value("--before", date(t));
        }
        if let Some(t) = &req.after {
            cmd = cmd.flag_value("--after", date(t));
        }
        if !req.author.is_empty() {
            cmd = cmd.flag_value("--author", utf8(&req.author, "author")?);
        }
        if req.ignore_case {
            cmd = cmd.flag("--regexp-ignore-case");
        }
        for p in &req.commit_message_patterns {
            cmd = cmd.flag_value("--grep", utf8(p, "commit message pattern")?);
        }
        if req.skip > 0 {
            cmd = cmd.flag_value("--skip", req.skip);
        }
        for p in &req.paths {
            cmd = cmd.path(p);
        }
        let literal = req
            .global_options
            .as_ref()
            .is_some_and(|o| o.literal_pathspecs);
        let mut process = repo.spawn(&literal_pathspecs(cmd, literal).stdin())?;
        let mut cat = repo.catfile()?;
        let (token, limit) = req
            .pagination_params
            .as_ref()
            .map_or((String::new(), 0), |p| (p.page_token.clone(), p.limit));
        Ok(spawn_stream(move |sink| async move {
            process.write_stdin_and_close(&input).await?;
            let stdout = process
                .take_stdout()
                .ok_or_else(|| Error::internal("rev-list has no stdout"))?;
            let mut lines = BufReader::new(stdout);
            let mut line = Vec::new();
            let mut token_seen = token.is_empty();
            let mut count: i64 = 0;
            let mut chunker = Chunker::new();
            let send = |commits| ListCommitsResponse {
                commits,
                pagination_cursor: None,
            };
            let complete = loop {
                line.clear();
                if lines.read_until(b'\n', &mut line).await? == 0 {
                    break true;
                }
                let oid = std::str::from_utf8(line.trim_ascii_end())
                    .map_err(|_| Error::internal("rev-list printed a non-UTF-8 line"))?;
                // With a page token, start after the commit it names.
                if !token_seen {
                    token_seen = oid == token;
                    continue;
                }
                if limit > 0 && count >= i64::from(limit) {
                    break false;
                }
                let commit = cat.read_commit(oid).await?.ok_or_else(|| {
                    Error::internal(format!("rev-list printed {oid}, which is not a commit"))
                })?;
                count += 1;
                if let Some(batch) = chunker.push(convert::commit(&commit, false)) {
                    sink.send(send(batch)).await?;
                }
            };
            // Stopped early at the page limit: dropping the process kills rev-list.
            if complete {
                process.wait().await?;
            }
            let rest = chunker.take();
            if !rest.is_empty() {
                sink.send(send(rest)).await?;
            }
            Ok(())
        }))
    }

    async fn list_commits_by_oid(
        &self,
        req: ListCommitsByOidRequest,
    ) -> Result<Response<RpcStream<ListCommitsByOidResponse>>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        let mut cat = repo.catfile()?;
        Ok(spawn_stream(move |sink| async move {
            let mut chunker = Chunker::new();
            for oid in &req.oid {
                // Names cat-file can't take can't name a commit: skipped like unknown ones.
                if oid.is_empty() || oid.contains(['\n', '\0']) {
                    continue;
                }
                let Some(commit) = cat.read_commit(&format!("{oid}^{{commit}}")).await? else {
                    continue;
                };
                if let Some(commits) = chunker.push(convert::commit(&commit, false)) {
                    sink.send(ListCommitsByOidResponse { commits }).await?;
                }
            }
            let commits = chunker.take();
            if !commits.is_empty() {
                sink.send(ListCommitsByOidResponse { commits }).await?;
            }
            Ok(())
        }))
    }

    async fn commit_is_ancestor(&self, req: CommitIsAncestorRequest) -> Result<bool> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        if req.ancestor_id.is_empty() {
            return Err(Error::invalid("empty ancestor sha"));
        }
        if req.child_id.is_empty() {
            return Err(Error::invalid("empty child sha"));
        }
        let cmd = repo
            .cmd(Subcommand::MergeBase)
            .flag("--is-ancestor")
            .rev(&req.ancestor_id)
            .rev(&req.child_id)
            .no_stdout();
        let (status, _) = repo.spawn(&cmd)?.wait_status().await?;
        // Exit 1 is "not an ancestor"; like Gitaly, any failure (a missing object) is false.
        Ok(status.success())
    }

    async fn count_commits(&self, req: CountCommitsRequest) -> Result<i32> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        #[allow(deprecated)]
        let (revision, all) = (&req.revision, req.all);
        if !revision.is_empty() {
            validate::revision(revision)?;
        }
        let input = if !req.revisions.is_empty() {
            rev_list_input(&req.revisions)?
        } else if all {
            rev_list_input(&[b"--all"])?
        } else if !revision.is_empty() {
            rev_list_input(std::slice::from_ref(revision))?
        } else {
            return Err(Error::invalid("empty Revision and false All"));
        };
        let mut cmd = repo
            .cmd(Subcommand::RevList)
            .flag("--count")
            .flag("--stdin");
        if let Some(t) = &req.before {
            cmd = cmd.flag_value("--before", date(t));
        }
        if let Some(t) = &req.after {
            cmd = cmd.flag_value("--after", date(t));
        }
        if req.max_count != 0 {
            cmd = cmd.flag_value("--max-count", req.max_count);
        }
        if req.first_parent {
            cmd = cmd.flag("--first-parent");
        }
        if !req.path.is_empty() {
            cmd = cmd.path(&req.path);
        }
        let literal = req
            .global_options
            .as_ref()
            .is_some_and(|o| o.literal_pathspecs);
        let mut p = repo.spawn(&literal_pathspecs(cmd, literal).stdin())?;
        p.write_stdin_and_close(&input).await?;
        let out = p.read_stdout_to_end().await?;
        let (status, stderr) = p.wait_status().await?;
        if !status.success() {
            // As Gitaly: a walk git refuses (say, an unknown revision) counts nothing.
            tracing::debug!(%stderr, "ignoring rev-list failure");
            return Ok(0);
        }
        let count: i64 = std::str::from_utf8(&out)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                Error::internal(format!("parse count: {:?}", String::from_utf8_lossy(&out)))
            })?;
        Ok(count.min(i64::from(i32::MAX)) as i32)
    }

    async fn last_commit_for_path(
        &self,
        req: LastCommitForPathRequest,
    ) -> Result<Option<GitCommit>> {
        let repo = self.deps.repo(req.repository.as_ref())?;
        validate::revision(&req.revision)?;
        let path: &[u8] = if req.path.is_empty() || req.path == b"/" {
            b"."
        } else {
            &req.path
        };
        let literal = req.literal_pathspec
            || req
                .global_options
                .as_ref()
                .is_some_and(|o| o.literal_pathspecs);
        let cmd = repo
            .cmd(Subcommand::Log)
            .flag("--format=%H")
            .flag("--max-count=1")
            .rev(&req.revision)
            .path(path);
        let mut p = repo.spawn(&literal_pathspecs(cmd, literal))?;
        let out = p.read_stdout_to_end().await?;
        match p.wait().await {
            Ok(()) => {}
            Err(gitrpc_git::Error::Read {
                error: ReadError::PathOutsideRepository { .. },
                ..
            }) => {
                return Err(Error::invalid(format!(
                    "path escapes the repository: {:?}",
                    String::from_utf8_lossy(path)
                )))
            }
            Err(e) if e.is_failure() => {
                // As Gitaly: an unknown revision or an unusable pathspec finds no commit.
                tracing::debug!(error = %e, "git log found nothing");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let oid = String::from_utf8_lossy(&out).trim().to_string();
        if oid.is_empty() {
            return Ok(None);
        }
        Ok(repo
            .commit(oid.as_bytes())
            .await?
            .map(|c| convert::commit(&c, false)))
    }

    async fn tree_entry(
        &self,
        req: TreeEntryRequest,
    ) -> Result<Response<RpcStream<TreeEntryResponse>>> {
        use tree_entry_response::ObjectType as Kind;
        let repo = self.deps.repo(req.repository.as_ref())?;
        let rev = validate::revision(&req.revision)?;
        if req.path.is_empty() {
            return Err(Error::invalid("empty Path"));
        }
        if req.limit < 0 {
            return Err(Error::invalid("negative Limit"));
        }
        if req.max_size < 0 {
            return Err(Error::invalid("negative MaxSize"));
        }
        let mut path = validate::tree_path(&req.path)?;
        if path.len() > 1 {
            path = path.trim_end_matches('/');
        }
        let mut walker = TreeWalker::new(repo.catfile()?);
        let entry = walker
            .entry(rev, path.as_bytes())
            .await?
            .ok_or_else(|| Error::not_found("tree entry not found"))?;
        let mut cat = walker.into_cat();
        let single = |msg: TreeEntryResponse| -> Response<RpcStream<TreeEntryResponse>> {
            Response::new(Box::pin(tokio_stream::once(Ok(msg))))
        };
        let mode = entry.mode as i32;
        match entry.kind {
            EntryKind::Submodule => {
                return Ok(single(TreeEntryResponse {
                    r#type: Kind::Commit as i32,
                    oid: entry.oid,
                    size: 0,
                    mode,
                    data: Vec::new(),
                }))
            }
            EntryKind::Tree => {
                let info = cat
                    .info(&entry.oid)
                    .await?
                    .ok_or_else(|| Error::internal(format!("tree {} is missing", entry.oid)))?;
                return Ok(single(TreeEntryResponse {
                    r#type: Kind::Tree as i32,
                    oid: info.oid,
                    size: info.size as i64,
                    mode,
                    data: Vec::new(),
                }));
            }
            EntryKind::Blob => {}
        }
        // A blob is read with its header: the parent tree and the blob are the only two
        // round trips. With a size bound, its header comes first (an oversized blob is
        // refused without sending it through the pipe).
        let checked = if req.max_size > 0 {
            let info = cat
                .info(&entry.oid)
                .await?
                .ok_or_else(|| Error::internal(format!("blob {} is missing", entry.oid)))?;
            check_blob(&info, req.max_size)?;
            true
        } else {
            false
        };
        let info = cat
            .contents(&entry.oid)
            .await?
            .ok_or_else(|| Error::internal(format!("blob {} is missing", entry.oid)))?;
        if !checked {
            if let Err(e) = check_blob(&info, req.max_size) {
                cat.skip_rest().await?;
                return Err(e);
            }
        }
        let size = info.size as i64;
        let want = if req.limit > 0 {
            size.min(req.limit)
        } else {
            size
        } as usize;
        let first = TreeEntryResponse {
            r#type: Kind::Blob as i32,
            oid: info.oid.clone(),
            size,
            mode,
            data: Vec::new(),
        };
        if want == 0 {
            cat.skip_rest().await?;
            return Ok(single(first));
        }
        let oid = info.oid;
        Ok(spawn_stream(move |sink| async move {
            let mut first = Some(first);
            let mut left = want;
            let mut buf = vec![0u8; BLOB_CHUNK];
            while left > 0 {
                let cap = left.min(BLOB_CHUNK);
                let mut filled = 0;
                while filled < cap {
                    let n = cat.read_chunk(&mut buf[filled..cap]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    return Err(Error::internal(format!("blob {oid} truncated")));
                }
                left -= filled;
                // Only the first message carries type, oid, size and mode.
                let mut msg = first.take().unwrap_or_default();
                msg.data = buf[..filled].to_vec();
                sink.send(msg).await?;
            }
            cat.skip_rest().await?;
            Ok(())
        }))
    }

    async fn get_tree_entries(
        &self,
        req: GetTreeEntriesRequest,
    ) -> Result<Response<RpcStream<GetTreeEntriesResponse>>> {
        use get_tree_entries_request::SortBy;
        let repo = self.deps.repo(req.repository.as_ref())?;
        let rev = validate::revision(&req.revision)?;
        if req.path.is_empty() {
            return Err(Error::invalid("empty path"));
        }
        let mut path = validate::tree_path(&req.path)?;
        if path == "." {
            path = "";
        }
        let sort = SortBy::try_from(req.sort).map_err(|_| Error::invalid("unknown sort order"))?;
        let prefix = path.trim_end_matches('/');
        let mut walker = TreeWalker::new(repo.catfile()?);
        let info = walker.cat().info(&format!("{rev}:{path}")).await?;
        let mut entries = match info {
            // As Gitaly: a missing revision or path is NOT_FOUND for recursive listings and
            // INVALID_ARGUMENT otherwise; a path naming a blob lists nothing.
            None if req.recursive => return Err(Error::not_found("invalid revision or path")),
            None => return Err(Error::invalid("invalid revision or path")),
            Some(info) if info.kind != ObjectType::Tree => Vec::new(),
            Some(info) if req.recursive => ls_tree_recursive(&repo, &info.oid, prefix, rev).await?,
            Some(info) => walker
                .tree(&info.oid)
                .await?
                .unwrap_or_default()
                .iter()
                .map(|e| tree_entry(e, prefix, rev))
                .collect(),
        };
        match sort {
            SortBy::Default => {}
            SortBy::TreesFirst => entries.sort_by_key(|e| match e.r#type() {
                tree_entry::EntryType::Tree => 0,
                tree_entry::EntryType::Blob => 1,
                tree_entry::EntryType::Commit => 2,
            }),
            SortBy::Filesystem => entries.sort_by(|a, b| a.path.cmp(&b.path)),
        }
        let (mut entries, cursor) = match &req.pagination_params {
            Some(p) => paginate_entries(entries, p)?,
            None => (entries, String::new()),
        };
        if !req.recursive && !req.skip_flat_paths {
            // The flat path of a directory skips down through directories that hold nothing
            // but one directory.
            for e in &mut entries {
                e.flat_path = e.path.clone();
                if e.r#type() != tree_entry::EntryType::Tree {
                    continue;
                }
                let mut oid = e.oid.clone();
                for _ in 1..FLAT_PATH_DEPTH {
                    let Some(sub) = walker.tree(&oid).await? else {
                        break;
                    };
                    match sub.as_slice() {
                        [only] if only.kind == EntryKind::Tree => {
                            e.flat_path.push(b'/');
                            e.flat_path.extend_from_slice(&only.name);
                            oid = only.oid.clone();
                        }
                        _ => break,
                    }
                }
            }
        }
        let mut messages = Vec::new();
        let mut chunker = Chunker::new();
        for e in entries {
            if let Some(batch) = chunker.push(e) {
                messages.push(batch);
            }
        }
        let rest = chunker.take();
        if !rest.is_empty() {
            messages.push(rest);
        }
        // Only the first message carries the cursor, as Gitaly sends it.
        let mut cursor = Some(PaginationCursor {
            next_cursor: cursor,
        });
        let messages: Vec<Result<GetTreeEntriesResponse, Status>> = messages
            .into_iter()
            .map(|entries| {
                Ok(GetTreeEntriesResponse {
                    entries,
                    pagination_cursor: cursor.take(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }
}

#[tonic::async_trait]
impl CommitService for CommitServiceImpl {
    async fn find_commit(
        &self,
        req: Request<FindCommitRequest>,
    ) -> Result<Response<FindCommitResponse>, Status> {
        let req = req.into_inner();
        let repo = self.deps.repo(req.repository.as_ref())?;
        // Served from the cat-file pool; an unknown revision is an empty answer.
        let commit = repo.commit(&req.revision).await?;
        Ok(Response::new(FindCommitResponse {
            commit: commit.map(|c| convert::commit(&c, req.trailers)),
        }))
    }

    async fn list_commits(
        &self,
        req: Request<ListCommitsRequest>,
    ) -> Result<Response<RpcStream<ListCommitsResponse>>, Status> {
        Ok(self.list_commits(req.into_inner()).await?)
    }

    async fn list_commits_by_oid(
        &self,
        req: Request<ListCommitsByOidRequest>,
    ) -> Result<Response<RpcStream<ListCommitsByOidResponse>>, Status> {
        Ok(self.list_commits_by_oid(req.into_inner()).await?)
    }

    async fn commit_is_ancestor(
        &self,
        req: Request<CommitIsAncestorRequest>,
    ) -> Result<Response<CommitIsAncestorResponse>, Status> {
        let value = self.commit_is_ancestor(req.into_inner()).await?;
        Ok(Response::new(CommitIsAncestorResponse { value }))
    }

    async fn count_commits(
        &self,
        req: Request<CountCommitsRequest>,
    ) -> Result<Response<CountCommitsResponse>, Status> {
        let count = self.count_commits(req.into_inner()).await?;
        Ok(Response::new(CountCommitsResponse { count }))
    }

    async fn last_commit_for_path(
        &self,
        req: Request<LastCommitForPathRequest>,
    ) -> Result<Response<LastCommitForPathResponse>, Status> {
        let commit = self.last_commit_for_path(req.into_inner()).await?;
        Ok(Response::new(LastCommitForPathResponse { commit }))
    }

    async fn tree_entry(
        &self,
        req: Request<TreeEntryRequest>,
    ) -> Result<Response<RpcStream<TreeEntryResponse>>, Status> {
        Ok(self.tree_entry(req.into_inner()).await?)
    }

    async fn get_tree_entries(
        &self,
        req: Request<GetTreeEntriesRequest>,
    ) -> Result<Response<RpcStream<GetTreeEntriesResponse>>, Status> {
        Ok(self.get_tree_entries(req.into_inner()).await?)
    }
}

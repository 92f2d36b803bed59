//! The pack-objects cache's fast path on the transport side: protocol-v2 `fetch` requests
//! whose pack the cache holds are answered without upload-pack relaying the pack
//! (`crate::packcache::direct` has the cache side).
//!
//! [`Splitter`] follows the client's input (pkt-lines, split anywhere) and holds back each
//! `command=fetch` request up to its flush-pkt. [`FastPath::decide`] then looks at it:
//! - **Eligible** only if it is a plain full fetch: `done`, at least one `want`, and
//!   otherwise only `thin-pack`, `ofs-delta`, `include-tag`, `no-progress` (no `have`,
//!   shallow/deepen, `filter`, `want-ref`, `packfile-uris`, `sideband-all`, server
//!   options), and every want is the tip of a ref (or HEAD) now.
//! - Its **direct key** hashes the repository, `git_protocol`, the client's config options,
//!   every ref and HEAD as they are now (`git show-ref --head`) and the request normalised
//!   (object format, sorted options and wants; `agent`/`session-id` left out). A push, or
//!   any other change of a ref, changes the key.
//! - Served: upload-pack's stdin is closed instead (a v2 upload-pack ends cleanly at EOF
//!   before a command) and, once its output is through, the server writes the `packfile`
//!   section itself ([`crate::packcache::DirectPack`]). Later input is read and dropped.
//! - Anything else, or any doubt: the request goes to upload-pack unchanged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use gitrpc_git::{Command, Git};
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tonic::Status;

use super::activity::Activity;

use crate::packcache::{DirectKey, DirectLookup, DirectPack, Learner, PackCache, Session};

/// A fetch request held back longer than this goes to upload-pack as it comes (many haves:
/// not eligible anyway).
const MAX_REQUEST: usize = 256 << 10;
/// How long a request waits for an identical one to learn its entry.
const LEARN_WAIT: Duration = Duration::from_secs(120);

/// What one upload-pack session needs to take the fast path.
pub struct FastPath {
    cache: Arc<PackCache>,
    git: Git,
    show_ref: Command,
    /// Hash of what is fixed for the session: repository, protocol, client config.
    base: Vec<u8>,
    learned: tokio::sync::watch::Receiver<Option<([u8; 32], u64)>>,
}

/// What to do with a fetch request.
pub enum Decision {
    Serve(DirectPack),
    /// To upload-pack; with a learner, the session's next pack is this request's.
    Forward(Option<Learner>),
}

impl FastPath {
    /// For a protocol-v2 upload-pack session with the cache on.
    pub fn new(
        cache: Arc<PackCache>,
        git: Git,
        repo: &std::path::Path,
        show_ref: Command,
        protocol: &str,
        config: &[String],
        session: &Session,
    ) -> FastPath {
        let mut base = Vec::new();
        part(&mut base, b"gitrpc-direct-v1");
        part(&mut base, repo.as_os_str().as_encoded_bytes());
        part(&mut base, protocol.as_bytes());
        part(&mut base, &(config.len() as u64).to_be_bytes());
        for c in config {
            part(&mut base, c.as_bytes());
        }
        FastPath {
            cache,
            git,
            show_ref,
            base,
            learned: session.learned(),
        }
    }

    /// Serve `request` (a whole `command=fetch` request) from the cache, or not.
    pub async fn decide(&mut self, request: &[u8]) -> Decision {
        let Some(fetch) = Fetch::parse(request) else {
            return Decision::Forward(None);
        };
        let refs = match self.git.output(&self.show_ref).await {
            Ok(o) => o.stdout,
            Err(_) => return Decision::Forward(None),
        };
        let tips: std::collections::HashSet<&[u8]> = refs
            .split(|&b| b == b'\n')
            .filter_map(|l| l.split(|&b| b == b' ').next())
            .filter(|oid| !oid.is_empty())
            .collect();
        if !fetch.wants.iter().all(|w| tips.contains(&w[..])) {
            return Decision::Forward(None);
        }
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        h.update(&self.base);
        let mut buf = Vec::new();
        part(&mut buf, &refs);
        part(&mut buf, &fetch.normalised());
        h.update(&buf);
        let mut dkey: DirectKey = [0; 32];
        dkey.copy_from_slice(h.finish().as_ref());
        for _ in 0..3 {
            match self.cache.direct_lookup(dkey) {
                DirectLookup::Serve(pack) => return Decision::Serve(pack),
                DirectLookup::Learn(learner) => {
                    // What the session's hook read before this request doesn't count.
                    self.learned.borrow_and_update();
                    return Decision::Forward(Some(learner));
                }
                DirectLookup::Wait(mut rx) => {
                    let _ = tokio::time::timeout(LEARN_WAIT, rx.changed()).await;
                }
            }
        }
        Decision::Forward(None)
    }

    /// Record `learner`'s entry once the session's hook has read it (in the background:
    /// the session goes on meanwhile). Ends with the session.
    pub fn learn(&self, learner: Learner) {
        let mut rx = self.learned.clone();
        tokio::spawn(async move {
            if rx.changed().await.is_ok() {
                if let Some(entry) = *rx.borrow() {
                    learner.learned(entry);
                }
            }
        });
    }
}

/// `transport::feed` for a protocol-v2 upload-pack with the cache: `command=fetch` requests are held
/// back and either go to upload-pack or are served from the cache (see the module docs).
/// Served: upload-pack's stdin is closed (it exits) and the rest of the input is dropped.
pub async fn feed<S>(
    mut input: S,
    stdin: Option<ChildStdin>,
    mut fast: super::fastpath::FastPath,
    activity: &Activity,
    direct: &Mutex<Option<DirectPack>>,
) -> Result<(), Status>
where
    S: Stream<Item = Result<Bytes, Status>> + Unpin,
{
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    let mut splitter = Splitter::default();
    'input: while let Some(chunk) = input.next().await {
        let chunk = chunk?;
        activity.touch();
        for piece in splitter.feed(&chunk) {
            let bytes = match piece {
                Piece::Bytes(b) => b,
                Piece::Fetch(request) => {
                    activity.set_busy(true);
                    let decision = fast.decide(&request).await;
                    activity.set_busy(false);
                    match decision {
                        Decision::Serve(pack) => {
                            *direct.lock().unwrap_or_else(|p| p.into_inner()) = Some(pack);
                            drop(stdin);
                            while let Some(chunk) = input.next().await {
                                chunk?;
                                activity.touch();
                            }
                            return Ok(());
                        }
                        Decision::Forward(learner) => {
                            if let Some(l) = learner {
                                fast.learn(l);
                            }
                            request
                        }
                    }
                }
            };
            if stdin.write_all(&bytes).await.is_err() {
                break 'input; // git closed its stdin; its exit status tells why
            }
        }
    }
    Ok(())
}

/// One length-prefixed part of a key.
fn part(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An eligible fetch request.
#[derive(Debug, PartialEq)]
struct Fetch {
    object_format: Vec<u8>,
    options: Vec<Vec<u8>>,
    wants: Vec<Vec<u8>>,
}

impl Fetch {
    /// `None` unless eligible (see the module docs).
    fn parse(request: &[u8]) -> Option<Fetch> {
        let mut fetch = Fetch {
            object_format: b"sha1".to_vec(),
            options: Vec::new(),
            wants: Vec::new(),
        };
        let (mut args, mut done, mut flushed) = (false, false, false);
        let mut rest = request;
        while !rest.is_empty() {
            if flushed {
                return None; // anything after the flush: not one request
            }
            let len = usize::from_str_radix(std::str::from_utf8(rest.get(..4)?).ok()?, 16).ok()?;
            match len {
                0 => {
                    flushed = true;
                    rest = &rest[4..];
                    continue;
                }
                1 if !args => {
                    args = true;
                    rest = &rest[4..];
                    continue;
                }
                1..=4 => return None,
                _ => {}
            }
            let line = rest.get(4..len)?;
            rest = &rest[len..];
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            if !args {
                if line == b"command=fetch"
                    || line.starts_with(b"agent=")
                    || line.starts_with(b"session-id=")
                {
                    continue;
                }
                fetch.object_format = line.strip_prefix(b"object-format=")?.to_vec();
                continue;
            }
            match line {
                b"done" => done = true,
                b"thin-pack" | b"ofs-delta" | b"include-tag" | b"no-progress" => {
                    fetch.options.push(line.to_vec())
                }
                _ => {
                    let want = line.strip_prefix(b"want ")?;
                    if !(want.len() == 40 || want.len() == 64)
                        || !want
                            .iter()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
                    {
                        return None;
                    }
                    fetch.wants.push(want.to_vec());
                }
            }
        }
        if !(flushed && args && done) || fetch.wants.is_empty() {
            return None;
        }
        fetch.options.sort();
        fetch.options.dedup();
        fetch.wants.sort();
        fetch.wants.dedup();
        Some(fetch)
    }

    fn normalised(&self) -> Vec<u8> {
        let mut out = Vec::new();
        part(&mut out, &self.object_format);
        for list in [&self.options, &self.wants] {
            part(&mut out, &(list.len() as u64).to_be_bytes());
            for x in list {
                part(&mut out, x);
            }
        }
        out
    }
}

/// Follows the client's input and holds back protocol-v2 `command=fetch` requests.
#[derive(Default)]
pub struct Splitter {
    /// Bytes not passed on yet: the start of a request, or a fetch request being held.
    held: Vec<u8>,
    state: State,
}

#[derive(Default, PartialEq)]
enum State {
    /// At the start of a request.
    #[default]
    Start,
    /// In a fetch request being held.
    Fetch,
    /// In another request (or a fetch request too big to hold): passed on up to its flush.
    Pass,
    /// Not pkt-lines: everything is passed on (git will say what is wrong).
    Off,
}

/// What the input holds.
#[derive(Debug, PartialEq)]
pub enum Piece {
    /// Pass on to upload-pack.
    Bytes(Vec<u8>),
    /// A whole fetch request to decide about.
    Fetch(Vec<u8>),
}

impl Splitter {
    /// Take `data`; returns what can be handled now, in order.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        if self.state == State::Off {
            out.push(Piece::Bytes(data.to_vec()));
            return out;
        }
        self.held.extend_from_slice(data);
        // Offset in `held` up to which pkt-lines have been looked at.
        let mut at = 0;
        // Up to where `held` is passed on (in Pass state) or kept.
        let mut pass_to = 0;
        while let Some(head) = self.held.get(at..at + 4) {
            let Some(len) = std::str::from_utf8(head)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
                .filter(|&l| l != 4)
            else {
                self.state = State::Off;
                out.push(Piece::Bytes(std::mem::take(&mut self.held)));
                return out;
            };
            let size = if len < 4 { 4 } else { len };
            if self.held.len() < at + size {
                break;
            }
            let line = &self.held[at + 4..at + size];
            let end = at + size;
            match self.state {
                State::Start => {
                    self.state = if len > 4
                        && line.strip_suffix(b"\n").unwrap_or(line) == b"command=fetch"
                    {
                        State::Fetch
                    } else {
                        State::Pass
                    };
                    // Re-read this line in its state (a flush alone ends the request).
                    if len == 0 {
                        self.state = State::Start;
                        at = end;
                        pass_to = end;
                    }
                    continue;
                }
                State::Pass => {
                    at = end;
                    pass_to = end;
                    if len == 0 {
                        self.state = State::Start;
                    }
                }
                State::Fetch => {
                    at = end;
                    if len == 0 {
                        if pass_to > 0 {
                            out.push(Piece::Bytes(self.held[..pass_to].to_vec()));
                        }
                        out.push(Piece::Fetch(self.held[pass_to..end].to_vec()));
                        self.held.drain(..end);
                        at = 0;
                        pass_to = 0;
                        self.state = State::Start;
                    } else if end - pass_to > MAX_REQUEST {
                        self.state = State::Pass;
                        pass_to = end;
                    }
                }
                State::Off => unreachable!("handled above"),
            }
        }
        if pass_to > 0 {
            out.push(Piece::Bytes(self.held[..pass_to].to_vec()));
            self.held.drain(..pass_to);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    const W: &str = "1111111111111111111111111111111111111111";

    fn fetch_req(args: &[&str]) -> String {
        let mut r = pkt("command=fetch\n")
            + &pkt("agent=git/2.47\n")
            + &pkt("object-format=sha1\n")
            + "0001";
        for a in args {
            r += &pkt(&format!("{a}\n"));
        }
        r + "0000"
    }

    #[test]
    fn fetch_requests_are_held_and_others_pass() {
        let ls = pkt("command=ls-refs\n") + "0001" + &pkt("peel\n") + "0000";
        let f = fetch_req(&[&format!("want {W}"), "done"]);
        let all = format!("{ls}{f}0000");
        // Byte by byte, and at once: the same pieces.
        for step in [1, all.len()] {
            let mut s = Splitter::default();
            let mut passed = Vec::new();
            let mut fetches = Vec::new();
            for c in all.as_bytes().chunks(step) {
                for p in s.feed(c) {
                    match p {
                        Piece::Bytes(b) => passed.extend(b),
                        Piece::Fetch(b) => {
                            assert_eq!(passed, ls.as_bytes());
                            fetches.push(b)
                        }
                    }
                }
            }
            assert_eq!(fetches, vec![f.as_bytes().to_vec()]);
            assert_eq!(passed, format!("{ls}0000").as_bytes());
        }
    }

    #[test]
    fn not_pkt_lines_pass_through() {
        let mut s = Splitter::default();
        assert_eq!(
            s.feed(b"zzzz0000"),
            vec![Piece::Bytes(b"zzzz0000".to_vec())]
        );
        assert_eq!(s.feed(b"x"), vec![Piece::Bytes(b"x".to_vec())]);
    }

    #[test]
    fn only_plain_full_fetches_are_eligible() {
        let want = format!("want {W}");
        let parse = |args: &[&str]| Fetch::parse(fetch_req(args).as_bytes());
        let a = parse(&[&want, "thin-pack", "ofs-delta", "done"]).unwrap();
        let b = parse(&["ofs-delta", &want, "thin-pack", &want, "done"]).unwrap();
        assert_eq!(a, b);
        assert!(parse(&[&want]).is_none(), "no done");
        assert!(parse(&["done"]).is_none(), "no want");
        for extra in [
            format!("have {W}"),
            format!("shallow {W}"),
            "deepen 1".into(),
            "filter blob:none".into(),
            "want-ref refs/heads/main".into(),
            "sideband-all".into(),
            "packfile-uris https".into(),
        ] {
            assert!(parse(&[&want, &extra, "done"]).is_none(), "{extra}");
        }
        let server_option = pkt("command=fetch\n")
            + &pkt("server-option=x\n")
            + "0001"
            + &pkt(&format!("{want}\n"))
            + &pkt("done\n")
            + "0000";
        assert!(Fetch::parse(server_option.as_bytes()).is_none());
    }
}

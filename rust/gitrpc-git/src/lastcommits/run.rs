//! Driving the walk: `git log` streamed into [`LogParser`] and [`Walk`], merges resolved
//! from the directory's trees read through cat-file (a small cache), leftovers answered by
//! `git log -1`.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use tokio::io::AsyncReadExt;

use super::{protocol, Dir, LogParser, Walk};
use crate::objects::{mode, parse_tree, ObjectFormat};
use crate::{Command, Git, Lease, ObjectType, Result, Subcommand};

/// Directories kept from merge to merge (a merge and its parents; the next merge often
/// shares a parent with this one).
const DIR_CACHE: usize = 64;

/// Bytes read from git at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What `git log -1 --format=%H <start> -- <dir>/<name>` prints for each of `names`
/// (entries of the directory `dir` of commit `start`; `dir` is `""` for the root, with no
/// trailing slash), from one walk. `start` is a full commit id; pathspecs are literal.
pub async fn last_commits(
    git: &Git,
    cat: &mut Lease,
    repo: &Path,
    start: &str,
    dir: &[u8],
    names: Vec<Vec<u8>>,
) -> Result<Vec<String>> {
    let mut walk = Walk::new(start, names);
    if walk.is_done() {
        return Ok(Vec::new());
    }
    let mut cmd = Command::in_repo(repo, Subcommand::Log)
        .flag("--full-history")
        .flag("--sparse")
        .flag("--diff-merges=off")
        .flag("--no-renames")
        .flag("--no-abbrev")
        .flag("--no-ext-diff")
        .flag("--raw")
        .flag("-z")
        .flag("--format=%x01%H%x20%P")
        .rev(start)
        .no_paths()
        .env("GIT_LITERAL_PATHSPECS", "1");
    if !dir.is_empty() {
        let mut spec = dir.to_vec();
        spec.push(b'/');
        cmd = cmd.path(spec);
    }
    let mut log = git.spawn(&cmd)?;
    let mut stdout = log
        .take_stdout()
        .ok_or_else(|| protocol("git log has no stdout"))?;
    let mut parser = LogParser::new(dir);
    let mut dirs = DirCache::default();
    let mut records = Vec::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut eof = false;
    while !walk.is_done() {
        let n = stdout
            .read(&mut buf)
            .await
            .map_err(|source| crate::Error::Io {
                subcommand: "log",
                source,
            })?;
        if n == 0 {
            parser.finish(&mut records)?;
            eof = true;
        } else {
            parser.feed(&buf[..n], &mut records)?;
        }
        for rec in records.drain(..) {
            let Some(m) = walk.step(rec) else {
                continue;
            };
            let mine = dirs.get(cat, &m.commit, dir).await?;
            let first = dirs.get(cat, &m.parents[0], dir).await?;
            if mine.oid.is_some() && mine.oid == first.oid {
                walk.merge_to_first(m);
                continue;
            }
            let mut parents = vec![first];
            for p in &m.parents[1..] {
                parents.push(dirs.get(cat, p, dir).await?);
            }
            let refs: Vec<&Dir> = parents.iter().map(Arc::as_ref).collect();
            walk.resolve_merge(m, &mine, &refs);
        }
        if eof {
            break;
        }
    }
    drop(stdout);
    if walk.is_done() && !eof {
        // Everything is answered: dropping git kills it mid-walk.
        drop(log);
    } else {
        log.wait().await?;
    }
    for (commit, i) in walk.leftovers() {
        let path = join(dir, &walk.names()[i]);
        match last_commit_of(git, repo, &commit, &path, true).await? {
            Some(c) => walk.answer(i, &c),
            None => {
                return Err(protocol(format!(
                    "no last commit for {:?} from {commit}",
                    String::from_utf8_lossy(&path)
                )))
            }
        }
    }
    walk.into_answers()
        .into_iter()
        .map(|a| a.ok_or_else(|| protocol("walk ended with an entry unanswered")))
        .collect()
}

/// `<dir>/<name>`, or `name` in the root.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut p = dir.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// `git log -1 --format=%H <rev> -- <path>`: the last commit that changed `path` (a
/// pathspec: a glob or magic unless `literal`); `None` if there is none. `rev` must be a
/// checked revision; git failing is an error.
pub async fn last_commit_of(
    git: &Git,
    repo: &Path,
    rev: &str,
    path: &[u8],
    literal: bool,
) -> Result<Option<String>> {
    let mut cmd = Command::in_repo(repo, Subcommand::Log)
        .flag("--format=%H")
        .flag("--max-count=1")
        .rev(rev)
        .path(path);
    if literal {
        cmd = cmd.env("GIT_LITERAL_PATHSPECS", "1");
    }
    let out = git.output(&cmd).await?.stdout;
    let oid = String::from_utf8_lossy(&out).trim().to_string();
    Ok(Some(oid).filter(|o| !o.is_empty()))
}

/// The directory `dir` of recent commits.
#[derive(Default)]
struct DirCache {
    dirs: HashMap<String, Arc<Dir>>,
    order: VecDeque<String>,
}

impl DirCache {
    async fn get(&mut self, cat: &mut Lease, commit: &str, dir: &[u8]) -> Result<Arc<Dir>> {
        if let Some(d) = self.dirs.get(commit) {
            return Ok(d.clone());
        }
        let d = Arc::new(read_dir(cat, commit, dir).await?);
        if self.order.len() >= DIR_CACHE {
            if let Some(old) = self.order.pop_front() {
                self.dirs.remove(&old);
            }
        }
        self.order.push_back(commit.to_string());
        self.dirs.insert(commit.to_string(), d.clone());
        Ok(d)
    }
}

/// Can `dir` be asked for as `<commit>:<dir>` on cat-file's command line, and does git
/// read it as a plain path (no `.`/`..` components, which git resolves)?
fn direct(dir: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(dir).ok()?;
    let plain =
        !s.contains(['\n', '\0']) && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    plain.then_some(s)
}

/// The directory `dir` (`""`: the root) of `commit`; empty if there is none.
async fn read_dir(cat: &mut Lease, commit: &str, dir: &[u8]) -> Result<Dir> {
    if dir.is_empty() {
        return read_tree(cat, &format!("{commit}^{{tree}}")).await;
    }
    if let Some(d) = direct(dir) {
        return read_tree(cat, &format!("{commit}:{d}")).await;
    }
    // A name cat-file can't be asked for: down from the root, one tree at a time.
    let mut here = read_tree(cat, &format!("{commit}^{{tree}}")).await?;
    for name in dir.split(|&b| b == b'/') {
        let sub = match here.entries.get(name) {
            Some((m, oid)) if m & mode::TYPE_MASK == mode::TREE => oid.clone(),
            _ => return Ok(Dir::default()),
        };
        here = read_tree(cat, &sub).await?;
    }
    Ok(here)
}

async fn read_tree(cat: &mut Lease, object: &str) -> Result<Dir> {
    let Some(info) = cat.contents(object).await? else {
        return Ok(Dir::default());
    };
    if info.kind != ObjectType::Tree {
        // A file where other commits have the directory.
        cat.skip_rest().await?;
        cat.ensure_clean()?;
        return Ok(Dir::default());
    }
    let data = cat.read_rest().await?;
    let format = ObjectFormat::of_oid(&info.oid).unwrap_or_default();
    let entries = parse_tree(&data, format)?
        .into_iter()
        .map(|e| (e.name, (e.mode, e.oid)))
        .collect();
    Ok(Dir {
        oid: Some(info.oid),
        entries,
    })
}

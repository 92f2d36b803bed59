//! What a repository's object database and references look like, read from the file system
//! without starting git (Gitaly's `stats.RepositoryInfo`): the input of
//! [`super::strategy`]. Cheap enough to gather before every optimization: a directory listing
//! of `objects/??/`, `objects/pack/` and `refs/`, and the headers of the multi-pack-index and
//! of the newest commit-graph.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Loose objects older than this may be pruned (Gitaly's `StaleObjectsGracePeriod`: its
/// comment says two weeks, its code 10 days).
pub const STALE_OBJECTS_GRACE: Duration = Duration::from_secs(10 * 24 * 3600);

/// The file whose mtime says when the repository was last fully repacked. Gitaly's name, so
/// repositories served by Gitaly before keep their history (and Gitaly reads ours).
pub const FULL_REPACK_TIMESTAMP: &str = ".gitaly-full-repack-timestamp";

/// Loose objects (`objects/[0-9a-f]{2}/*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LooseObjects {
    pub count: u64,
    /// Older than [`STALE_OBJECTS_GRACE`].
    pub stale_count: u64,
}

/// Packfiles in `objects/pack/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packfiles {
    pub count: u64,
    /// Bytes of all `.pack` files.
    pub size: u64,
    /// Cruft packs (a `.mtimes` beside the `.pack`).
    pub cruft_count: u64,
    /// Packs with a `.keep`.
    pub keep_count: u64,
    pub has_bitmap: bool,
    /// A `multi-pack-index` exists, and how many packs it covers.
    pub midx: Option<u64>,
    /// mtime of [`FULL_REPACK_TIMESTAMP`]; `UNIX_EPOCH` if never.
    pub last_full_repack: SystemTime,
}

impl Default for Packfiles {
    fn default() -> Self {
        Packfiles {
            count: 0,
            size: 0,
            cruft_count: 0,
            keep_count: 0,
            has_bitmap: false,
            midx: None,
            last_full_repack: SystemTime::UNIX_EPOCH,
        }
    }
}

/// The commit-graph (`objects/info/commit-graph` or a chain in `commit-graphs/`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitGraph {
    /// Layers in `commit-graph-chain`; 0 for none, or for a monolithic graph (which gets
    /// rewritten as a chain).
    pub chain_length: u64,
    /// The newest layer (or the monolithic file) has changed-path Bloom filters (`BDAT`).
    pub has_bloom_filters: bool,
    /// ... and generation data (`GDA2`).
    pub has_generation_data: bool,
}

/// References of a `files`-backend repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Loose ref files under `refs/` (lock files aside).
    pub loose_count: u64,
    /// Bytes of `packed-refs`.
    pub packed_size: u64,
    /// The repository uses the reftable backend (git compacts it itself).
    pub reftable: bool,
}

/// `objects/info/alternates`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alternates {
    pub directories: Vec<PathBuf>,
    /// mtime of the file, if there is one.
    pub last_modified: Option<SystemTime>,
}

/// Everything the optimization strategy decides from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepositoryInfo {
    pub loose_objects: LooseObjects,
    pub packfiles: Packfiles,
    pub commit_graph: CommitGraph,
    pub references: References,
    pub alternates: Alternates,
    /// An object pool (`@pools/...`): never pruned, unreachable objects kept.
    pub is_object_pool: bool,
}

fn not_found_ok<T: Default>(r: io::Result<T>) -> io::Result<T> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        other => other,
    }
}

impl RepositoryInfo {
    /// Read the statistics of the repository at `repo` (blocking file-system work: call it
    /// off the async runtime). `is_object_pool` comes from the repository's relative path.
    pub fn gather(repo: &Path, is_object_pool: bool) -> io::Result<RepositoryInfo> {
        let now = SystemTime::now();
        Ok(RepositoryInfo {
            loose_objects: not_found_ok(loose_objects(&repo.join("objects"), now))?,
            packfiles: packfiles(repo)?,
            commit_graph: commit_graph(&repo.join("objects/info"))?,
            references: references(repo)?,
            alternates: alternates(&repo.join("objects/info/alternates"))?,
            is_object_pool,
        })
    }
}

fn is_hex(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_hexdigit)
}

fn loose_objects(objects: &Path, now: SystemTime) -> io::Result<LooseObjects> {
    let mut out = LooseObjects::default();
    for shard in std::fs::read_dir(objects)?.flatten() {
        let name = shard.file_name();
        let n = name.as_encoded_bytes();
        if n.len() != 2 || !is_hex(n) || !shard.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(shard.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let n = name.as_encoded_bytes();
            // The other 38 (SHA-1) or 62 (SHA-256) hex digits; `tmp_obj_*` are git's
            // temporary files.
            if !(n.len() == 38 || n.len() == 62) || !is_hex(n) {
                continue;
            }
            out.count += 1;
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > STALE_OBJECTS_GRACE);
            if stale {
                out.stale_count += 1;
            }
        }
    }
    Ok(out)
}

fn packfiles(repo: &Path) -> io::Result<Packfiles> {
    let dir = repo.join("objects/pack");
    let mut out = Packfiles {
        last_full_repack: std::fs::metadata(repo.join(FULL_REPACK_TIMESTAMP))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH),
        ..Packfiles::default()
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = name
            .strip_prefix("pack-")
            .and_then(|n| n.strip_suffix(".pack"))
        {
            out.count += 1;
            out.size += e.metadata().map_or(0, |m| m.len());
            if dir.join(format!("pack-{base}.mtimes")).exists() {
                out.cruft_count += 1;
            }
            if dir.join(format!("pack-{base}.keep")).exists() {
                out.keep_count += 1;
            }
        } else if name.ends_with(".bitmap") {
            out.has_bitmap = true;
        }
    }
    out.midx = midx_pack_count(&dir.join("multi-pack-index"))?;
    Ok(out)
}

/// Packs a multi-pack-index covers: the big-endian u32 at byte 8 of its header (`MIDX`,
/// version, object id version, chunk count, base count, pack count).
fn midx_pack_count(path: &Path) -> io::Result<Option<u64>> {
    let mut head = [0u8; 12];
    match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)) {
        Ok(()) if &head[..4] == b"MIDX" => Ok(Some(
            u32::from_be_bytes([head[8], head[9], head[10], head[11]]).into(),
        )),
        // Unreadable or truncated: as if there were none (a geometric repack rewrites it).
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

fn commit_graph(info: &Path) -> io::Result<CommitGraph> {
    let chain = info.join("commit-graphs/commit-graph-chain");
    let (file, chain_length) = match std::fs::read_to_string(&chain) {
        Ok(text) => {
            let layers: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            match layers.last() {
                Some(last) => (
                    info.join(format!("commit-graphs/graph-{last}.graph")),
                    layers.len() as u64,
                ),
                None => return Ok(CommitGraph::default()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (info.join("commit-graph"), 0),
        Err(e) => return Err(e),
    };
    let chunks = match graph_chunks(&file) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CommitGraph::default()),
        Err(e) => return Err(e),
    };
    Ok(CommitGraph {
        chain_length,
        has_bloom_filters: chunks.iter().any(|c| c == b"BDAT"),
        has_generation_data: chunks.iter().any(|c| c == b"GDA2"),
    })
}

/// The chunk ids of a commit-graph file: header `CGPH`, version, hash version, chunk count,
/// base count; then the table of (id, offset) entries.
fn graph_chunks(path: &Path) -> io::Result<Vec<[u8; 4]>> {
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 8];
    if f.read_exact(&mut head).is_err() || &head[..4] != b"CGPH" {
        return Ok(Vec::new());
    }
    let n = head[6] as usize;
    let mut table = vec![0u8; 12 * n];
    if f.read_exact(&mut table).is_err() {
        return Ok(Vec::new());
    }
    Ok(table
        .chunks_exact(12)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect())
}

fn references(repo: &Path) -> io::Result<References> {
    if repo.join("reftable").is_dir() {
        return Ok(References {
            reftable: true,
            ..References::default()
        });
    }
    let mut out = References {
        packed_size: std::fs::metadata(repo.join("packed-refs")).map_or(0, |m| m.len()),
        ..References::default()
    };
    let mut stack = vec![repo.join("refs")];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() && !e.file_name().as_encoded_bytes().ends_with(b".lock") {
                out.loose_count += 1;
            }
        }
    }
    Ok(out)
}

fn alternates(path: &Path) -> io::Result<Alternates> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Alternates::default()),
        Err(e) => return Err(e),
    };
    // Never open anything but a regular file (a FIFO would block us for good).
    let text = match meta.is_file() {
        true => std::fs::read_to_string(path)?,
        false => String::new(),
    };
    Ok(Alternates {
        directories: text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(PathBuf::from)
            .collect(),
        last_modified: meta.modified().ok(),
    })
}

#[cfg(test)]
mod tests;

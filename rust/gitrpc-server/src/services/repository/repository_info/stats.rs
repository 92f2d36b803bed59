//! The statistics RepositoryInfo reports, read from the file system as Gitaly's
//! `internal/git/stats` reads them (no git): directory listings of `objects/??/`,
//! `objects/pack/` and `refs/`, sizes and mtimes, and the fixed-size headers of bitmaps, the
//! multi-pack-index and commit-graphs (never a whole file). Blocking: run it off the runtime.
//!
//! (`gitrpc_git::housekeeping::stats` gathers a smaller set for the optimization strategy, with
//! its own rules; this one follows Gitaly's counting exactly, as the RPC reports it.)

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use regex::Regex;

/// Loose objects older than this are stale (Gitaly's `StaleObjectsGracePeriod`: 10 days).
pub const STALE_GRACE: Duration = Duration::from_secs(10 * 24 * 3600);

/// Touched by Gitaly after a full repack (its mtime is `last_full_repack`).
const FULL_REPACK_TIMESTAMP: &str = ".gitaly-full-repack-timestamp";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loose {
    pub count: u64,
    pub size: u64,
    pub stale_count: u64,
    pub stale_size: u64,
    /// Entries of the shards whose name isn't all lowercase hex (`tmp_obj_*`).
    pub garbage_count: u64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Bitmap {
    pub version: u16,
    pub has_hash_cache: bool,
    pub has_lookup_table: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Midx {
    pub version: u8,
    pub packfile_count: u64,
    pub has_large_offsets: bool,
    pub has_bitmapped_packs: bool,
    pub has_reverse_index: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Packs {
    pub count: u64,
    pub size: u64,
    pub reverse_index_count: u64,
    pub cruft_count: u64,
    pub cruft_size: u64,
    pub keep_count: u64,
    pub keep_size: u64,
    pub bitmap: Option<Bitmap>,
    pub midx: Option<Midx>,
    pub midx_bitmap: Option<Bitmap>,
    pub last_full_repack: Option<SystemTime>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommitGraph {
    /// Files in `commit-graph-chain`; 0 for a monolithic `commit-graph`.
    pub chain_length: u64,
    pub has_bloom_filters: bool,
    pub has_generation_data: bool,
    pub has_generation_data_overflow: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    pub reftable: bool,
    pub loose_count: u64,
    pub packed_size: u64,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Alternates {
    /// Lines as written (empty lines and `#` comments left out).
    pub directories: Vec<String>,
    pub last_modified: Option<SystemTime>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of every file under the repository (symlinks count as themselves).
    pub size: u64,
    pub references: References,
    pub loose: Loose,
    pub packs: Packs,
    pub commit_graph: Option<CommitGraph>,
    pub alternates: Option<Alternates>,
}

/// A failure, with the context Gitaly's messages give it (`counting packfiles: reading
/// bitmap info: invalid bitmap signature: "XXXX"`).
fn context(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl Stats {
    pub fn gather(repo: &Path) -> io::Result<Stats> {
        Ok(Stats {
            size: dir_size(repo).map_err(context("calculating repository size"))?,
            loose: loose(repo, SystemTime::now() - STALE_GRACE)
                .map_err(context("deriving repository info: counting loose objects"))?,
            packs: packs(repo).map_err(context("deriving repository info: counting packfiles"))?,
            references: references(repo)
                .map_err(context("deriving repository info: checking references"))?,
            commit_graph: commit_graph(repo).map_err(context(
                "deriving repository info: checking commit-graph info",
            ))?,
            alternates: alternates(repo)
                .map_err(context("deriving repository info: reading alternates"))?,
        })
    }
}

/// Sizes of all files below `root`, directories walked without following symlinks; entries
/// removed while we walk are skipped (git works concurrently).
pub(super) fn dir_size(root: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            // Like lstat: a symlink is not followed.
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// `objects/00` .. `objects/ff`: names all of lowercase hex are objects (stale if older than
/// `cutoff`), anything else is garbage.
pub(super) fn loose(repo: &Path, cutoff: SystemTime) -> io::Result<Loose> {
    let mut out = Loose::default();
    for shard in 0..=0xffu8 {
        let dir = repo.join(format!("objects/{shard:02x}"));
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(context("reading loose object shard")(e)),
        };
        for entry in entries {
            let entry = entry?;
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(context("reading object info")(e)),
            };
            let name = entry.file_name();
            let hex = name
                .as_encoded_bytes()
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
            if !hex {
                out.garbage_count += 1;
                continue;
            }
            if meta.modified().is_ok_and(|m| m < cutoff) {
                out.stale_count += 1;
                out.stale_size += meta.len();
            }
            out.count += 1;
            out.size += meta.len();
        }
    }
    Ok(out)
}

/// `objects/pack`: packs (with `.keep`: kept; else with `.mtimes`: cruft), reverse indices,
/// the bitmap, the multi-pack-index and its bitmap.
pub(super) fn packs(repo: &Path) -> io::Result<Packs> {
    let dir = repo.join("objects/pack");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if gone(&e) => return Ok(Packs::default()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry?.file_name());
    }
    let set: HashSet<&OsString> = names.iter().collect();
    let has = |base: &str, ext: &str| set.contains(&OsString::from(format!("{base}.{ext}")));
    let mut out = Packs::default();
    for name in &names {
        // Names git writes are ASCII; anything else is garbage (not reported).
        let Some(name) = name.to_str() else { continue };
        let pack = |ext: &str| name.starts_with("pack-") && name.ends_with(ext);
        if pack(".pack") {
            let size = match std::fs::symlink_metadata(dir.join(name)) {
                Ok(m) => m.len(),
                // Removed by a repack since the listing: it no longer counts.
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(context("getting packfile size")(e)),
            };
            out.count += 1;
            out.size += size;
            let base = &name[..name.len() - ".pack".len()];
            if has(base, "keep") {
                out.keep_count += 1;
                out.keep_size += size;
            } else if has(base, "mtimes") {
                out.cruft_count += 1;
                out.cruft_size += size;
            }
        } else if pack(".rev") {
            out.reverse_index_count += 1;
        } else if pack(".bitmap") {
            out.bitmap = Some(bitmap(&dir.join(name)).map_err(context("reading bitmap info"))?);
        } else if name == "multi-pack-index" {
            out.midx = Some(midx(&dir.join(name)).map_err(context("reading multi-pack-index"))?);
        } else if name.starts_with("multi-pack-index-") && name.ends_with(".bitmap") {
            out.midx_bitmap = Some(
                bitmap(&dir.join(name)).map_err(context("reading multi-pack-index bitmap info"))?,
            );
        }
        // `.idx`, `.keep`, `.mtimes` are classified above; other files are garbage, which
        // the response has no field for.
    }
    out.last_full_repack = match std::fs::metadata(repo.join(FULL_REPACK_TIMESTAMP)) {
        Ok(m) => Some(m.modified()?),
        Err(e) if gone(&e) => None,
        Err(e) => return Err(context("reading full-repack timestamp")(e)),
    };
    Ok(out)
}

/// Open a file to read its header: never blocks on a FIFO, refuses anything but a regular
/// file.
fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    Ok(f)
}

/// Fill `buf` from the start of `path`.
fn header(path: &Path, buf: &mut [u8]) -> io::Result<std::fs::File> {
    let mut f = open_regular(path)?;
    f.read_exact(buf)?;
    Ok(f)
}

/// A bitmap's header: `BITM`, a big-endian u16 version (1), u16 flags (0x4: name-hash cache,
/// 0x10: lookup table).
fn bitmap(path: &Path) -> io::Result<Bitmap> {
    let mut h = [0u8; 8];
    header(path, &mut h).map_err(context("reading bitmap header"))?;
    if &h[..4] != b"BITM" {
        return Err(invalid(format!(
            "invalid bitmap signature: {:?}",
            String::from_utf8_lossy(&h[..4])
        )));
    }
    let version = u16::from_be_bytes([h[4], h[5]]);
    if version != 1 {
        return Err(invalid(format!("unsupported version: {version}")));
    }
    let flags = u16::from_be_bytes([h[6], h[7]]);
    Ok(Bitmap {
        version,
        has_hash_cache: flags & 0x4 != 0,
        has_lookup_table: flags & 0x10 != 0,
    })
}

/// A multi-pack-index's header (`MIDX`, version 1, hash version, chunk count, base files (0),
/// big-endian u32 pack count) and its table of contents (12 bytes a chunk: id, offset).
fn midx(path: &Path) -> io::Result<Midx> {
    let mut h = [0u8; 12];
    let mut f = header(path, &mut h).map_err(context("reading header"))?;
    if &h[..4] != b"MIDX" {
        return Err(invalid(format!(
            "invalid signature: {:?}",
            String::from_utf8_lossy(&h[..4])
        )));
    }
    if h[4] != 1 {
        return Err(invalid(format!("invalid version: {}", h[4])));
    }
    if h[7] != 0 {
        return Err(invalid(format!(
            "unsupported number of base files: {}",
            h[7]
        )));
    }
    let mut toc = vec![0u8; 12 * h[6] as usize];
    f.read_exact(&mut toc)
        .map_err(context("reading table of contents"))?;
    let mut out = Midx {
        version: h[4],
        packfile_count: u32::from_be_bytes([h[8], h[9], h[10], h[11]]).into(),
        ..Midx::default()
    };
    for chunk in toc.chunks_exact(12) {
        match &chunk[..4] {
            b"LOFF" => out.has_large_offsets = true,
            b"RIDX" => out.has_reverse_index = true,
            b"BTMP" => out.has_bitmapped_packs = true,
            _ => {}
        }
    }
    Ok(out)
}

/// The commit-graph chain (`commit-graphs/commit-graph-chain`, one `graph-<id>.graph` a line)
/// or else the monolithic `commit-graph`; `None` if neither exists. Each file's table of
/// contents is searched for `BIDX`+`BDAT` (Bloom filters), `GDA2`, `GDO2`.
fn commit_graph(repo: &Path) -> io::Result<Option<CommitGraph>> {
    let info = repo.join("objects/info");
    let mut out = CommitGraph::default();
    let files: Vec<PathBuf> =
        match std::fs::symlink_metadata(info.join("commit-graphs/commit-graph-chain")) {
            Ok(m) if m.is_file() => {
                // A line per layer: 41 or 65 bytes; a chain of thousands is still small, but
                // read no more than 1 MiB of it.
                let mut text = String::new();
                open_regular(&info.join("commit-graphs/commit-graph-chain"))?
                    .take(1 << 20)
                    .read_to_string(&mut text)
                    .map_err(context("reading commit-graphs chain"))?;
                let ids: Vec<&str> = text.trim().split('\n').collect();
                out.chain_length = ids.len() as u64;
                ids.iter()
                    .map(|id| info.join(format!("commit-graphs/graph-{id}.graph")))
                    .collect()
            }
            Ok(_) => return Err(invalid("reading commit-graphs chain: not a file".into())),
            Err(e) if gone(&e) => match std::fs::symlink_metadata(info.join("commit-graph")) {
                Ok(_) => vec![info.join("commit-graph")],
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(context("statting commit-graph")(e)),
            },
            Err(e) => return Err(context("reading commit-graphs chain")(e)),
        };
    for file in files {
        let shown = file.display().to_string();
        let mut h = [0u8; 8];
        let mut f = match header(&file, &mut h) {
            Ok(f) => f,
            // Replaced concurrently.
            Err(e) if gone(&e) => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(invalid(format!(
                    "commit graph file {shown:?} is too small, no header"
                )))
            }
            Err(e) => return Err(context("read commit graph chain file")(e)),
        };
        if &h[..4] != b"CGPH" {
            return Err(invalid(format!(
                "commit graph file {shown:?} doesn't have signature"
            )));
        }
        if h[4] != 1 {
            return Err(invalid(format!(
                "commit graph file {shown:?} has unsupported version number: {}",
                h[4]
            )));
        }
        // The table has one more (terminating) entry than chunks.
        let mut table = vec![0u8; (h[6] as usize + 1) * 12];
        if f.read_exact(&mut table).is_err() {
            return Err(invalid(format!(
                "commit graph file {shown:?} is too small, no table of contents"
            )));
        }
        let contains = |id: &[u8; 4]| table.windows(4).any(|w| w == id);
        out.has_bloom_filters |= contains(b"BIDX") && contains(b"BDAT");
        out.has_generation_data |= contains(b"GDA2");
        out.has_generation_data_overflow |= contains(b"GDO2");
    }
    Ok(Some(out))
}

/// The reference backend (`extensions.refStorage` in the config), and for `files`: files
/// under `refs/` (any file, as Gitaly counts them) and the size of `packed-refs`.
fn references(repo: &Path) -> io::Result<References> {
    if reftable(repo) {
        return Ok(References {
            reftable: true,
            ..References::default()
        });
    }
    let mut out = References::default();
    let mut stack = vec![repo.join("refs")];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(context("counting loose refs")(e)),
        };
        for entry in entries {
            let entry = entry?;
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(_) => out.loose_count += 1,
                Err(e) if gone(&e) => {}
                Err(e) => return Err(context("counting loose refs")(e)),
            }
        }
    }
    out.packed_size = match std::fs::symlink_metadata(repo.join("packed-refs")) {
        Ok(m) => m.len(),
        Err(e) if gone(&e) => 0,
        Err(e) => return Err(context("getting packed-refs size")(e)),
    };
    Ok(out)
}

/// `[extensions] refStorage = reftable` in the repository's config (read as
/// `ObjectFormat::of_repository` reads `objectFormat`).
fn reftable(repo: &Path) -> bool {
    let mut text = String::new();
    let read =
        open_regular(&repo.join("config")).and_then(|f| f.take(1 << 20).read_to_string(&mut text));
    read.is_ok()
        && text.lines().any(|l| {
            let l = l.trim().to_ascii_lowercase().replace([' ', '\t'], "");
            l == "refstorage=reftable"
        })
}

/// `objects/info/alternates`: `None` if there is none.
fn alternates(repo: &Path) -> io::Result<Option<Alternates>> {
    let path = repo.join("objects/info/alternates");
    let f = match open_regular(&path) {
        Ok(f) => f,
        Err(e) if gone(&e) => return Ok(None),
        Err(e) => return Err(context("open")(e)),
    };
    let last_modified = f.metadata()?.modified().ok();
    let mut text = Vec::new();
    f.take(1 << 20)
        .read_to_end(&mut text)
        .map_err(context("scanning alternate paths"))?;
    let directories = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect();
    Ok(Some(Alternates {
        directories,
        last_modified,
    }))
}

/// Gitaly's object pools (`storage.IsPoolRepository`): a relative path ending in
/// `@pools/<aa>/<bb>/<aabb + 60 hex>.git` (Rails) or `@cluster/pools/<hex2>/<hex2>/<digits>`
/// (Praefect).
pub fn is_object_pool(relative: &str) -> bool {
    static RAILS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"@pools/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.git$").expect("valid")
    });
    static PRAEFECT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"@cluster/pools/[0-9a-f]{2}/[0-9a-f]{2}/[0-9]+$").expect("valid")
    });
    let rails = RAILS
        .captures(relative)
        .is_some_and(|c| c[3].starts_with(&format!("{}{}", &c[1], &c[2])));
    rails || PRAEFECT.is_match(relative)
}

#[cfg(test)]
mod tests;

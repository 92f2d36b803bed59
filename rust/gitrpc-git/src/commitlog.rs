//! What the history reads parse from git, as Gitaly parses it: `git log` records with
//! trailers, decorations and short stats (FindCommits), and `git diff --numstat -z` totals
//! (CommitStats). Pure functions, tested without git.

use crate::{Error, Result};

fn protocol(subcommand: &'static str, detail: impl Into<String>) -> Error {
    Error::Protocol {
        subcommand,
        detail: detail.into(),
    }
}

/// What FindCommits asks `git log` to print besides the commit id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogFormat {
    /// `--shortstat`: records start with `\x01` and end with the stat line.
    pub shortstat: bool,
    /// The commit's trailers, NUL-separated, after a NUL.
    pub trailers: bool,
    /// The refs pointing at it (`%D` with `--decorate=full`), after `\x02`.
    pub refs: bool,
}

/// `--shortstat`: files changed, lines added and removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShortStat {
    pub files: i32,
    pub additions: i32,
    pub deletions: i32,
}

/// One commit of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogRecord {
    pub oid: String,
    /// `(key, value)`, only with [`LogFormat::trailers`].
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Ref names (`HEAD`, `refs/heads/main`, `refs/tags/v1`), only with [`LogFormat::refs`].
    pub refs: Vec<Vec<u8>>,
    /// `None` for commits without a stat line (merges, empty commits).
    pub stats: Option<ShortStat>,
}

impl LogFormat {
    /// The `--format=` value (Gitaly's, byte for byte).
    pub fn format(&self) -> String {
        let mut f = String::from(if self.shortstat { "%x01%H" } else { "%H" });
        if self.trailers {
            f.push_str("%x00%(trailers:unfold,separator=%x00)");
        }
        if self.refs {
            f.push_str("%x02%D");
        }
        f
    }

    /// The byte between records: `\x01` with stats (a stat line spans lines), else `\n`.
    pub fn separator(&self) -> u8 {
        if self.shortstat {
            1
        } else {
            b'\n'
        }
    }

    /// One record (the bytes between two separators); `None` for an empty one.
    pub fn parse(&self, record: &[u8]) -> Result<Option<LogRecord>> {
        let mut rest = record.trim_ascii();
        if rest.is_empty() {
            return Ok(None);
        }
        let mut out = LogRecord::default();
        if self.shortstat {
            if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                out.stats = Some(parse_shortstat(&rest[nl + 1..])?);
                rest = &rest[..nl];
            }
        }
        if self.refs {
            if let Some(i) = rest.iter().position(|&b| b == 2) {
                out.refs = parse_refs(&rest[i + 1..]);
                rest = &rest[..i];
            }
        }
        if self.trailers {
            if let Some(i) = rest.iter().position(|&b| b == 0) {
                out.trailers = parse_trailers(&rest[i + 1..]);
                rest = &rest[..i];
            }
        }
        let oid = std::str::from_utf8(rest)
            .ok()
            .filter(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                protocol(
                    "log",
                    format!("bad record {:?}", String::from_utf8_lossy(record)),
                )
            })?;
        out.oid = oid.to_string();
        Ok(Some(out))
    }
}

/// Gitaly's limits on trailers (`trailerparser`): at most 64; parsing stops at a key over
/// 128 bytes or a value over 512.
const MAX_TRAILERS: usize = 64;
const MAX_TRAILER_KEY: usize = 128;
const MAX_TRAILER_VALUE: usize = 512;

/// `%(trailers:unfold,separator=%x00)`: `Key: value` items separated by NUL (Gitaly's
/// `trailerparser.Parse`: items without a `:` after the first byte are skipped).
pub fn parse_trailers(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for item in input.split(|&b| b == 0) {
        if out.len() >= MAX_TRAILERS {
            break;
        }
        let Some(sep) = item.iter().position(|&b| b == b':').filter(|&i| i > 0) else {
            continue;
        };
        let (key, value) = (&item[..sep], item[sep + 1..].trim_ascii());
        if key.len() > MAX_TRAILER_KEY || value.len() > MAX_TRAILER_VALUE {
            break;
        }
        out.push((key.to_vec(), value.to_vec()));
    }
    out
}

/// `%D` with `--decorate=full`: `HEAD -> refs/heads/main, tag: refs/tags/v1, refs/x`; a
/// tag loses its `tag: `, `A -> B` gives both names.
pub fn parse_refs(line: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (item, next) = match find(rest, b", ") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, &b""[..]),
        };
        rest = next;
        if item.is_empty() {
            continue;
        }
        let item = item.strip_prefix(b"tag: ").unwrap_or(item);
        match find(item, b" -> ") {
            Some(i) => {
                out.push(item[..i].to_vec());
                out.push(item[i + 4..].to_vec());
            }
            None => out.push(item.to_vec()),
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A number followed by ` <word>`, where `word` is one of `words`; what follows it.
fn count<'a>(s: &'a [u8], words: &[&str]) -> Option<(i32, &'a [u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let n: i32 = std::str::from_utf8(&s[..digits]).ok()?.parse().ok()?;
    let rest = s[digits..].strip_prefix(b" ")?;
    let word = words.iter().find(|w| rest.starts_with(w.as_bytes()))?;
    Some((n, &rest[word.len()..]))
}

/// ` 2 files changed, 3 insertions(+), 1 deletion(-)` (either count may be missing).
pub fn parse_shortstat(line: &[u8]) -> Result<ShortStat> {
    let bad = || {
        protocol(
            "log",
            format!(
                "unexpected stats format: {:?}",
                String::from_utf8_lossy(line)
            ),
        )
    };
    let s = line.trim_ascii();
    let (files, mut rest) = count(s, &["files changed", "file changed"]).ok_or_else(bad)?;
    let mut stat = ShortStat {
        files,
        ..ShortStat::default()
    };
    if let Some(r) = rest.strip_prefix(b", ") {
        if let Some((n, r)) = count(r, &["insertions(+)", "insertion(+)"]) {
            stat.additions = n;
            rest = r;
        }
    }
    if let Some(r) = rest.strip_prefix(b", ") {
        if let Some((n, _)) = count(r, &["deletions(-)", "deletion(-)"]) {
            stat.deletions = n;
        }
    }
    Ok(stat)
}

/// Totals of `git diff --numstat -z`, fed field by field (NUL-separated): each record is
/// `<added>\t<removed>\t<path>`, or for a rename `<added>\t<removed>\t` followed by two path
/// fields; a binary file (`-\t-`) counts as a file with no lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumstatTotals {
    pub files: i32,
    pub additions: i32,
    pub deletions: i32,
    /// Path fields still to skip (of a rename).
    paths_left: u8,
}

impl NumstatTotals {
    /// The next NUL-separated field.
    pub fn field(&mut self, f: &[u8]) -> Result<()> {
        if self.paths_left > 0 {
            self.paths_left -= 1;
            return Ok(());
        }
        if f.is_empty() {
            return Ok(());
        }
        let bad = || {
            protocol(
                "diff",
                format!("invalid numstat line {:?}", String::from_utf8_lossy(f)),
            )
        };
        let mut parts = f.splitn(3, |&b| b == b'\t');
        let (Some(add), Some(del), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        self.files = self.files.saturating_add(1);
        if path.is_empty() {
            self.paths_left = 2;
        }
        if add == b"-" && del == b"-" {
            return Ok(());
        }
        let n = |x: &[u8]| -> Result<i32> {
            std::str::from_utf8(x)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)
        };
        self.additions = self.additions.saturating_add(n(add)?);
        self.deletions = self.deletions.saturating_add(n(del)?);
        Ok(())
    }

    /// All of a (small) numstat output.
    pub fn of(out: &[u8]) -> Result<NumstatTotals> {
        let mut t = NumstatTotals::default();
        for f in out.split(|&b| b == 0) {
            t.field(f)?;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "ded40c8bbb12b9c8e0114a11eb55665b6a175ef0";

    fn tr(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    #[test]
    fn formats_are_gitalys() {
        let all = LogFormat {
            shortstat: true,
            trailers: true,
            refs: true,
        };
        assert_eq!(
            all.format(),
            "%x01%H%x00%(trailers:unfold,separator=%x00)%x02%D"
        );
        assert_eq!(LogFormat::default().format(), "%H");
        assert_eq!(all.separator(), 1);
        assert_eq!(LogFormat::default().separator(), b'\n');
    }

    #[test]
    fn records_as_git_prints_them() {
        // git 2.47, `--decorate=full --shortstat` with trailers and refs.
        let all = LogFormat {
            shortstat: true,
            trailers: true,
            refs: true,
        };
        let rec = format!(
            "{H}\0Signed-off-by: A <a@x>\0Co-authored-by: B continued\0Reviewed-by: C <c@x>\x02HEAD -> refs/heads/master, tag: refs/tags/vt\n\n 2 files changed, 1 insertion(+), 3 deletions(-)\n"
        );
        assert_eq!(
            all.parse(rec.as_bytes()).unwrap(),
            Some(LogRecord {
                oid: H.into(),
                trailers: vec![
                    tr("Signed-off-by", "A <a@x>"),
                    tr("Co-authored-by", "B continued"),
                    tr("Reviewed-by", "C <c@x>"),
                ],
                refs: vec![
                    b"HEAD".to_vec(),
                    b"refs/heads/master".to_vec(),
                    b"refs/tags/vt".to_vec()
                ],
                stats: Some(ShortStat {
                    files: 2,
                    additions: 1,
                    deletions: 3
                }),
            })
        );
        // A merge: no trailers, no refs, no stat line.
        let merge = format!("{H}\0\x02\n");
        let r = all.parse(merge.as_bytes()).unwrap().unwrap();
        assert_eq!((r.trailers.len(), r.refs.len(), r.stats), (0, 0, None));
        assert_eq!(all.parse(b"").unwrap(), None);
        assert_eq!(LogFormat::default().parse(b"\n").unwrap(), None);
        assert!(LogFormat::default().parse(b"fatal: x").is_err());
    }

    #[test]
    fn trailers_as_gitaly_parses_them() {
        assert_eq!(
            parse_trailers(b"a: 1\0:no key\0nocolon\0b:2  "),
            vec![tr("a", "1"), tr("b", "2")]
        );
        let long = format!("k: {}\0after: x", "v".repeat(513));
        assert!(parse_trailers(long.as_bytes()).is_empty());
        let many: Vec<String> = (0..70).map(|i| format!("k{i}: v")).collect();
        assert_eq!(parse_trailers(many.join("\0").as_bytes()).len(), 64);
    }

    #[test]
    fn short_stats() {
        let s = |x: &str| parse_shortstat(x.as_bytes()).unwrap();
        assert_eq!(
            s(" 1 file changed, 1 insertion(+)"),
            ShortStat {
                files: 1,
                additions: 1,
                deletions: 0
            }
        );
        assert_eq!(
            s(" 3 files changed, 2 deletions(-)\n"),
            ShortStat {
                files: 3,
                additions: 0,
                deletions: 2
            }
        );
        assert_eq!(
            s(" 0 files changed"),
            ShortStat {
                files: 0,
                additions: 0,
                deletions: 0
            }
        );
        assert!(parse_shortstat(b"garbage").is_err());
    }

    #[test]
    fn numstat_totals() {
        let t = NumstatTotals::of(b"1\t2\ta.txt\0-\t-\tbin\0\x33\t0\t\0old\0new\0").unwrap();
        assert_eq!((t.files, t.additions, t.deletions), (3, 4, 2));
        assert_eq!(NumstatTotals::of(b"").unwrap().files, 0);
        assert!(NumstatTotals::of(b"x\0").is_err());
    }
}

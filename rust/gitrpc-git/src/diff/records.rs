//! `git diff --raw -z` (GetRawChanges, as Gitaly's `rawdiff` parser reads it) and
//! `git diff --numstat -z` (Gitaly's `NumStatParser`) records.

use tokio::io::AsyncRead;

use super::reader::Reader;
use super::DiffError;

const MAX_RECORD: usize = 1024 * 1024;

/// One record of `git diff --raw -z`, fields as git printed them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawRecord {
    pub src_mode: String,
    pub dst_mode: String,
    pub src_oid: String,
    pub dst_oid: String,
    /// The status with its score (`R100`).
    pub status: String,
    pub src_path: Vec<u8>,
    /// Only for copies and renames.
    pub dst_path: Vec<u8>,
}

pub struct RawRecords<R> {
    reader: Reader<R>,
}

async fn chop<R: AsyncRead + Unpin>(r: &mut Reader<R>, delim: u8) -> Result<Vec<u8>, DiffError> {
    let mut v = Vec::new();
    r.read_until(delim, &mut v, MAX_RECORD)
        .await
        .map_err(|e| DiffError::Io("read raw diff", e))?;
    if v.pop() != Some(delim) {
        return Err(DiffError::Record("read raw diff: EOF".into()));
    }
    Ok(v)
}

fn string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl<R: AsyncRead + Unpin> RawRecords<R> {
    pub fn new(src: R) -> Self {
        RawRecords {
            reader: Reader::new(src),
        }
    }

    pub async fn next(&mut self) -> Result<Option<RawRecord>, DiffError> {
        let first = self
            .reader
            .peek(1)
            .await
            .map_err(|e| DiffError::Io("read raw diff", e))?;
        match first.first() {
            None => return Ok(None),
            Some(b':') => {}
            Some(_) => {
                return Err(DiffError::Record(
                    "expected leading colon in raw diff line".into(),
                ))
            }
        }
        self.reader
            .skip_until(b':')
            .await
            .map_err(|e| DiffError::Io("read raw diff", e))?;
        let r = &mut self.reader;
        let mut rec = RawRecord {
            src_mode: string(chop(r, b' ').await?),
            dst_mode: string(chop(r, b' ').await?),
            src_oid: string(chop(r, b' ').await?),
            dst_oid: string(chop(r, b' ').await?),
            status: string(chop(r, 0).await?),
            src_path: chop(r, 0).await?,
            dst_path: Vec::new(),
        };
        if rec.status.starts_with(['C', 'R']) {
            rec.dst_path = chop(r, 0).await?;
        }
        Ok(Some(rec))
    }
}

/// One record of `git diff --numstat -z`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumStat {
    pub path: Vec<u8>,
    /// The old path of a rename or copy.
    pub old_path: Vec<u8>,
    /// Lines added and removed (0 for binary files, shown as `-`).
    pub additions: i32,
    pub deletions: i32,
}

pub struct NumStats<R> {
    reader: Reader<R>,
}

fn count(n: &[u8]) -> Result<i32, DiffError> {
    if n == b"-" {
        return Ok(0);
    }
    std::str::from_utf8(n)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            DiffError::Record(format!(
                "error converting diff num stat: {:?}",
                String::from_utf8_lossy(n)
            ))
        })
}

impl<R: AsyncRead + Unpin> NumStats<R> {
    pub fn new(src: R) -> Self {
        NumStats {
            reader: Reader::new(src),
        }
    }

    async fn field(&mut self) -> Result<Option<Vec<u8>>, DiffError> {
        let mut v = Vec::new();
        self.reader
            .read_until(0, &mut v, MAX_RECORD)
            .await
            .map_err(|e| DiffError::Io("read numstat", e))?;
        Ok((v.pop() == Some(0)).then_some(v))
    }

    /// `<added>\t<removed>\t<path>\0`, or for a rename `<added>\t<removed>\t\0<old>\0<new>\0`.
    pub async fn next(&mut self) -> Result<Option<NumStat>, DiffError> {
        let Some(rec) = self.field().await? else {
            return Ok(None);
        };
        let bad =
            || DiffError::Record(format!("error parsing {:?}", String::from_utf8_lossy(&rec)));
        let mut parts = rec.splitn(3, |&b| b == b'\t');
        let (Some(add), Some(del), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let mut stat = NumStat {
            additions: count(add)?,
            deletions: count(del)?,
            path: path.to_vec(),
            old_path: Vec::new(),
        };
        if path.is_empty() {
            let (Some(old), Some(new)) = (self.field().await?, self.field().await?) else {
                return Err(bad());
            };
            stat.old_path = old;
            stat.path = new;
        }
        Ok(Some(stat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn raw_records() {
        let input = b":100644 100644 aaa bbb M\0a.txt\0:100644 100644 ccc ccc R100\0old\0n\xe9w\0:160000 000000 ddd 000 D\0sub\0";
        let mut r = RawRecords::new(&input[..]);
        let a = r.next().await.unwrap().unwrap();
        assert_eq!((a.status.as_str(), &a.src_path[..]), ("M", &b"a.txt"[..]));
        let b = r.next().await.unwrap().unwrap();
        assert_eq!(
            (&b.src_path[..], &b.dst_path[..]),
            (&b"old"[..], &b"n\xe9w"[..])
        );
        let c = r.next().await.unwrap().unwrap();
        assert_eq!((c.src_mode.as_str(), c.dst_oid.as_str()), ("160000", "000"));
        assert!(r.next().await.unwrap().is_none());
        let mut bad = RawRecords::new(&b"x"[..]);
        assert!(bad.next().await.is_err());
        let mut cut = RawRecords::new(&b":100644 100644 aaa"[..]);
        assert!(cut.next().await.is_err());
    }

    #[tokio::test]
    async fn numstats() {
        let input = b"1\t2\ta.txt\0-\t-\tbin\0" as &[u8];
        let mut input = input.to_vec();
        input.extend_from_slice(b"3\t0\t\0old\0new\0");
        let mut r = NumStats::new(&input[..]);
        let mut got = Vec::new();
        while let Some(s) = r.next().await.unwrap() {
            got.push(s);
        }
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].additions, got[0].deletions), (1, 2));
        assert_eq!((got[1].additions, &got[1].path[..]), (0, &b"bin"[..]));
        assert_eq!(
            (&got[2].old_path[..], &got[2].path[..]),
            (&b"old"[..], &b"new"[..])
        );
        assert!(NumStats::new(&b"x\0"[..]).next().await.is_err());
    }
}

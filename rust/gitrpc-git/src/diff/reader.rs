//! A buffered reader for git's diff output that hands out lines (or NUL-terminated fields)
//! as slices of its own buffer: no allocation per line, and a line longer than the buffer is
//! handed out in pieces, so memory stays at one buffer whatever git prints.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes read from git at a time.
pub const BUFFER: usize = 256 * 1024;

pub struct Reader<R> {
    src: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(src: R) -> Self {
        Self::with_capacity(src, BUFFER)
    }

    pub fn with_capacity(src: R, capacity: usize) -> Self {
        Reader {
            src,
            buf: vec![0u8; capacity.max(16)].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The source, for dropping it early (e.g. to stop a process).
    pub fn into_inner(self) -> R {
        self.src
    }

    /// Read more after what is buffered (moving it to the front first if needed); false at
    /// the end of the source.
    async fn fill_more(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.end == self.buf.len() {
            if self.start == 0 {
                return Ok(true); // full: callers take what is there
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.src.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.end += n;
        Ok(true)
    }

    /// At least `n` buffered bytes (fewer only at the end of the source), without consuming
    /// them (Go's `bufio.Reader.Peek`).
    pub async fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.end - self.start < n && self.fill_more().await? {}
        let have = (self.end - self.start).min(n);
        Ok(&self.buf[self.start..self.start + have])
    }

    /// Is the source exhausted with nothing left buffered?
    pub async fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.peek(1).await?.is_empty())
    }

    /// Hand the next record, up to and including `delim` (or the end of the source), to `f`
    /// in one or more pieces; returns its length (0: nothing was left).
    pub async fn for_each_piece(
        &mut self,
        delim: u8,
        mut f: impl FnMut(&[u8]),
    ) -> io::Result<usize> {
        let mut total = 0;
        loop {
            if self.start == self.end && !self.fill_more().await? {
                return Ok(total);
            }
            let avail = &self.buf[self.start..self.end];
            match memchr::memchr(delim, avail) {
                Some(i) => {
                    f(&avail[..=i]);
                    self.start += i + 1;
                    return Ok(total + i + 1);
                }
                None => {
                    // Keep a partial record buffered unless the buffer is full of it.
                    if self.start > 0 || self.end < self.buf.len() {
                        if self.fill_more().await? {
                            continue;
                        }
                        let avail = &self.buf[self.start..self.end];
                        f(avail);
                        total += avail.len();
                        self.start = self.end;
                        return Ok(total);
                    }
                    f(avail);
                    total += avail.len();
                    self.start = self.end;
                }
            }
        }
    }

    /// The next record up to and including `delim` (or the end), appended to `out`; returns
    /// its length (0: nothing was left). Bounded by `max` bytes: longer records are an error.
    pub async fn read_until(
        &mut self,
        delim: u8,
        out: &mut Vec<u8>,
        max: usize,
    ) -> io::Result<usize> {
        let mut too_long = false;
        let n = self
            .for_each_piece(delim, |p| {
                if out.len() + p.len() > max {
                    too_long = true;
                } else {
                    out.extend_from_slice(p);
                }
            })
            .await?;
        if too_long {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("record longer than {max} bytes"),
            ));
        }
        Ok(n)
    }

    /// Skip the next record (up to and including `delim`).
    pub async fn skip_until(&mut self, delim: u8) -> io::Result<usize> {
        self.for_each_piece(delim, |_| {}).await
    }

    /// Read and drop everything left.
    pub async fn drain(&mut self) -> io::Result<()> {
        self.start = self.end;
        while self.fill_more().await? {
            self.start = self.end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn records(input: &[u8], cap: usize, delim: u8) -> Vec<Vec<Vec<u8>>> {
        let mut r = Reader::with_capacity(input, cap);
        let mut out = Vec::new();
        loop {
            let mut pieces = Vec::new();
            let n = r
                .for_each_piece(delim, |p| pieces.push(p.to_vec()))
                .await
                .unwrap();
            if n == 0 {
                return out;
            }
            assert_eq!(n, pieces.iter().map(Vec::len).sum::<usize>());
            out.push(pieces);
        }
    }

    #[tokio::test]
    async fn lines_whole_when_they_fit_in_pieces_when_not() {
        let got = records(b"ab\ncd\nlast", 64, b'\n').await;
        assert_eq!(
            got,
            vec![
                vec![b"ab\n".to_vec()],
                vec![b"cd\n".to_vec()],
                vec![b"last".to_vec()]
            ]
        );
        // A 16-byte buffer: a 40-byte line comes in pieces, shorter ones whole.
        let long = [b'x'; 40];
        let mut input = long.to_vec();
        input.extend_from_slice(b"\nshort\n");
        let got = records(&input, 16, b'\n').await;
        assert_eq!(got.len(), 2);
        assert!(got[0].len() > 1);
        assert_eq!(got[0].concat().len(), 41);
        assert_eq!(got[1], vec![b"short\n".to_vec()]);
        assert_eq!(records(b"a\0b\0", 16, 0).await.len(), 2);
    }

    #[tokio::test]
    async fn peek_reads_ahead_without_consuming() {
        let mut r = Reader::with_capacity(&b"diff --git a/x b/x\n+1\n"[..], 16);
        assert_eq!(r.peek(10).await.unwrap(), b"diff --git");
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line, 100).await.unwrap();
        assert_eq!(line, b"diff --git a/x b/x\n");
        assert_eq!(r.peek(10).await.unwrap(), b"+1\n");
        assert!(r.read_until(b'\n', &mut Vec::new(), 1).await.is_err());
        assert!(r.at_end().await.unwrap());
    }
}

//! Filling a buffer from a reader: the one loop every streamed response uses to cut git's
//! output (a pipe, a cat-file object) into full messages.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Read into `buf` until it is full or the reader ends; returns the bytes read (less than
/// `buf.len()` only at the end).
pub async fn fill<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..]).await?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fills_across_short_reads_and_stops_at_the_end() {
        let (mut w, mut r) = tokio::io::duplex(3);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            w.write_all(b"abcdefgh").await.unwrap();
        });
        let mut buf = [0u8; 5];
        assert_eq!(fill(&mut r, &mut buf).await.unwrap(), 5);
        assert_eq!(&buf, b"abcde");
        writer.await.unwrap();
        assert_eq!(fill(&mut r, &mut buf).await.unwrap(), 3);
        assert_eq!(&buf[..3], b"fgh");
        assert_eq!(fill(&mut r, &mut buf).await.unwrap(), 0);
    }
}

//! The request message size limit (`max_message_bytes`), checked on the 5-byte gRPC length
//! prefix of every message as a request body streams through: an oversized message is
//! refused with `RESOURCE_EXHAUSTED` ("received message larger than max (N vs. M)", as gRPC
//! says it) before any of its payload is read, so memory stays bounded by the limit whatever
//! the client sends (HTTP/2 flow control stops a client we don't read from).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tonic::Status;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body whose messages may be at most `max` bytes. Bytes before an oversized
/// message's prefix are passed on; then the body fails with `RESOURCE_EXHAUSTED`.
pub struct Checked<B> {
    inner: B,
    max: usize,
    /// The length prefix being read (`have` bytes of it so far).
    header: [u8; 5],
    have: usize,
    /// Payload bytes of the current message still to come.
    remaining: usize,
    pending: Option<Status>,
    failed: bool,
}

impl<B> Checked<B> {
    pub fn new(inner: B, max: usize) -> Checked<B> {
        Checked {
            inner,
            max,
            header: [0; 5],
            have: 0,
            remaining: 0,
            pending: None,
            failed: false,
        }
    }

    /// Follow the framing through `data`; on an oversized message, where in `data` its
    /// prefix starts (0 if it began in an earlier frame) and the refusal.
    fn scan(&mut self, data: &[u8]) -> Result<(), (usize, Status)> {
        let mut i = 0;
        let mut start = 0;
        while i < data.len() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len() - i);
                self.remaining -= n;
                i += n;
                continue;
            }
            if self.have == 0 {
                start = i;
            }
            self.header[self.have] = data[i];
            self.have += 1;
            i += 1;
            if self.have == 5 {
                self.have = 0;
                let h = &self.header;
                let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
                if len > self.max {
                    return Err((start, too_large(len, self.max)));
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

/// gRPC's refusal of an oversized message.
pub fn too_large(len: usize, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "received message larger than max ({len} vs. {max})"
    ))
}

impl<B> Body for Checked<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(e) = self.pending.take() {
            self.failed = true;
            return Poll::Ready(Some(Err(e)));
        }
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(Status::from_error(e.into())))),
            Some(Ok(frame)) => frame,
        };
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(other) => return Poll::Ready(Some(Ok(other))),
        };
        match self.scan(&data) {
            Ok(()) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Err((0, status)) => {
                self.failed = true;
                Poll::Ready(Some(Err(status)))
            }
            Err((cut, status)) => {
                self.pending = Some(status);
                Poll::Ready(Some(Ok(Frame::data(data.slice(..cut)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && (self.failed || self.inner.is_end_stream())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut v = vec![0u8];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend(std::iter::repeat_n(7u8, len.min(64) as usize));
        v
    }

    #[test]
    fn follows_framing_across_chunks() {
        let mut c = Checked::new((), 64);
        let mut all = frame(10);
        all.extend(frame(64));
        all.extend(frame(0));
        // Fed one byte at a time: every split of prefixes and payloads.
        for b in &all {
            c.scan(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!((c.have, c.remaining), (0, 0));
    }

    #[test]
    fn refuses_from_the_prefix() {
        let mut c = Checked::new((), 64);
        let mut data = frame(3);
        let at = data.len();
        data.extend_from_slice(&[0, 0, 0, 1, 0]); // 256 bytes announced, none sent
        let (cut, status) = c.scan(&data).unwrap_err();
        assert_eq!(cut, at);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "received message larger than max (256 vs. 64)"
        );
        // A prefix split over two chunks: refused when complete, cut at the chunk's start.
        let mut c = Checked::new((), 64);
        c.scan(&[0, 0, 0]).unwrap();
        assert_eq!(c.scan(&[1, 0]).unwrap_err().0, 0);
    }
}

//! Just enough protobuf and gRPC framing to route a call: read a request body up to the end
//! of its first message, find a field by its number path without the schema, and hand the
//! body on unchanged (the bytes read are put back in front).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame};
use tonic::body::Body;
use tonic::Status;

/// The first message of a request body, and the body with everything read put back.
pub(crate) struct First {
    /// The first message's payload; `None` if the body ended before one was complete, or it
    /// is compressed (its fields can't be read).
    pub message: Option<Bytes>,
    pub body: Body,
}

/// Read `body` until its first gRPC message is complete (5-byte prefix: compressed flag,
/// big-endian length; then the payload).
pub(crate) async fn first_message(mut body: Body) -> Result<First, Status> {
    let mut read = BytesMut::new();
    let mut trailers = None;
    let complete = |read: &BytesMut| {
        (read.len() >= 5)
            .then(|| u32::from_be_bytes([read[1], read[2], read[3], read[4]]) as usize)
            .filter(|len| read.len() >= 5 + len)
    };
    let len = loop {
        if let Some(len) = complete(&read) {
            break Some(len);
        }
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => break None,
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => read.extend_from_slice(&data),
                Err(frame) => {
                    trailers = Some(frame);
                    break None;
                }
            },
        }
    };
    let read = read.freeze();
    let message = len
        .filter(|_| read[0] == 0)
        .map(|len| read.slice(5..5 + len));
    Ok(First {
        message,
        body: Body::new(Prefixed {
            prefix: Some(read).filter(|b| !b.is_empty()),
            trailers,
            rest: body,
        }),
    })
}

/// A body that yields `prefix`, then the rest of the original body.
struct Prefixed {
    prefix: Option<Bytes>,
    /// Trailers met while reading the prefix (a request body has none in gRPC; kept anyway).
    trailers: Option<Frame<Bytes>>,
    rest: Body,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(p) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        if let Some(t) = self.trailers.take() {
            return Poll::Ready(Some(Ok(t)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.trailers.is_none() && self.rest.is_end_stream()
    }
}

/// A varint at `*pos`, advancing it.
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The payloads of every length-delimited occurrence of field `number` in `msg`, in order;
/// `None` if `msg` is not a well-formed message.
fn occurrences(msg: &[u8], number: u32) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < msg.len() {
        let key = varint(msg, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(msg, &mut pos)?;
            }
            1 => pos = pos.checked_add(8).filter(|p| *p <= msg.len())?,
            5 => pos = pos.checked_add(4).filter(|p| *p <= msg.len())?,
            2 => {
                let len = usize::try_from(varint(msg, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= msg.len())?;
                if field == u64::from(number) {
                    out.push(&msg[pos..end]);
                }
                pos = end;
            }
            _ => return None, // groups (deprecated) and invalid wire types
        }
    }
    Some(out)
}

/// The submessage at `path` (field numbers, outermost first), as protobuf reads it: every
/// occurrence of a message field merges, which is their concatenation. `None` if absent.
pub(crate) fn submessage(msg: &[u8], path: &[u32]) -> Option<Vec<u8>> {
    let mut cur = msg.to_vec();
    for &n in path {
        let parts = occurrences(&cur, n)?;
        if parts.is_empty() {
            return None;
        }
        cur = parts.concat();
    }
    Some(cur)
}

/// A string field of `msg` (the last occurrence wins, as protobuf reads it); `None` if it
/// is absent or not UTF-8.
pub(crate) fn string(msg: &[u8], number: u32) -> Option<String> {
    let last = *occurrences(msg, number)?.last()?;
    String::from_utf8(last.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitaly::*;
    use prost::Message;

    fn repo(storage: &str) -> Option<Repository> {
        Some(crate::client::repository(storage, "a.git"))
    }

    #[test]
    fn finds_nested_repositories() {
        let m = ReplicateRepositoryRequest {
            repository: repo("s2"),
            source: repo("s1"),
        }
        .encode_to_vec();
        let target = submessage(&m, &[1]).unwrap();
        assert_eq!(string(&target, 2).as_deref(), Some("s2"));
        assert_eq!(
            string(&submessage(&m, &[2]).unwrap(), 2).as_deref(),
            Some("s1")
        );
        assert_eq!(submessage(&m, &[3]), None);
        // A repeated message field merges: the last storage name wins.
        let mut twice = m.clone();
        twice.extend(
            ReplicateRepositoryRequest {
                repository: repo("s3"),
                source: None,
            }
            .encode_to_vec(),
        );
        assert_eq!(
            string(&submessage(&twice, &[1]).unwrap(), 2).as_deref(),
            Some("s3")
        );
        // Garbage is no message.
        assert_eq!(submessage(&[0x0a, 0x7f, 1], &[1]), None);
        assert_eq!(submessage(&[0x0b], &[1]), None);
    }

    #[tokio::test]
    async fn reads_the_first_message_and_gives_the_body_back() {
        let m = RepositoryExistsRequest {
            repository: repo("s1"),
        }
        .encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(m.len() as u32).to_be_bytes());
        framed.extend_from_slice(&m);
        framed.extend_from_slice(b"\0\0\0\0\0"); // a second, empty message
                                                 // Delivered a few bytes at a time.
        let chunks: Vec<Result<Frame<Bytes>, Status>> = framed
            .chunks(3)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let body = Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            chunks,
        )));
        let first = first_message(body).await.unwrap();
        assert_eq!(first.message.as_deref(), Some(&m[..]));
        let mut all = Vec::new();
        let mut body = first.body;
        while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            all.extend_from_slice(&f.unwrap().into_data().unwrap());
        }
        assert_eq!(all, framed);
        // An empty body has no first message, and stays empty.
        let first = first_message(Body::empty()).await.unwrap();
        assert!(first.message.is_none());
    }
}

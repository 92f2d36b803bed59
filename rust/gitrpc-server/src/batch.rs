//! Every listing cuts its items into response messages with [`Batcher`]: a message is sent
//! when its items reach a number of encoded bytes or a count, whichever comes first; or, as
//! Gitaly's `chunk.Chunker` ([`Limits::GITALY`]), just before the item that would reach 1 MiB.

use tokio_stream::StreamExt;
use tonic::Response;

use crate::stream::RpcStream;

/// How big one message of a listing may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Encoded bytes of the items (a message is sent once they reach this).
    pub bytes: usize,
    pub items: usize,
    /// Cut before the item that would bring the bytes to `bytes` (it starts the next
    /// message), instead of after the item that reached them.
    pub cut_before: bool,
}

impl Limits {
    /// Commits and tree entries: 1 MiB of items or 1000 of them (well below gRPC's 4 MiB
    /// default message size).
    pub const LISTING: Limits = Limits {
        bytes: 1024 * 1024,
        items: 1000,
        cut_before: false,
    };

    /// Gitaly's `chunk.Chunker` (FindChangedPaths, FindCommits, ListBlobs, the LFS RPCs, ...):
    /// items are added until the next one would bring their encoded sizes to 1 MiB; that one
    /// starts the next message. No count cap. (Unlike Gitaly, never an empty message when
    /// the first item alone is that big.)
    pub const GITALY: Limits = Limits {
        bytes: 1024 * 1024,
        items: usize::MAX,
        cut_before: true,
    };

    /// At most `n` items (Gitaly's fixed batches: 100 refs, 1000 diff stats).
    pub const fn items(n: usize) -> Limits {
        Limits {
            bytes: usize::MAX,
            items: n,
            cut_before: false,
        }
    }

    /// About `n` encoded bytes of items.
    pub const fn bytes(n: usize) -> Limits {
        Limits {
            bytes: n,
            items: usize::MAX,
            cut_before: false,
        }
    }
}

/// Collects items into batches of at most [`Limits`].
pub struct Batcher<T> {
    limits: Limits,
    items: Vec<T>,
    bytes: usize,
}

impl<T: prost::Message> Batcher<T> {
    pub fn new(limits: Limits) -> Self {
        Batcher {
            limits,
            items: Vec::new(),
            bytes: 0,
        }
    }

    /// Add an item; returns a full batch when one is ready to send.
    pub fn push(&mut self, item: T) -> Option<Vec<T>> {
        if self.limits.cut_before {
            let size = item.encoded_len();
            let full = !self.items.is_empty() && self.bytes + size >= self.limits.bytes;
            let out = full.then(|| self.take());
            self.bytes += size;
            self.items.push(item);
            return out;
        }
        if self.limits.bytes != usize::MAX {
            self.bytes += item.encoded_len();
        }
        self.items.push(item);
        (self.bytes >= self.limits.bytes || self.items.len() >= self.limits.items)
            .then(|| self.take())
    }

    /// The last, partial batch; `None` if nothing is left.
    pub fn finish(&mut self) -> Option<Vec<T>> {
        (!self.items.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }
}

/// All of `items` in batches (none for no items).
pub fn batches<T: prost::Message>(
    items: impl IntoIterator<Item = T>,
    limits: Limits,
) -> Vec<Vec<T>> {
    let mut b = Batcher::new(limits);
    let mut out: Vec<Vec<T>> = items.into_iter().filter_map(|i| b.push(i)).collect();
    out.extend(b.finish());
    out
}

/// Stream `items` in batches, each message built by `wrap`.
pub fn chunked<I, T, W>(items: Vec<I>, limits: Limits, wrap: W) -> Response<RpcStream<T>>
where
    I: prost::Message + Send + 'static,
    T: Send + 'static,
    W: Fn(Vec<I>) -> T + Send + 'static,
{
    let s = tokio_stream::iter(batches(items, limits)).map(move |b| Ok(wrap(b)));
    Response::new(Box::pin(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// A message of `n` encoded bytes (a bytes field: 1 tag byte, 1 length byte, n-2 bytes).
    fn item(n: usize) -> gitrpc_proto::gitaly::Branch {
        gitrpc_proto::gitaly::Branch {
            name: vec![b'x'; n - 2],
            target_commit: None,
        }
    }

    fn sizes(b: &[Vec<gitrpc_proto::gitaly::Branch>]) -> Vec<usize> {
        b.iter().map(Vec::len).collect()
    }

    #[test]
    fn cuts_by_count_or_bytes_whichever_first() {
        assert_eq!(item(10).encoded_len(), 10);
        assert_eq!(
            sizes(&batches((0..7).map(|_| item(10)), Limits::items(3))),
            [3, 3, 1]
        );
        assert_eq!(
            sizes(&batches((0..7).map(|_| item(10)), Limits::bytes(25))),
            [3, 3, 1]
        );
        let both = Limits {
            bytes: 45,
            items: 2,
            cut_before: false,
        };
        assert_eq!(sizes(&batches((0..5).map(|_| item(30)), both)), [2, 2, 1]);
        assert_eq!(
            sizes(&batches((0..5).map(|_| item(50)), both)),
            [1, 1, 1, 1, 1]
        );
        assert!(batches(Vec::<gitrpc_proto::gitaly::Branch>::new(), both).is_empty());
    }

    #[test]
    fn gitaly_cuts_before_the_item_that_reaches_the_limit() {
        // Gitaly: 1 MiB = 1048576; items of 300000 bytes: 3 fit (900000), the 4th would
        // reach 1200000, so it starts the next message.
        let b = batches((0..7).map(|_| item(300_000)), Limits::GITALY);
        assert_eq!(sizes(&b), [3, 3, 1]);
        // Exactly reaching 1 MiB cuts too (Gitaly's `>=`).
        let b = batches((0..4).map(|_| item(262_144)), Limits::GITALY);
        assert_eq!(sizes(&b), [3, 1]);
        // A single item over the limit goes alone, never an empty message.
        let b = batches([item(2 << 20), item(10), item(2 << 20)], Limits::GITALY);
        assert_eq!(sizes(&b), [1, 1, 1]);
        // No count cap.
        let b = batches((0..5000).map(|_| item(10)), Limits::GITALY);
        assert_eq!(sizes(&b), [5000]);
    }

    #[test]
    fn listings_stay_far_below_grpc_default() {
        let big = || item(100 * 1024);
        let b = batches((0..25).map(|_| big()), Limits::LISTING);
        assert_eq!(sizes(&b), [11, 11, 3]);
        let mut batcher = Batcher::new(Limits::LISTING);
        assert!((0..999).all(|_| batcher.push(item(3)).is_none()));
        assert_eq!(batcher.push(item(3)).map(|b| b.len()), Some(1000));
        assert_eq!(batcher.finish(), None);
    }
}

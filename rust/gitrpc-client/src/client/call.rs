//! The shape every typed call shares: a method of a generated client ([`rpc`]) made with
//! [`Client::unary`], [`Client::collect`] or [`Client::stream`] (deadline, retries), and
//! pages of a stream taken apart into their items ([`flatten`]).

use futures::{Stream, StreamExt};
use tonic::{Request, Status};

use super::{with_deadline, Client};

/// `method` (`|mut c, r| async move { c.find_commit(r).await }`) on a clone of `service` (a
/// generated client) for each attempt: what [`Client::unary`], [`Client::collect`] and
/// [`Client::stream`] call.
pub(super) fn rpc<S: Clone, T, Fut>(
    service: S,
    method: impl Fn(S, Request<T>) -> Fut,
) -> impl FnMut(Request<T>) -> Fut {
    move |r| method(service.clone(), r)
}

impl Client {
    /// Open the server stream `path` with `msg` (retried like a unary call until it opens,
    /// if read-only); its messages, ended with `DEADLINE_EXCEEDED` at the default deadline.
    pub(super) async fn stream<T, R, F, Fut>(
        &self,
        path: &str,
        msg: T,
        mut call: F,
    ) -> Result<impl Stream<Item = Result<R, Status>> + Send + 'static, Status>
    where
        T: Clone,
        R: Send + 'static,
        F: FnMut(Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<tonic::Streaming<R>>, Status>>,
    {
        let deadline = self.deadline();
        let messages = self
            .attempt(path, deadline, msg, |r| {
                let fut = call(r);
                async move { Ok(fut.await?.into_inner()) }
            })
            .await?;
        Ok(with_deadline(messages, deadline))
    }
}

/// The items of a stream of pages (`items` takes them out of a page), in order, then the
/// stream's error if it ends with one.
pub(super) fn flatten<P, I>(
    pages: impl Stream<Item = Result<P, Status>> + Send + 'static,
    items: impl Fn(P) -> Vec<I> + Send + 'static,
) -> impl Stream<Item = Result<I, Status>> + Send + 'static
where
    P: Send + 'static,
    I: Send + 'static,
{
    pages.flat_map(move |page| {
        let items: Vec<Result<I, Status>> = match page {
            Ok(p) => items(p).into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    })
}

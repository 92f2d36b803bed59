use std::io;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use super::*;

/// The mux over one connection; `None` if it closed the connection instead.
async fn mux_one(server: UnixStream) -> Option<MuxIo<UnixStream>> {
    let incoming = futures::stream::iter([Ok::<_, io::Error>(server)]);
    let mut accepted = Box::pin(accept(incoming, None));
    accepted.next().await.map(|r| r.unwrap())
}

#[tokio::test]
async fn plain_bytes_are_put_back_in_order() {
    let (mut client, server) = UnixStream::pair().unwrap();
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let writer = tokio::spawn(async move {
        // The first read sees 3 bytes only.
        client.write_all(&preface[..3]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(&preface[3..]).await.unwrap();
        client
    });
    let mut io = mux_one(server).await.expect("a plain connection");
    assert!(!io.is_session());
    let mut got = vec![0u8; preface.len()];
    io.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, preface);
    // Writes reach the client.
    let mut client = writer.await.unwrap();
    io.write_all(b"hi").await.unwrap();
    let mut two = [0u8; 2];
    client.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"hi");
}

#[tokio::test]
async fn short_first_bytes_close_the_connection() {
    let (mut client, server) = UnixStream::pair().unwrap();
    client.write_all(b"backc").await.unwrap();
    client.shutdown().await.unwrap();
    assert!(mux_one(server).await.is_none());
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn backchannel_session_serves_the_first_stream_and_opens_more() {
    let (mut client, server) = UnixStream::pair().unwrap();
    client.write_all(MAGIC).await.unwrap();
    let mut conn = yamux::Connection::new(client.compat(), session::config(), yamux::Mode::Client);
    let mut grpc = std::future::poll_fn(|cx| conn.poll_new_outbound(cx))
        .await
        .unwrap()
        .compat();
    let (inbound_tx, mut inbound_rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        std::future::poll_fn(|cx| loop {
            match conn.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(s))) => {
                    let _ = inbound_tx.send(s);
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        })
        .await
    });
    grpc.write_all(b"PRI").await.unwrap();
    grpc.flush().await.unwrap();
    let mut io = mux_one(server).await.expect("a session");
    assert!(io.is_session());
    let mut got = [0u8; 3];
    io.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"PRI");
    let opener = io.connect_info().sidechannel.expect("an opener");

    // A server-opened stream reaches the client.
    let mut side = opener.open_stream().await.unwrap().compat();
    side.write_all(b"sidechannel").await.unwrap();
    side.flush().await.unwrap();
    let mut theirs = inbound_rx.recv().await.unwrap().compat();
    let mut magic = [0u8; 11];
    theirs.read_exact(&mut magic).await.unwrap();
    assert_eq!(&magic, b"sidechannel");

    // The gRPC stream gone (tonic done with it) ends the session: the client sees it close.
    drop(io);
    tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("session closed")
        .unwrap();
    assert!(opener.open_stream().await.is_err());
}

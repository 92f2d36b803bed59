use super::*;

/// Run the request reader over `input` (then EOF): what reached git, and the last verdict.
async fn read(input: &[u8]) -> (Vec<u8>, Verdict) {
    let (tx, mut rx) = mpsc::channel(4);
    let (vtx, vrx) = watch::channel(Verdict::Reading);
    let negotiation = Arc::new(Mutex::new(Negotiation::default()));
    let reader = tokio::spawn(read_request(
        input.to_vec().leak() as &[u8],
        tx,
        vtx,
        negotiation,
    ));
    let mut got = Vec::new();
    while let Some(b) = rx.recv().await {
        got.extend_from_slice(&b);
    }
    reader.await.unwrap();
    let v = vrx.borrow().clone();
    (got, v)
}

#[tokio::test]
async fn reader_stops_at_flush() {
    let (got, v) = read(b"0009hello0000").await;
    assert_eq!(got, b"hello");
    assert_eq!(v, Verdict::Closed { flushed: true });
    // Bytes after `0000` never reach git, whatever they are.
    let (got, v) = read(b"0009hello0000000aignoredzzzz").await;
    assert_eq!(got, b"hello");
    assert_eq!(v, Verdict::Closed { flushed: true });
    // An empty packet is accepted.
    let (got, v) = read(b"00040008abcd0000").await;
    assert_eq!(got, b"abcd");
    assert_eq!(v, Verdict::Closed { flushed: true });
}

#[tokio::test]
async fn reader_flush_is_published_before_the_end() {
    let (mut client, server) = tokio::io::duplex(1024);
    let (tx, mut rx) = mpsc::channel(4);
    let (vtx, mut vrx) = watch::channel(Verdict::Reading);
    let negotiation = Arc::new(Mutex::new(Negotiation::default()));
    let reader = tokio::spawn(read_request(server, tx, vtx, negotiation));
    client.write_all(b"0009hello0000").await.unwrap();
    assert_eq!(&rx.recv().await.unwrap()[..], b"hello");
    assert!(rx.recv().await.is_none(), "git's stdin closes at 0000");
    vrx.wait_for(|v| *v == Verdict::Flushed).await.unwrap();
    drop(client);
    reader.await.unwrap();
    assert_eq!(*vrx.borrow(), Verdict::Closed { flushed: true });
}

#[tokio::test]
async fn reader_rejects_bad_framing() {
    for (input, want) in [
        (&b"0001"[..], "invalid packet header 0001"),
        (b"0002", "invalid packet header 0002"),
        (b"0003", "invalid packet header 0003"),
        (b"zzzz", "invalid packet length \"zzzz\""),
        (b"+123", "invalid packet length \"+123\""),
        (b"fff1", "invalid packet length 65521"),
    ] {
        let (got, v) = read(input).await;
        assert!(got.is_empty());
        match v {
            Verdict::Invalid(m) => assert!(m.contains(want), "{m}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    // The largest packet is fine.
    let mut big = b"fff0".to_vec();
    big.extend(std::iter::repeat_n(b'x', 65516));
    big.extend_from_slice(b"0000");
    let (got, v) = read(&big).await;
    assert_eq!(got.len(), 65516);
    assert_eq!(v, Verdict::Closed { flushed: true });
}

#[tokio::test]
async fn reader_eof_before_flush_is_closed() {
    for input in [&b""[..], b"0009hello", b"0009hel", b"00"] {
        let (_, v) = read(input).await;
        assert_eq!(v, Verdict::Closed { flushed: false }, "{input:?}");
    }
}

#[tokio::test]
async fn reader_feeds_the_negotiation() {
    let (tx, mut rx) = mpsc::channel(4);
    let (vtx, _vrx) = watch::channel(Verdict::Reading);
    let negotiation = Arc::new(Mutex::new(Negotiation::default()));
    // A want line split across two sidechannel packets, then `done`.
    let frame = |b: &str| format!("{:04x}{b}", b.len() + 4);
    let want = format!("0032want {}\n", "1234567890".repeat(4));
    let input = format!(
        "{}{}{}0000",
        frame(&want[..8]),
        frame(&want[8..]),
        frame("0009done\n")
    );
    let input: &'static [u8] = input.into_bytes().leak();
    let reader = tokio::spawn(read_request(input, tx, vtx, negotiation.clone()));
    while rx.recv().await.is_some() {}
    reader.await.unwrap();
    let n = negotiation.lock().unwrap();
    assert_eq!(n.error(), None);
    assert_eq!(n.wants, 1);
}

#[tokio::test]
async fn sideband_packets() {
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let mut out = Vec::new();
    write_sideband(&mut out, 1, &data).await.unwrap();
    write_sideband(&mut out, 2, b"oops\n").await.unwrap();
    let mut rest = &out[..];
    let mut sizes = Vec::new();
    let mut payload = Vec::new();
    while !rest.is_empty() {
        let len = usize::from_str_radix(std::str::from_utf8(&rest[..4]).unwrap(), 16).unwrap();
        sizes.push((rest[4], len - 5));
        payload.extend_from_slice(&rest[5..len]);
        rest = &rest[len..];
    }
    assert_eq!(
        sizes,
        [(1, 65515), (1, 65515), (1, 65515), (1, 3455), (2, 5)]
    );
    assert_eq!(&payload[..200_000], &data[..]);
    assert_eq!(&out[..4], b"fff0");
}

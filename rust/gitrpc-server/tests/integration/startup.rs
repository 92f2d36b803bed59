//! Start-up errors: typed, naming what is wrong, with the code embedders report.

use std::io::ErrorKind;

use gitrpc_server::config::Config;
use gitrpc_server::{Serving, StartError};
use tonic::Code;

use crate::common::*;

/// A config that can't be served is `StartError::Config` (INVALID_ARGUMENT) naming the key,
/// and nothing is created.
#[tokio::test]
async fn bad_config_is_invalid_argument_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = socket_config(&dir);
    config.concurrency = vec![gitrpc_server::config::ConcurrencyConfig {
        rpc: "RefExists".into(),
        max_concurrency: 1,
        max_queue_size: 0,
        max_queue_wait: None,
        adaptive: false,
        min_limit: None,
        max_limit: None,
    }];
    let err = Serving::start(config).await.err().unwrap();
    assert!(
        matches!(&err, StartError::Config(c) if c.key() == Some("concurrency.rpc")),
        "{err:?}"
    );
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(tonic::Status::from(err).code(), Code::InvalidArgument);
    assert!(!dir.path().join("storage").exists(), "nothing created");

    let err = Config::from_toml("[spool]\nthreshold = \"big\"\n").unwrap_err();
    assert_eq!(err.key(), Some("spool.threshold"), "{err}");
    assert_eq!(StartError::from(err).code(), Code::InvalidArgument);
}

/// An address another server listens on is `AddrInUse` (`ALREADY_EXISTS`), for TCP and
/// unix sockets alike, and the second server leaves nothing behind.
#[tokio::test]
async fn busy_address_is_already_exists() {
    let first_dir = tempfile::tempdir().unwrap();
    let first = serving(&first_dir, |c| {
        c.listen_addr = Some("127.0.0.1:0".into());
    })
    .await;
    let tcp = first.addresses()[1]
        .trim_start_matches("tcp://")
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let mut config = socket_config(&dir);
    config.listen_addr = Some(tcp.clone());
    let err = Serving::start(config).await.err().unwrap();
    match &err {
        StartError::Bind { key, addr, source } => {
            assert_eq!((*key, addr.as_str()), ("listen_addr", tcp.as_str()));
            assert_eq!(source.kind(), ErrorKind::AddrInUse, "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        !dir.path().join("s.sock").exists(),
        "socket bound first is removed"
    );

    // The first server's unix socket.
    let mut config = socket_config(&dir);
    config.socket_path = first_dir.path().join("s.sock").into();
    let err = Serving::start(config).await.err().unwrap();
    assert!(
        matches!(&err, StartError::Bind { key: "socket_path", source, .. } if source.kind() == ErrorKind::AddrInUse),
        "{err:?}"
    );
    let status = tonic::Status::from(err);
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(
        status.message().contains("another server is listening"),
        "{status:?}"
    );
    first.stop(std::time::Duration::from_secs(1)).await;
}

/// A server restarted on the same socket path while the old one drains (it stopped
/// listening, so the new one replaced the socket file): the old one, stopping, leaves the
/// new one's socket alone.
#[tokio::test]
async fn a_stopping_server_leaves_its_successors_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("s.sock");
    let old = serving(dir.path(), |_| {}).await;
    // What the new server's bind does once the old one no longer listens: a new socket
    // file at the same path.
    std::fs::remove_file(&socket).unwrap();
    let successor = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    old.stop(std::time::Duration::from_secs(5)).await;
    assert!(
        socket.exists(),
        "the old server removed its successor's socket"
    );
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
    drop(successor);
    // Its own socket it does remove.
    std::fs::remove_file(&socket).unwrap();
    let s = serving(dir.path(), |_| {}).await;
    assert!(socket.exists());
    drop(s);
    assert!(!socket.exists());
}
